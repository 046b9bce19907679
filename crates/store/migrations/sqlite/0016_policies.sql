-- Policies: typed settings that become configuration profiles. Secrets
-- (Wi-Fi passwords, VPN shared secrets) are sealed with the master key
-- (`sealed_secrets`, AAD = the policy ID) and never leave except inside
-- the profile sent to a device.
CREATE TABLE policies (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    kind               TEXT NOT NULL,
    settings           TEXT NOT NULL,
    secret_pointers    TEXT NOT NULL,
    sealed_secrets     BLOB,
    version            INTEGER NOT NULL,
    profile_identifier TEXT NOT NULL,
    payload_uuid       TEXT NOT NULL,
    profile_uuid       TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
