-- The planner's statistics keep sample values of a column
-- (pg_statistic's histogram bounds): for `person_keys.wrapped_key` they
-- would keep a purged person's wrapped data key after the row and its old
-- versions are gone. None are gathered on it (nothing filters or sorts by
-- it). This runs as the schema's owner, before any ANALYZE of the table.
ALTER TABLE person_keys ALTER COLUMN wrapped_key SET STATISTICS 0;
