-- The people directory: employees (pseudonymous columns in the clear,
-- personal fields sealed under a per-person data key, keyed blind indexes
-- for exact-match lookup) and their devices.
-- Times are Unix seconds (UTC).

CREATE TABLE people (
    id            TEXT PRIMARY KEY,
    status        TEXT NOT NULL,
    departed_at   INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    sealed        BLOB NOT NULL,
    email_index   TEXT NOT NULL UNIQUE,
    user_id_index TEXT NOT NULL UNIQUE
);
-- The retention job finds departed people by departure time.
CREATE INDEX people_departed ON people (status, departed_at);

-- Each person's data key, wrapped by a master key, in its own table so a
-- purge can destroy it (crypto-shredding the sealed fields).
CREATE TABLE person_keys (
    person_id   TEXT PRIMARY KEY REFERENCES people (id),
    key_id      TEXT NOT NULL,
    wrapped_key BLOB NOT NULL
);
-- Master-key rotation re-wraps the keys of one master key.
CREATE INDEX person_keys_key_id ON person_keys (key_id);

-- IDs of purged people, so a purge is never undone by a restore or import.
CREATE TABLE people_tombstones (
    id        TEXT PRIMARY KEY,
    purged_at INTEGER NOT NULL
);

-- A REFERENCES column can be added while foreign keys are enforced because
-- its default is NULL.
ALTER TABLE devices ADD COLUMN person_id TEXT REFERENCES people (id);
CREATE INDEX devices_person ON devices (person_id);

-- Links an administrator account to the person (for offboarding).
ALTER TABLE admins ADD COLUMN person_id TEXT REFERENCES people (id);
