//! Policies: typed device settings (passcode, restrictions, Wi-Fi, VPN)
//! that become configuration profiles.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What a policy configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// Passcode rules (`com.apple.mobiledevice.passwordpolicy`).
    Passcode,
    /// Restrictions (`com.apple.applicationaccess`): app installation,
    /// managed open-in, ...
    Restrictions,
    /// A Wi-Fi network (`com.apple.wifi.managed`).
    Wifi,
    /// A VPN (`com.apple.vpn.managed`).
    Vpn,
}

impl PolicyKind {
    /// Every kind.
    pub const ALL: &'static [PolicyKind] = &[
        PolicyKind::Passcode,
        PolicyKind::Restrictions,
        PolicyKind::Wifi,
        PolicyKind::Vpn,
    ];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passcode => "passcode",
            Self::Restrictions => "restrictions",
            Self::Wifi => "wifi",
            Self::Vpn => "vpn",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// The profile payload it becomes.
    pub fn payload_type(self) -> &'static str {
        match self {
            Self::Passcode => "com.apple.mobiledevice.passwordpolicy",
            Self::Restrictions => "com.apple.applicationaccess",
            Self::Wifi => "com.apple.wifi.managed",
            Self::Vpn => "com.apple.vpn.managed",
        }
    }
}

/// A policy, without its secrets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    /// Random identifier.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// What it configures.
    pub kind: PolicyKind,
    /// The payload's keys, secrets taken out.
    pub settings: serde_json::Value,
    /// JSON pointers of the secret values held sealed (never returned).
    pub secrets: Vec<String>,
    /// Platforms it is for (`iOS`, `macOS`, ...); empty: every platform
    /// the payload exists on. Devices of other platforms do not get it.
    pub platforms: Vec<String>,
    /// Bumped on every change.
    pub version: i64,
    /// The profile's `PayloadIdentifier` (stable).
    pub profile_identifier: String,
    /// The payload's `PayloadUUID` (stable).
    pub payload_uuid: String,
    /// The profile's `PayloadUUID` (new with each version).
    pub profile_uuid: String,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}
