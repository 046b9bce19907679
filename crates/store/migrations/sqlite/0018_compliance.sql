-- Compliance rules per group (JSON: minimum OS versions, vulnerable OS,
-- passcode, encryption, supervision, check-in age, quarantine).
CREATE TABLE group_compliance (
    group_id TEXT PRIMARY KEY,
    rules    TEXT NOT NULL
);
