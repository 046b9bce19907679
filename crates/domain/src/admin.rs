//! Administrators: roles, the permissions they hold, accounts, sessions and
//! the audit record every administrative event produces.

use crate::ids::{AdminId, SessionId};
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;

/// What an admin route or action needs. Deny by default: a role holds only
/// the permissions [`Role::permissions`] lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read devices and their inventory (no personal data).
    DevicesRead,
    /// Read commands and their results.
    CommandsRead,
    /// Helpdesk actions on a device: lock, lost mode, play sound, locate.
    DeviceActions,
    /// Queue any MDM command.
    CommandsWrite,
    /// Enrollment profiles and links.
    EnrollmentWrite,
    /// Add, import and change people and assign devices to them (writes
    /// personal data without reading it back).
    PeopleWrite,
    /// Read personal data in plaintext (each read is recorded).
    PersonalDataRead,
    /// Read the audit log, alerts and incidents.
    AuditRead,
    /// Manage administrator accounts and their roles.
    AccountsManage,
    /// Create, list and revoke API tokens of one's own account.
    TokensOwn,
    /// Change server settings (push certificate, ...).
    SettingsWrite,
    /// Open and run incidents (scope, classification, notifications).
    IncidentsManage,
}

impl Permission {
    /// Every permission.
    pub const ALL: &'static [Permission] = &[
        Permission::DevicesRead,
        Permission::CommandsRead,
        Permission::DeviceActions,
        Permission::CommandsWrite,
        Permission::EnrollmentWrite,
        Permission::PeopleWrite,
        Permission::PersonalDataRead,
        Permission::AuditRead,
        Permission::AccountsManage,
        Permission::TokensOwn,
        Permission::SettingsWrite,
        Permission::IncidentsManage,
    ];

    /// The wire name (`devices_read`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::DevicesRead => "devices_read",
            Permission::CommandsRead => "commands_read",
            Permission::DeviceActions => "device_actions",
            Permission::CommandsWrite => "commands_write",
            Permission::EnrollmentWrite => "enrollment_write",
            Permission::PeopleWrite => "people_write",
            Permission::PersonalDataRead => "personal_data_read",
            Permission::AuditRead => "audit_read",
            Permission::AccountsManage => "accounts_manage",
            Permission::TokensOwn => "tokens_own",
            Permission::SettingsWrite => "settings_write",
            Permission::IncidentsManage => "incidents_manage",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An administrator's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees devices; no personal data, no changes.
    Viewer,
    /// Looks devices up and runs the helpdesk actions (lock, lost mode, sound).
    Helpdesk,
    /// Profiles, commands, enrollment.
    DeviceAdmin,
    /// Audit, alerts, incidents, personal data.
    SecurityOfficer,
    /// Accounts, roles, settings.
    Owner,
}

impl Role {
    /// Every role, least powerful first.
    pub const ALL: &'static [Role] = &[
        Role::Viewer,
        Role::Helpdesk,
        Role::DeviceAdmin,
        Role::SecurityOfficer,
        Role::Owner,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Helpdesk => "helpdesk",
            Role::DeviceAdmin => "device_admin",
            Role::SecurityOfficer => "security_officer",
            Role::Owner => "owner",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.as_str() == s)
    }

    /// The permissions the role holds. Separation of duties: the owner runs
    /// accounts, settings and devices but does not read personal data; the
    /// security officer reads personal data and the audit trail but changes
    /// no device.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Viewer => &[DevicesRead, CommandsRead, TokensOwn],
            Role::Helpdesk => &[DevicesRead, CommandsRead, DeviceActions, TokensOwn],
            Role::DeviceAdmin => &[
                DevicesRead,
                CommandsRead,
                DeviceActions,
                CommandsWrite,
                EnrollmentWrite,
                PeopleWrite,
                TokensOwn,
            ],
            Role::SecurityOfficer => &[
                DevicesRead,
                CommandsRead,
                PeopleWrite,
                PersonalDataRead,
                AuditRead,
                IncidentsManage,
                TokensOwn,
            ],
            Role::Owner => &[
                DevicesRead,
                CommandsRead,
                DeviceActions,
                CommandsWrite,
                EnrollmentWrite,
                PeopleWrite,
                AuditRead,
                AccountsManage,
                TokensOwn,
                SettingsWrite,
                IncidentsManage,
            ],
        }
    }

    /// Whether the role holds `p`.
    pub fn allows(self, p: Permission) -> bool {
        self.permissions().contains(&p)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named administrator account (what may be shown; secrets live in
/// [`AdminCredentials`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdminAccount {
    /// Random identifier.
    pub id: AdminId,
    /// Login name, unique.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The password was set by someone else and must be changed at login.
    pub must_change_password: bool,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the password was last set (a one-time password expires).
    #[serde(with = "time::serde::rfc3339")]
    pub password_set_at: OffsetDateTime,
    /// Last completed (password and second factor) login.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login_at: Option<OffsetDateTime>,
    /// Source address of that login.
    pub last_login_source: Option<String>,
    /// Consecutive failed logins.
    pub failed_logins: u32,
    /// No login attempt is evaluated before this time (exponential backoff).
    #[serde(with = "time::serde::rfc3339::option")]
    pub throttled_until: Option<OffsetDateTime>,
    /// Locked after too many failures, until unlocked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub locked_at: Option<OffsetDateTime>,
    /// Disabled (offboarded or stale); nothing of the account works.
    #[serde(with = "time::serde::rfc3339::option")]
    pub disabled_at: Option<OffsetDateTime>,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Suspended by detection (bulk personal-data reads, a mass command):
    /// nothing of the account works until another administrator reinstates
    /// it.
    pub suspended: Option<Box<Suspension>>,
    /// A TOTP authenticator is enrolled.
    pub totp_enrolled: bool,
}

/// Since when and why an account is suspended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suspension {
    /// Since when.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Why.
    pub reason: String,
}

