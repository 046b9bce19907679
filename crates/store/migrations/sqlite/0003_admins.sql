-- Named administrator accounts, their second factors, server-side sessions,
-- account-owned API tokens and the append-only audit log.
-- Times are Unix seconds (UTC); sealed secrets are BLOBs encrypted by the
-- caller; hashes are hex SHA-256 (argon2id PHC strings for passwords).

CREATE TABLE admins (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL UNIQUE,
    role                 TEXT NOT NULL,
    password_hash        TEXT NOT NULL,
    must_change_password INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    last_login_at        INTEGER,
    last_login_source    TEXT,
    failed_logins        INTEGER NOT NULL DEFAULT 0,
    throttled_until      INTEGER,
    locked_at            INTEGER,
    disabled_at          INTEGER,
    disabled_reason      TEXT,
    totp_sealed          BLOB,
    totp_pending_sealed  BLOB,
    totp_last_step       INTEGER
);

CREATE TABLE admin_recovery_codes (
    admin_id  TEXT NOT NULL REFERENCES admins (id),
    code_hash TEXT NOT NULL,
    used_at   INTEGER,
    PRIMARY KEY (admin_id, code_hash)
);

CREATE TABLE admin_webauthn (
    id           TEXT PRIMARY KEY,
    admin_id     TEXT NOT NULL REFERENCES admins (id),
    name         TEXT NOT NULL,
    data         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX admin_webauthn_admin ON admin_webauthn (admin_id);

CREATE TABLE admin_sessions (
    id           TEXT PRIMARY KEY,
    secret_hash  TEXT NOT NULL UNIQUE,
    admin_id     TEXT NOT NULL REFERENCES admins (id),
    stage        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    source       TEXT NOT NULL,
    client_hash  TEXT NOT NULL,
    step_up_at   INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX admin_sessions_admin ON admin_sessions (admin_id);

-- Tokens made before accounts existed have no owner and must never
-- authenticate again: they are deleted, and the table is rebuilt with an
-- owning account (a REFERENCES column cannot be added to a SQLite table with
-- a non-NULL default while foreign keys are enforced).
DELETE FROM api_tokens;
DROP TABLE api_tokens;
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    admin_id     TEXT NOT NULL REFERENCES admins (id),
    role         TEXT NOT NULL,
    -- JSON array of permission names; NULL grants the whole role.
    scope        TEXT,
    secret_hash  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX api_tokens_admin ON api_tokens (admin_id);

-- The audit trail. AUTOINCREMENT: sequence numbers are never reused.
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    source     TEXT,
    action     TEXT NOT NULL,
    target     TEXT,
    outcome    TEXT NOT NULL,
    request_id TEXT,
    detail     TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);

-- Append-only at the database level too.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
