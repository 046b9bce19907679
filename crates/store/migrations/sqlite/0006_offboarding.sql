-- Devices leaving management when their person is offboarded: the last
-- command they get, and when their certificates are revoked at the latest.
ALTER TABLE devices ADD COLUMN offboard_command TEXT;
ALTER TABLE devices ADD COLUMN offboard_deadline INTEGER;
CREATE INDEX devices_offboard_deadline ON devices (offboard_deadline);
