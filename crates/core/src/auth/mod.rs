//! Administrators: accounts, the login (password, then a second factor),
//! server-side sessions, step-up, throttling and API tokens bound to accounts.
//!
//! Every request on the admin listener is made by an [`AdminActor`]: an account
//! reached through a session cookie or through one of its API tokens. Nothing
//! of a disabled account works: disabling revokes its sessions and tokens in
//! one transaction, and every request re-reads the account.

mod accounts;
mod authorized;
mod dead;
mod login;
mod mfa;
mod throttle;
mod webauthn;

pub(crate) use accounts::parse_role;
pub use accounts::{AdminSummary, Created, NewAdmin, Reset, RoleChange, CLI_ACTOR};
pub use authorized::{permit, Authorized, Permit};
pub use dead::DeadCredentials;
pub use login::ONE_TIME_PASSWORD_TTL;
pub use login::{LoginOutcome, SessionCookie};
pub use mfa::{Enrolled, Factors, TotpEnrollment, WebauthnChallenge};
pub use throttle::SourceThrottle;
pub use webauthn::Ceremonies;

use crate::{CoreError, CoreResult, Services};
use mamori_domain::{
    AdminAccount, AdminSession, ApiToken, AuditAction, AuditEvent, Outcome, Permission, Role,
    SessionStage,
};
use time::{Duration, OffsetDateTime};

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

/// Where a request comes from, for throttling, session binding and audit.
#[derive(Debug, Clone, Default)]
pub struct ClientContext {
    /// Source IP address.
    pub source: String,
    /// The User-Agent header, if any.
    pub user_agent: Option<String>,
    /// The request's ID.
    pub request_id: Option<String>,
}

impl ClientContext {
    /// SHA-256 of the User-Agent (sessions are bound to it).
    pub(crate) fn client_hash(&self) -> String {
        mamori_crypto::sha256_hex(self.user_agent.as_deref().unwrap_or("").as_bytes())
    }
}

/// An audit record being built (see [`Services::audit_record`]).
#[derive(Debug, Clone)]
#[must_use = "a record is written only when handed to Services::audit"]
pub struct Record(AuditEvent);

impl Record {
    /// What the action was done to (an account name, a device, a person's
    /// pseudonymous ID, a route).
    pub fn target(mut self, target: &str) -> Self {
        self.0.target = Some(target.to_owned());
        self
    }

    /// The target, when there may be none.
    pub fn target_opt(mut self, target: Option<&str>) -> Self {
        self.0.target = target.map(str::to_owned);
        self
    }

    /// The particulars (`key=value` pairs; never a secret).
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.0.detail = Some(detail.into());
        self
    }

    /// The particulars, when there may be none.
    pub fn detail_opt(mut self, detail: Option<String>) -> Self {
        self.0.detail = detail;
        self
    }

    /// The event to write.
    pub fn event(self) -> AuditEvent {
        self.0
    }
}

impl From<Record> for AuditEvent {
    fn from(r: Record) -> Self {
        r.0
    }
}

/// How an actor authenticated.
#[derive(Debug, Clone)]
pub enum Via {
    /// A session cookie.
    Session(AdminSession),
    /// An API token.
    Token(ApiToken),
}

/// Who acts: every operation that changes something or reads personal
/// data names one, and the audit record names it by [`Actor::label`].
#[derive(Debug, Clone)]
pub enum Actor {
    /// An administrator, through a session or an API token (authenticated
    /// by the guard; see [`AdminActor`]). Boxed: the account and its
    /// credential are ten times the size of the other variants.
    Admin(Box<AdminActor>),
    /// The `mamori` command line on the server's host, run by someone who
    /// can read the data directory.
    Host(HostUser),
    /// One of the server's own background jobs.
    Job(Job),
}

impl From<AdminActor> for Actor {
    fn from(a: AdminActor) -> Self {
        Self::Admin(Box::new(a))
    }
}

impl Actor {
    /// How the actor appears in the audit log: `admin:NAME`,
    /// `token:ID:NAME`, `cli:USER(uid=N)` or `system`.
    pub fn label(&self) -> String {
        match self {
            Self::Admin(a) => a.label(),
            Self::Host(h) => h.0.clone(),
            Self::Job(_) => "system".to_owned(),
        }
    }

    /// The administrator behind the action, if it is one.
    pub fn admin(&self) -> Option<&AdminActor> {
        match self {
            Self::Admin(a) => Some(a),
            Self::Host(_) | Self::Job(_) => None,
        }
    }

    /// For an operation whose administrator rules (step-up, a second
    /// person, control links) only the host's command line may skip: Ok
    /// for the host. A job is refused (a job that needs such an operation
    /// gets rules of its own), and so is an administrator who reached the
    /// direct path.
    pub fn host_only(&self) -> CoreResult<()> {
        match self {
            Self::Host(_) => Ok(()),
            Self::Job(job) => Err(CoreError::Forbidden(format!(
                "the {job:?} job may not do this directly"
            ))),
            Self::Admin(_) => Err(CoreError::Forbidden(
                "this path is the host's command line's".into(),
            )),
        }
    }

    /// The administrator's account, if the actor is one.
    pub fn account(&self) -> Option<&AdminAccount> {
        self.admin().map(|a| &a.admin)
    }
}

