-- Leases of the background jobs: the server whose holder is named runs
-- the job until `until_ms` (Unix milliseconds, by the database's clock)
-- unless it renews; after that any server may take it over. As SQLite's
-- migration 27.
CREATE TABLE job_leases (
    name     TEXT COLLATE "C" PRIMARY KEY,
    holder   TEXT COLLATE "C" NOT NULL,
    until_ms BIGINT NOT NULL
);
