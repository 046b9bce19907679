-- The two-person rule: dangerous actions wait for a second administrator.
CREATE TABLE approvals (
    id                 TEXT PRIMARY KEY,
    action             TEXT NOT NULL,
    devices            TEXT NOT NULL, -- JSON array of device identifiers
    reason             TEXT NOT NULL,
    requested_by       TEXT NOT NULL,
    requested_by_admin TEXT,
    requested_at       INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    status             TEXT NOT NULL,
    decided_by         TEXT,
    decided_at         INTEGER
);
CREATE INDEX approvals_pending ON approvals (status, requested_at);
