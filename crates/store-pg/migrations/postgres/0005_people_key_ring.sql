-- The people key ring as the servers on one database share it (never the
-- keys): the key new data keys are wrapped with and the one a rotation
-- prepared (one row, id 1), and what each running server reported it has loaded
-- and wraps with, until `until_ms` (Unix milliseconds, by the database's
-- clock) unless renewed. As SQLite's migration 30.
CREATE TABLE people_key_choice (
    id          BIGINT PRIMARY KEY,
    current_key TEXT COLLATE "C" NOT NULL,
    next_key    TEXT COLLATE "C"
);
CREATE TABLE people_key_holders (
    holder     TEXT COLLATE "C" PRIMARY KEY,
    loaded     TEXT COLLATE "C" NOT NULL,
    wraps_with TEXT COLLATE "C" NOT NULL,
    until_ms   BIGINT NOT NULL
);
