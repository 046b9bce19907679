-- Where each audit sink (syslog, webhook) stands: the last record it
-- acknowledged. A sink that was down resumes after delivered_seq, so it
-- loses nothing; the records themselves stay in audit_log.
CREATE TABLE audit_sinks (
    name          TEXT PRIMARY KEY,
    delivered_seq INTEGER NOT NULL DEFAULT 0,
    delivered_at  INTEGER,
    failing_since INTEGER,
    last_error    TEXT
);
