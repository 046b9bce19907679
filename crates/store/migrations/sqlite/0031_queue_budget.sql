-- Budgets of commands queued without a second administrator (EraseDevice),
-- shared by every administrator and every server: one row per command
-- that spent one, kept for the budget's window. Kept apart from
-- `commands` so that retiring or deleting a device does not give its
-- erases back.
CREATE TABLE queue_budget (
    name         TEXT NOT NULL,
    command_uuid TEXT NOT NULL,
    at           INTEGER NOT NULL,
    PRIMARY KEY (name, command_uuid)
);
CREATE INDEX queue_budget_at ON queue_budget (name, at);