/// The operating-system user who ran a `mamori` command on the server's
/// host, as the audit log names them (`cli:USER(uid=N)`; see the server's
/// `operator` module). Only the binary's command line makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostUser(String);

impl HostUser {
    /// The user named by `label` (`cli:` is put in front when missing, so
    /// the log can always tell the command line apart).
    pub fn new(label: &str) -> Self {
        if accounts::is_cli_actor(label) {
            Self(label.to_owned())
        } else {
            Self(format!("{CLI_ACTOR}:{label}"))
        }
    }
}

/// The server's background jobs (recorded as `system`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Purging departed people and overdue exports.
    Retention,
    /// Locking or wiping devices whose offboarding grace ran out.
    Offboarding,
    /// Detection and anomaly rules acting on what they found.
    Detection,
    /// Incident bookkeeping.
    Incidents,
    /// Key rotation and rewrapping.
    Keys,
    /// Policy reconciliation and compliance.
    Fleet,
}

/// An administrator authenticated by the guard: the account and the
/// credential it used.
#[derive(Debug, Clone)]
pub struct AdminActor {
    /// The account.
    pub admin: AdminAccount,
    /// The credential used.
    pub via: Via,
}

impl AdminActor {
    /// Whether the actor may do what `p` covers: a full session of a role
    /// holding it, or a token whose role and scope hold it (and whose
    /// account's role still does).
    pub fn allows(&self, p: Permission) -> bool {
        match &self.via {
            Via::Session(s) => s.stage == SessionStage::Full && self.admin.role.allows(p),
            Via::Token(t) => t.allows(p) && self.admin.role.allows(p),
        }
    }

    /// The session stage, for session actors.
    pub fn stage(&self) -> Option<SessionStage> {
        match &self.via {
            Via::Session(s) => Some(s.stage),
            Via::Token(_) => None,
        }
    }

    /// How the actor appears in the audit log.
    pub fn label(&self) -> String {
        match &self.via {
            Via::Session(_) => format!("admin:{}", self.admin.name),
            Via::Token(t) => format!("token:{}:{}", t.id, self.admin.name),
        }
    }
}

impl Services {
    /// Appends an audit record. A record that cannot be written fails the
    /// call (the audit-log issue makes every action fail closed on it).
    pub async fn audit(&self, event: impl Into<AuditEvent>) -> CoreResult<()> {
        self.append_audit(&[event.into()]).await?;
        Ok(())
    }

    /// Appends one audit record; returns its sequence number.
    pub async fn audit_seq(&self, event: impl Into<AuditEvent>) -> CoreResult<i64> {
        let seqs = self.append_audit(&[event.into()]).await?;
        seqs.first()
            .copied()
            .ok_or_else(|| CoreError::Internal("an append returned no sequence number".into()))
    }

    /// Appends audit records, in order, all or none; returns their
    /// sequence numbers.
    pub async fn append_audit(&self, events: &[AuditEvent]) -> CoreResult<Vec<i64>> {
        self.chain.append(&*self.store, events).await
    }

    /// Starts an audit record stamped now: what happened, how it ended,
    /// who did it and from where. `label` is how the record names its
    /// actor ([`Actor::label`], or `system`, `anonymous`, a device): the
    /// record's text, not who may do what. The target and the detail are
    /// added on the returned [`Record`].
    pub fn audit_record(
        &self,
        label: &str,
        ctx: &ClientContext,
        action: AuditAction,
        outcome: Outcome,
    ) -> Record {
        Record(AuditEvent {
            at: self.clock.now(),
            actor: label.to_owned(),
            source: (!ctx.source.is_empty()).then(|| ctx.source.clone()),
            action: action.as_str().to_owned(),
            target: None,
            outcome: outcome.as_str().to_owned(),
            request_id: ctx.request_id.clone(),
            detail: None,
        })
    }

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
        self.store
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

    /// Now.
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

/// Process-wide authentication state: throttles, pending WebAuthn
/// ceremonies, the CSRF key.
#[derive(Debug)]
pub struct AuthState {
    /// Failure counters per source address and per unknown login name.
    pub throttle: SourceThrottle,
    /// Limits the records of dead credentials in use (per credential).
    pub dead: DeadCredentials,
    /// WebAuthn relying party and pending ceremonies.
    pub ceremonies: Ceremonies,
    csrf_key: zeroize::Zeroizing<Vec<u8>>,
}

impl AuthState {
    /// State for a server reached at `admin_url`.
    pub fn new(admin_url: &str, organization: &str) -> Self {
        Self {
            throttle: SourceThrottle::default(),
            dead: DeadCredentials::default(),
            ceremonies: Ceremonies::new(admin_url, organization),
            csrf_key: zeroize::Zeroizing::new(mamori_crypto::random_bytes(32)),
        }
    }

    /// The CSRF token of a session: an HMAC of the session secret under a
    /// per-process key, so it needs no storage and cannot be computed
    /// without the cookie.
    pub fn csrf_token(&self, session_secret: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mamori_crypto::hmac_sha256(
            &self.csrf_key,
            session_secret.as_bytes(),
        ))
    }
}
