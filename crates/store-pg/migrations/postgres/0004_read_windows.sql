-- The bulk-read limit's sliding windows, shared by every server (see the
-- SQLite migration 29).
CREATE TABLE read_reservations (
    id     BIGINT NOT NULL,
    key    TEXT COLLATE "C" NOT NULL,
    at     BIGINT NOT NULL,
    people BIGINT NOT NULL,
    PRIMARY KEY (id, key)
);
CREATE INDEX read_reservations_key ON read_reservations (key, at);
CREATE INDEX read_reservations_at ON read_reservations (at);
CREATE TABLE read_evidence (
    id  BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    at  BIGINT NOT NULL,
    PRIMARY KEY (id, seq)
);
CREATE INDEX read_evidence_at ON read_evidence (at);
CREATE TABLE read_alerts (
    key        TEXT COLLATE "C" PRIMARY KEY,
    alerted_at BIGINT NOT NULL
);
