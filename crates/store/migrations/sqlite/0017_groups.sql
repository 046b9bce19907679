-- Device groups (static members, or a dynamic rule over the inventory),
-- the policies assigned to them, and where each policy's profile stands
-- on each device (the reconciler's memory: it survives restarts).
CREATE TABLE device_groups (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    rule       TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE device_group_members (
    group_id TEXT NOT NULL,
    udid     TEXT NOT NULL,
    PRIMARY KEY (group_id, udid)
);
CREATE TABLE group_policies (
    group_id  TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    PRIMARY KEY (group_id, policy_id)
);
CREATE TABLE device_profiles (
    udid               TEXT NOT NULL,
    profile_identifier TEXT NOT NULL,
    policy_id          TEXT NOT NULL,
    profile_uuid       TEXT NOT NULL,
    state              TEXT NOT NULL,
    command_uuid       TEXT,
    attempts           INTEGER NOT NULL DEFAULT 0,
    retry_at           INTEGER,
    updated_at         INTEGER NOT NULL,
    PRIMARY KEY (udid, profile_identifier)
);
CREATE INDEX device_profiles_command ON device_profiles (command_uuid);
