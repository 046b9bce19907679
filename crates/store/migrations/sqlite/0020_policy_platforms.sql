-- The platforms a policy is for (JSON array; empty: every platform its
-- payload exists on).
ALTER TABLE policies ADD COLUMN platforms TEXT NOT NULL DEFAULT '[]';
