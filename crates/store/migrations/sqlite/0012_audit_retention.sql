-- Retention by age: records may leave the audit log only from its start
-- and only up to a signed "truncated up to" mark. The mark holds the
-- sequence number and hash of the last removed record, signed with the
-- audit key, so the first remaining record still links to something
-- verifiable; a mark inserted without the key fails `audit verify`.
CREATE TABLE audit_truncations (
    up_to_seq INTEGER PRIMARY KEY,
    hash      BLOB NOT NULL,
    at        INTEGER NOT NULL,
    before_at INTEGER NOT NULL,
    signature BLOB NOT NULL
);
CREATE TRIGGER audit_truncations_no_update BEFORE UPDATE ON audit_truncations
BEGIN
    SELECT RAISE(ABORT, 'audit_truncations is append-only');
END;
CREATE TRIGGER audit_truncations_no_delete BEFORE DELETE ON audit_truncations
BEGIN
    SELECT RAISE(ABORT, 'audit_truncations is append-only');
END;

-- Deleting stays refused except for records covered by a mark.
DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.seq > COALESCE((SELECT MAX(up_to_seq) FROM audit_truncations), 0)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
