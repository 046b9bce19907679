-- Enrollment links: a secret URL on the device listener from which devices
-- download an enrollment profile; each download mints a profile with its own
-- single-use SCEP challenge. Only the SHA-256 of the link secret is stored.
CREATE TABLE enrollment_links (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    max_uses    INTEGER NOT NULL CHECK (max_uses > 0),
    uses        INTEGER NOT NULL DEFAULT 0,
    signed      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
