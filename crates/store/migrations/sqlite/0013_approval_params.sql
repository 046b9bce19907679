-- The two-person rule covers more than erasing devices: granting the owner
-- role and exporting personal data. What a request carries out is kept as
-- JSON (the erase command with its options, the account, the fields); an
-- approved export can be downloaded once (used_at).
ALTER TABLE approvals ADD COLUMN params TEXT;
ALTER TABLE approvals ADD COLUMN used_at INTEGER;
