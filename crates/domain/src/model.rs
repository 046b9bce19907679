//! Records the service layer reads and writes through the storage ports.

use crate::{AdminId, CommandUuid, DeviceKey, Permission, Role, TokenId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Identifier of an enrollment profile (and of its SCEP challenge).
pub type ProfileId = String;

/// Where an enrollment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentStatus {
    /// Authenticate received; waiting for the first TokenUpdate.
    Authenticated,
    /// TokenUpdate received: the device is managed and reachable by push.
    Enrolled,
    /// The device checked out (profile removed) or was unenrolled.
    CheckedOut,
}

impl EnrollmentStatus {
    /// Stable text form used in storage and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authenticated => "authenticated",
            Self::Enrolled => "enrolled",
            Self::CheckedOut => "checked_out",
        }
    }
    /// Parses the stored text form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authenticated" => Some(Self::Authenticated),
            "enrolled" => Some(Self::Enrolled),
            "checked_out" => Some(Self::CheckedOut),
            _ => None,
        }
    }
}

/// Where one command stands for one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandState {
    /// Waiting to be delivered.
    Queued,
    /// Sent to the device; no result yet.
    Delivered,
    /// The device answered NotNow; it is delivered again on a later Idle.
    NotNow,
    /// Completed successfully.
    Acknowledged,
    /// The device reported an error.
    Error,
    /// The device could not parse the command.
    CommandFormatError,
}

impl CommandState {
    /// Stable text form used in storage and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "Queued",
            Self::Delivered => "Delivered",
            Self::NotNow => "NotNow",
            Self::Acknowledged => "Acknowledged",
            Self::Error => "Error",
            Self::CommandFormatError => "CommandFormatError",
        }
    }
    /// Parses the stored text form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Queued" => Self::Queued,
            "Delivered" => Self::Delivered,
            "NotNow" => Self::NotNow,
            "Acknowledged" => Self::Acknowledged,
            "Error" => Self::Error,
            "CommandFormatError" => Self::CommandFormatError,
            _ => return None,
        })
    }
    /// True once the device has given a final answer.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Acknowledged | Self::Error | Self::CommandFormatError
        )
    }
}

/// An enrolled (or once-enrolled) device with its inventory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Device {
    /// UDID, or EnrollmentID for user enrollments.
    pub udid: DeviceKey,
    /// Set for user enrollments.
    pub enrollment_id: Option<String>,
    /// Enrollment state.
    pub status: EnrollmentStatus,
    /// APNs topic the device subscribed to.
    pub topic: String,
    /// Serial number as reported.
    pub serial_number: Option<String>,
    /// Model (e.g. "iPhone").
    pub model: Option<String>,
    /// Model name.
    pub model_name: Option<String>,
    /// Product name (e.g. "iPhone15,2").
    pub product_name: Option<String>,
    /// Device name.
    pub device_name: Option<String>,
    /// OS version.
    pub os_version: Option<String>,
    /// OS build.
    pub build_version: Option<String>,
    /// True when a push token and PushMagic are known.
    pub push_ready: bool,
    /// True when an UnlockToken was stored.
    pub has_unlock_token: bool,
    /// When Authenticate was first received.
    #[serde(with = "time::serde::rfc3339")]
    pub enrolled_at: OffsetDateTime,
    /// Last check-in or connect.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// Last DeviceInformation QueryResponses, as JSON.
    pub device_information: Option<serde_json::Value>,
    /// Last SecurityInfo result, as JSON.
    pub security_info: Option<serde_json::Value>,
}

/// One command for one device.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommandRecord {
    /// The command UUID.
    pub command_uuid: CommandUuid,
    /// Target device.
    pub udid: DeviceKey,
    /// The RequestType.
    pub request_type: String,
    /// Current state.
    pub state: CommandState,
    /// When it was queued.
    #[serde(with = "time::serde::rfc3339")]
    pub queued_at: OffsetDateTime,
    /// Last state change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The device's result, as JSON (routing keys removed).
    pub result: Option<serde_json::Value>,
    /// ErrorChain when the device reported an error.
    pub error_chain: Option<serde_json::Value>,
}

/// An enrollment profile: the SCEP challenge it carries and its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrollmentProfile {
    /// Random identifier.
    pub id: ProfileId,
    /// SHA-256 of the challenge (the challenge itself is never stored).
    pub challenge_hash: String,
    /// How many certificates the challenge may obtain.
    pub max_uses: u32,
    /// Certificates obtained so far.
    pub uses: u32,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// After this the challenge is refused.
    pub expires_at: OffsetDateTime,
}

/// A secret download link for enrollment profiles (the secret itself is only
/// ever held hashed).
#[derive(Debug, Clone, PartialEq)]
pub struct EnrollmentLink {
    /// Random identifier.
    pub id: String,
    /// SHA-256 of the link secret.
    pub secret_hash: String,
    /// How many profiles may be downloaded.
    pub max_uses: u32,
    /// Downloads so far.
    pub uses: u32,
    /// Whether downloaded profiles are signed.
    pub signed: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// After this the link is refused.
    pub expires_at: OffsetDateTime,
}

/// A device identity certificate Mamori issued.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceCertificate {
    /// SHA-256 of the DER certificate, lower-case hex.
    pub fingerprint: String,
    /// Serial number, hex.
    pub serial: String,
    /// Enrollment profile whose challenge obtained it (None for renewals).
    pub profile_id: Option<ProfileId>,
    /// Enrollment the certificate belongs to, once the device authenticated.
    pub device: Option<DeviceKey>,
    /// Certificate this one renewed, if any.
    pub renewed_from: Option<String>,
    /// Validity end.
    pub not_after: OffsetDateTime,
    /// Issuance time.
    pub issued_at: OffsetDateTime,
    /// Revocation time, when revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

/// An administrator API token (the secret itself is only ever held hashed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiToken {
    /// Public identifier.
    pub id: TokenId,
    /// Human name (who or what uses it).
    pub name: String,
    /// The administrator account that owns it; it dies with the account.
    pub admin_id: AdminId,
    /// Role granted (never more than the owner's).
    pub role: Role,
    /// Optional narrower scope: only these permissions of the role.
    pub scope: Option<Vec<Permission>>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Last successful use.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Revocation time.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl ApiToken {
    /// Whether the token grants `p`: its role holds it and its scope, if any,
    /// names it.
    pub fn allows(&self, p: Permission) -> bool {
        self.role.allows(p) && self.scope.as_ref().is_none_or(|s| s.contains(&p))
    }
}
