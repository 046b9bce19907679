-- Leases of the background jobs: the server whose holder is named runs
-- the job until `until_ms` (Unix milliseconds) unless it renews; after
-- that any server may take it over.
CREATE TABLE job_leases (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    until_ms INTEGER NOT NULL
);
