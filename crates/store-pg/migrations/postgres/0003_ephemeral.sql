-- Short-lived state every server shares (`mamori_ports::EphemeralStore`):
-- one-time values, counters, gates and claims, each in a space under a
-- key, until `expires_ms` (Unix milliseconds, as `at_ms`). `used` orders
-- a space's entries by their last use (the least recently used counter
-- goes first at the cap), from one sequence every server draws on. As
-- SQLite's migration 28.
CREATE SEQUENCE ephemeral_tick;
CREATE TABLE ephemeral (
    space   TEXT COLLATE "C" NOT NULL,
    key     TEXT COLLATE "C" NOT NULL,
    -- A one-time value, or a claim's holder.
    value   BYTEA,
    -- A counter's events, or a gate's refusals since it last passed.
    count   BIGINT NOT NULL DEFAULT 0,
    -- The refusals a gate told of when it last passed.
    carried BIGINT NOT NULL DEFAULT 0,
    -- A counter's latest event, or when a gate last passed (NULL: let the
    -- next one pass).
    at_ms   BIGINT,
    used    BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    PRIMARY KEY (space, key)
);
CREATE INDEX ephemeral_used ON ephemeral (space, used);
CREATE INDEX ephemeral_expires ON ephemeral (expires_ms);
