-- When each administrator's password was last set: a one-time password
-- (must_change_password) stops working some days after it was issued.
ALTER TABLE admins ADD COLUMN password_set_at INTEGER NOT NULL DEFAULT 0;
UPDATE admins SET password_set_at = created_at;
