//! The two-person rule: a dangerous action one administrator asks for
//! waits until a second one approves it.

use crate::ids::DeviceKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Where a request for approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for a second administrator.
    Pending,
    /// Approved and carried out.
    Approved,
    /// Refused.
    Rejected,
}

impl ApprovalStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(ApprovalStatus::Pending),
            "approved" => Some(ApprovalStatus::Approved),
            "rejected" => Some(ApprovalStatus::Rejected),
            _ => None,
        }
    }
}

/// A dangerous action waiting for a second administrator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    /// Random identifier.
    pub id: String,
    /// What is asked: `erase_devices`, `grant_owner`, `export_personal_data`.
    pub action: String,
    /// The devices it applies to.
    pub devices: Vec<DeviceKey>,
    /// What else the action needs (the erase command with its options, the
    /// account to make owner, the fields to export); `null` when nothing.
    pub params: serde_json::Value,
    /// Why (e.g. `offboarding of <person id>`).
    pub reason: String,
    /// Who asked (audit label).
    pub requested_by: String,
    /// The asking administrator's account, when a person asked.
    #[serde(skip)]
    pub requested_by_admin: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// Pending requests expire.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Where it stands.
    pub status: ApprovalStatus,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    /// When an approved export was downloaded (once).
    #[serde(with = "time::serde::rfc3339::option")]
    pub used_at: Option<OffsetDateTime>,
}
