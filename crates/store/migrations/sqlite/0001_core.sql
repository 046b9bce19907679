-- Core MDM state: enrollment profiles, device certificates, enrollments,
-- the command queue, API tokens and sealed secrets.
-- Times are Unix seconds (UTC); JSON is stored as text.

CREATE TABLE enrollment_profiles (
    id             TEXT PRIMARY KEY,
    challenge_hash TEXT NOT NULL UNIQUE,
    max_uses       INTEGER NOT NULL CHECK (max_uses > 0),
    uses           INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);

CREATE TABLE device_certificates (
    fingerprint  TEXT PRIMARY KEY,
    serial       TEXT NOT NULL,
    profile_id   TEXT REFERENCES enrollment_profiles (id),
    device       TEXT,
    renewed_from TEXT,
    not_after    INTEGER NOT NULL,
    issued_at    INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX device_certificates_device ON device_certificates (device);

CREATE TABLE devices (
    udid               TEXT PRIMARY KEY,
    enrollment_id      TEXT,
    status             TEXT NOT NULL,
    topic              TEXT NOT NULL,
    serial_number      TEXT,
    model              TEXT,
    model_name         TEXT,
    product_name       TEXT,
    device_name        TEXT,
    os_version         TEXT,
    build_version      TEXT,
    push_token         BLOB,
    push_magic         TEXT,
    unlock_token       BLOB,
    enrolled_at        INTEGER NOT NULL,
    last_seen_at       INTEGER NOT NULL,
    device_information TEXT,
    security_info      TEXT
);
CREATE INDEX devices_serial ON devices (serial_number);

CREATE TABLE user_channels (
    udid       TEXT NOT NULL REFERENCES devices (udid) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    push_token BLOB,
    push_magic TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (udid, user_id)
);

CREATE TABLE commands (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    command_uuid TEXT NOT NULL UNIQUE,
    udid         TEXT NOT NULL,
    request_type TEXT NOT NULL,
    payload      BLOB NOT NULL,
    state        TEXT NOT NULL,
    queued_at    INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    result       TEXT,
    error_chain  TEXT
);
CREATE INDEX commands_queue ON commands (udid, state, seq);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    sealed     BLOB NOT NULL,
    updated_at INTEGER NOT NULL
);
