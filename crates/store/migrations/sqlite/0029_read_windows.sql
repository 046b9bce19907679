-- The bulk-read limit's sliding windows, shared by every server on the
-- database (they were kept in each process's memory). One row per window
-- a request counted in; rows older than the window are removed as new
-- requests come.
CREATE TABLE read_reservations (
    id     INTEGER NOT NULL,
    key    TEXT NOT NULL,
    at     INTEGER NOT NULL,
    people INTEGER NOT NULL,
    PRIMARY KEY (id, key)
);
CREATE INDEX read_reservations_key ON read_reservations (key, at);
CREATE INDEX read_reservations_at ON read_reservations (at);
-- The disclosure records of each request (an alert's evidence).
CREATE TABLE read_evidence (
    id  INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    at  INTEGER NOT NULL,
    PRIMARY KEY (id, seq)
);
CREATE INDEX read_evidence_at ON read_evidence (at);
-- When each window last alerted (one alert per burst).
CREATE TABLE read_alerts (
    key        TEXT PRIMARY KEY,
    alerted_at INTEGER NOT NULL
);
