-- A new device identity (certificate) that Authenticated as an enrollment
-- whose previous identity is still live. It is held here, bound to
-- nothing, until an administrator approves it (the row is applied and
-- deleted) or denies it (its certificate is revoked and the row deleted).
-- The audit log keeps the history.
CREATE TABLE pending_reenrollments (
    fingerprint   TEXT PRIMARY KEY REFERENCES device_certificates (fingerprint),
    udid          TEXT NOT NULL,
    enrollment_id TEXT,
    topic         TEXT NOT NULL,
    -- Inventory fields of the Authenticate message (JSON; the device name
    -- is sealed, as in `devices`).
    fields        TEXT NOT NULL,
    source        TEXT,
    requested_at  INTEGER NOT NULL,
    -- What the held identity's TokenUpdate sent, applied on approval.
    push_token    BLOB,
    push_magic    TEXT,
    unlock_token  BLOB
);
CREATE INDEX pending_reenrollments_udid ON pending_reenrollments (udid);
