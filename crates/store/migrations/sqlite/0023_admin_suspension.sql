-- An account suspended by detection (bulk personal-data reads, a mass
-- command) stays suspended — no login, no session, no token — until
-- another administrator reinstates it; the state must outlive the revoked
-- sessions and a restart, so it is kept with the account.
ALTER TABLE admins ADD COLUMN suspended_at INTEGER;
ALTER TABLE admins ADD COLUMN suspended_reason TEXT;
