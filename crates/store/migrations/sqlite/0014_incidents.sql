-- Incidents: a suspected leak or misuse being handled. `facts` is JSON
-- (classification flags, the nine report items, report dates). People are
-- named by pseudonymous ID only.
CREATE TABLE incidents (
    id            TEXT PRIMARY KEY,
    title         TEXT NOT NULL,
    status        TEXT NOT NULL,
    opened_at     INTEGER NOT NULL,
    opened_by     TEXT NOT NULL,
    alert_seq     INTEGER,
    discovered_at INTEGER NOT NULL,
    window_from   INTEGER NOT NULL,
    window_to     INTEGER NOT NULL,
    actor         TEXT,
    facts         TEXT NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX incidents_opened ON incidents (opened_at);
-- One alert opens at most one incident.
CREATE UNIQUE INDEX incidents_alert ON incidents (alert_seq);

CREATE TABLE incident_people (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    person_id   TEXT NOT NULL,
    fields      TEXT NOT NULL,
    notified_at INTEGER,
    PRIMARY KEY (incident_id, person_id)
);
