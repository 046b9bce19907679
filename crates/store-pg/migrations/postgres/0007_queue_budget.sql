-- Budgets of commands queued without a second administrator (see the
-- SQLite migration 31).
CREATE TABLE queue_budget (
    name         TEXT COLLATE "C" NOT NULL,
    command_uuid TEXT COLLATE "C" NOT NULL,
    at           BIGINT NOT NULL,
    PRIMARY KEY (name, command_uuid)
);
CREATE INDEX queue_budget_at ON queue_budget (name, at);