/// An account's secrets, read only by the login path.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AdminCredentials {
    /// argon2id PHC string.
    pub password_hash: String,
    /// The TOTP secret, sealed with the master key (None: not enrolled).
    pub totp_sealed: Option<Vec<u8>>,
    /// A TOTP secret offered for enrollment, not yet confirmed.
    pub totp_pending_sealed: Option<Vec<u8>>,
    /// Last accepted TOTP time step (replay protection).
    pub totp_last_step: Option<u64>,
}

/// A registered WebAuthn credential (passkey or security key).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebauthnCredential {
    /// Credential ID (base64url), unique.
    pub id: String,
    /// Owning account.
    pub admin_id: AdminId,
    /// Name the administrator gave it.
    pub name: String,
    /// The credential as webauthn-rs serialises it (public key, counter).
    #[serde(skip)]
    pub data: String,
    /// Registration time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last successful assertion.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Registered in a recovery session: usable only from this time, or
    /// once a second owner approves. `None`: usable.
    #[serde(rename = "pending_until", with = "time::serde::rfc3339::option")]
    pub usable_from: Option<OffsetDateTime>,
}

impl WebauthnCredential {
    /// Whether it may be used to log in at `now`.
    pub fn usable_at(&self, now: OffsetDateTime) -> bool {
        self.usable_from.is_none_or(|t| t <= now)
    }
}

/// How far a session has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStage {
    /// Password accepted; the second factor is still due.
    SecondFactor,
    /// Logged in, but a factor must be enrolled (first login, or a recovery
    /// code used where the role requires WebAuthn) or the password changed
    /// before anything else.
    Setup,
    /// A recovery code was used where the role requires WebAuthn: the
    /// session may only register a new WebAuthn key (and change the
    /// password).
    Recovery,
    /// Fully authenticated.
    Full,
}

impl SessionStage {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStage::SecondFactor => "second_factor",
            SessionStage::Setup => "setup",
            SessionStage::Recovery => "recovery",
            SessionStage::Full => "full",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "second_factor" => Some(SessionStage::SecondFactor),
            "setup" => Some(SessionStage::Setup),
            "recovery" => Some(SessionStage::Recovery),
            "full" => Some(SessionStage::Full),
            _ => None,
        }
    }
}

/// A server-side administrator session. The cookie holds a random secret;
/// only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdminSession {
    /// Public identifier (for listing and revoking).
    pub id: SessionId,
    /// Owning account.
    pub admin_id: AdminId,
    /// Stage.
    pub stage: SessionStage,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last request.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// Absolute end, whatever the activity.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Source address the session was created from.
    pub source: String,
    /// SHA-256 of the User-Agent it was created with.
    #[serde(skip)]
    pub client_hash: String,
    /// Last re-authentication (step-up).
    #[serde(with = "time::serde::rfc3339::option")]
    pub step_up_at: Option<OffsetDateTime>,
    /// Revocation time.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// One audit record, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Time.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who: `admin:<name>`, `token:<id>`, `device:<udid>`, `system`, `anonymous`.
    pub actor: String,
    /// Source address, when there is one.
    pub source: Option<String>,
    /// What, dotted (`auth.login`, `admin.disable`, ...).
    pub action: String,
    /// On what, when it applies.
    pub target: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// The request's ID.
    pub request_id: Option<String>,
    /// Short, non-secret detail (reason of a failure, counts).
    pub detail: Option<String>,
}

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// Sequence number, strictly increasing.
    pub seq: i64,
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(*r));
        }
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(*p));
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Permission::parse(""), None);
    }

    #[test]
    fn separation_of_duties() {
        assert!(!Role::Owner.allows(Permission::PersonalDataRead));
        assert!(Role::SecurityOfficer.allows(Permission::PersonalDataRead));
        assert!(!Role::SecurityOfficer.allows(Permission::CommandsWrite));
        assert!(!Role::Viewer.allows(Permission::DeviceActions));
        assert!(Role::Helpdesk.allows(Permission::DeviceActions));
        assert!(!Role::Helpdesk.allows(Permission::CommandsWrite));
        assert!(!Role::DeviceAdmin.allows(Permission::AccountsManage));
    }
}
