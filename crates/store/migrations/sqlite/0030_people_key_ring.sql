-- The people key ring as the servers on one database share it (never the
-- keys): the key new data keys are wrapped with and the one a rotation
-- prepared (one row, id 1), and what each running server reported it has loaded
-- and wraps with, until `until_ms` (Unix milliseconds) unless renewed.
CREATE TABLE people_key_choice (
    id          INTEGER PRIMARY KEY,
    current_key TEXT NOT NULL,
    next_key    TEXT
);
CREATE TABLE people_key_holders (
    holder     TEXT PRIMARY KEY,
    loaded     TEXT NOT NULL,
    wraps_with TEXT NOT NULL,
    until_ms   INTEGER NOT NULL
);
