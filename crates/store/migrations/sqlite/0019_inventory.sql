-- Installed applications per device (from InstalledApplicationList, the
-- last good answer), searchable by bundle ID or name; and when each
-- device's inventory was last asked for (the refresh schedule).
CREATE TABLE device_apps (
    udid      TEXT NOT NULL,
    bundle_id TEXT NOT NULL,
    name      TEXT,
    version   TEXT,
    PRIMARY KEY (udid, bundle_id)
);
CREATE INDEX device_apps_bundle ON device_apps (bundle_id);
CREATE TABLE device_inventory (
    udid         TEXT PRIMARY KEY,
    requested_at INTEGER NOT NULL
);
