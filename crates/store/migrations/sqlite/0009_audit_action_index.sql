-- The breach-scope report reads personal-data access records by action
-- and time.
CREATE INDEX audit_log_action_at ON audit_log (action, at);
