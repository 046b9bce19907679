//! Administrator identity: accounts and roles, the login (password, then a
//! second factor), server-side sessions, step-up, throttling, API tokens
//! bound to accounts, and two-person approvals.
//!
//! Every request on the admin listener is made by an
//! [`AdminActor`](crate::access::AdminActor): an account reached through a
//! session cookie or through one of its API tokens. Nothing of a disabled
//! account works: disabling revokes its sessions and tokens in one
//! transaction, and every request re-reads the account.

mod accounts;
pub mod approvals;
mod dead;
mod installation;
mod login;
mod mfa;
mod reinstate;
mod state;
mod throttle;
pub mod tokens;
mod webauthn;

pub(crate) use accounts::parse_role;
pub use accounts::{AdminSummary, Created, Enabled, NewAdmin, Reset, RoleChange};
pub use dead::DeadCredentials;
pub use login::ONE_TIME_PASSWORD_TTL;
pub use login::{LoginOutcome, SessionCookie};
pub use mfa::{Enrolled, Factors, TotpEnrollment, WebauthnChallenge};
pub use state::{AuthState, CSRF_KEY};
pub use throttle::{InFlight, SourceThrottle};
pub use webauthn::Ceremonies;

use crate::access::{AdminActor, Via};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AdminAccount, Role, SessionStage};
use time::Duration;

use mamori_ports::{
    AdminStore, ApprovalStore, AuditStore, ControlStore, EphemeralStore, SecretStore, TokenStore,
};

/// How administrators authenticate: timeouts, thresholds, required factors.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    /// A session unused this long ends.
    pub session_idle: Duration,
    /// A session ends this long after login, whatever the activity.
    pub session_absolute: Duration,
    /// A step-up (re-authentication) is good for this long.
    pub step_up_window: Duration,
    /// A session works only from the address it was created from.
    pub bind_session_to_source: bool,
    /// Consecutive failures after which each further attempt on the account
    /// waits (1 s, 2 s, 4 s, ... up to `max_backoff`).
    pub backoff_after: u32,
    /// Consecutive failures after which the account is locked until unlocked.
    pub lock_after: u32,
    /// Longest per-account or per-source wait.
    pub max_backoff: Duration,
    /// Failures from one source address before it is slowed down.
    pub source_free_failures: u32,
    /// Accounts unused this many days are reported as stale.
    pub stale_after_days: u32,
    /// Stale accounts are disabled by the hygiene job.
    pub disable_stale: bool,
    /// Roles whose members must log in with WebAuthn (phishing-resistant).
    pub webauthn_roles: Vec<Role>,
    /// The URL administrators reach the admin listener at (WebAuthn origin;
    /// its host is the relying-party ID).
    pub admin_url: String,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        Self {
            session_idle: Duration::minutes(15),
            session_absolute: Duration::hours(8),
            step_up_window: Duration::minutes(5),
            bind_session_to_source: true,
            backoff_after: 3,
            lock_after: 10,
            max_backoff: Duration::minutes(15),
            source_free_failures: 10,
            stale_after_days: 30,
            disable_stale: true,
            webauthn_roles: vec![Role::Owner, Role::SecurityOfficer],
            admin_url: "https://localhost:9443".into(),
        }
    }
}

impl AuthPolicy {
    /// Whether members of `role` must use WebAuthn.
    pub fn requires_webauthn(&self, role: Role) -> bool {
        self.webauthn_roles.contains(&role)
    }
}

impl Services {
    /// Demands a recent re-authentication: dangerous actions (wipe, role
    /// changes, token creation, personal-data export) need an interactive
    /// session that stepped up within the policy's window. Tokens never can.
    pub fn require_step_up(&self, actor: &AdminActor) -> CoreResult<()> {
        let now = self.clock.now();
        match &actor.via {
            Via::Session(s)
                if s.stage == SessionStage::Full
                    && s.step_up_at
                        .is_some_and(|t| now - t <= self.config.auth.step_up_window) =>
            {
                Ok(())
            }
            _ => Err(CoreError::StepUpRequired),
        }
    }

    /// An account's credentials (every account has them).
    pub(crate) async fn credentials_of(
        &self,
        admin: &AdminAccount,
    ) -> CoreResult<mamori_domain::AdminCredentials> {
        self.ports
            .admin
            .admin_credentials(&admin.id)
            .await?
            .ok_or_else(|| CoreError::Internal("account without credentials".into()))
    }

    /// Whether the account may log in right now (not disabled, not
    /// suspended, not locked).
    pub(crate) fn account_usable(admin: &AdminAccount) -> bool {
        Self::account_open(admin) && admin.locked_at.is_none()
    }

    /// Whether anything of the account may work (its sessions and tokens):
    /// neither disabled nor suspended.
    pub(crate) fn account_open(admin: &AdminAccount) -> bool {
        admin.disabled_at.is_none() && admin.suspended.is_none()
    }
}

/// The storage ports the administrator context uses, and no more: accounts,
/// tokens, approvals, secrets and control links; the audit log, to tell who
/// controls whom; the shared short-lived state (throttles, checks in
/// flight, pending ceremonies).
/// [`Services`](crate::Services) holds the store as this trait for the
/// context's files (checked by the architecture tests).
pub trait AdminPorts:
    AdminStore + TokenStore + ApprovalStore + SecretStore + ControlStore + AuditStore + EphemeralStore
{
}

impl<T> AdminPorts for T where
    T: AdminStore
        + TokenStore
        + ApprovalStore
        + SecretStore
        + ControlStore
        + AuditStore
        + EphemeralStore
        + ?Sized
{
}
