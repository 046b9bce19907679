//! Device groups and the profiles each device should have.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Which devices a dynamic group holds: every condition given must hold
/// (case-insensitive).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRule {
    /// The model contains this (e.g. `iPhone`, `Mac`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The product name starts with this (e.g. `iPhone15`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// The OS version starts with this (e.g. `17.`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// The device's assigned person is in this department (matched
    /// through the department's blind index; case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
}

impl GroupRule {
    /// Whether a device with these inventory fields matches (the
    /// department condition is checked by the caller, who knows people).
    pub fn matches(
        &self,
        model: Option<&str>,
        product: Option<&str>,
        os_version: Option<&str>,
    ) -> bool {
        let lower = |s: Option<&str>| s.unwrap_or("").to_ascii_lowercase();
        self.model
            .as_ref()
            .is_none_or(|m| lower(model).contains(&m.to_ascii_lowercase()))
            && self
                .product
                .as_ref()
                .is_none_or(|p| lower(product).starts_with(&p.to_ascii_lowercase()))
            && self
                .os_version
                .as_ref()
                .is_none_or(|v| lower(os_version).starts_with(&v.to_ascii_lowercase()))
    }
}

/// A group of devices: static (listed members) or dynamic (a rule over
/// the inventory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceGroup {
    /// Random identifier.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The rule of a dynamic group (None: static).
    pub rule: Option<GroupRule>,
    /// Members of a static group (UDIDs).
    pub members: Vec<String>,
    /// Policies assigned (IDs).
    pub policies: Vec<String>,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Where a policy's profile stands on one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileState {
    /// InstallProfile queued.
    Installing,
    /// Installed (the device acknowledged).
    Installed,
    /// RemoveProfile queued.
    Removing,
    /// The device refused; retried after `retry_at`.
    Failed,
}

impl ProfileState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Installing => "installing",
            Self::Installed => "installed",
            Self::Removing => "removing",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "installing" => Some(Self::Installing),
            "installed" => Some(Self::Installed),
            "removing" => Some(Self::Removing),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One policy profile on one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceProfile {
    /// The device.
    pub udid: String,
    /// The profile's `PayloadIdentifier`.
    pub profile_identifier: String,
    /// The policy it comes from.
    pub policy_id: String,
    /// The version's profile UUID (installed or being installed).
    pub profile_uuid: String,
    /// Where it stands.
    pub state: ProfileState,
    /// The command in flight (or last sent).
    pub command_uuid: Option<String>,
    /// Failed attempts in a row.
    pub attempts: i64,
    /// When a failed one is tried again.
    #[serde(with = "time::serde::rfc3339::option")]
    pub retry_at: Option<OffsetDateTime>,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}
