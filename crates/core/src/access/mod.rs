//! Who acts, and the proof that they may: the shared kernel of every
//! context. An [`Actor`] is an administrator (through a session or a
//! token), the host's command line or a background job; an operation that
//! needs a permission takes an [`Authorized<P>`] that only
//! [`Actor::authorize`] makes. [`ClientContext`] is where a request came
//! from. Nothing here reads storage.

mod authorized;

pub use authorized::{permit, Authorized, Permit};

use crate::{CoreError, CoreResult};
use mamori_domain::{AdminAccount, AdminSession, ApiToken, Permission, SessionStage};

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

/// Who performs an account operation from the command line (root on the
/// server's host, with the data directory). The `mamori` binary records the
/// operating-system user too, as `cli:USER...` (see [`is_cli_actor`]).
pub const CLI_ACTOR: &str = "cli";

/// Whether the audit label `label` names the command line on the server's
/// host: [`CLI_ACTOR`] alone or followed by `:` and the user who ran it.
pub fn is_cli_actor(label: &str) -> bool {
    label
        .strip_prefix(CLI_ACTOR)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
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
        if is_cli_actor(label) {
            Self(label.to_owned())
        } else {
            Self(format!("{CLI_ACTOR}:{label}"))
        }
    }
}

/// Who runs what no route offers (retention, sweeps, checkpoints,
/// re-wrapping keys, a policy's profile with its secrets): the host's
/// command line or one of the server's jobs. Those operations take an
/// `&Operator`. The binary makes them (and tests do); the HTTP layer may
/// not name an `Operator`, a [`HostUser`] or a [`Job`]
/// (`architecture::the_http_layer_never_acts_as_the_host_or_a_job`).
#[derive(Debug, Clone)]
pub enum Operator {
    /// The host's command line.
    Host(HostUser),
    /// A background job.
    Job(Job),
}

impl Operator {
    /// The operator as an actor (what the audit records name).
    pub fn actor(&self) -> Actor {
        match self {
            Self::Host(h) => Actor::Host(h.clone()),
            Self::Job(j) => Actor::Job(*j),
        }
    }
}

impl From<HostUser> for Operator {
    fn from(h: HostUser) -> Self {
        Self::Host(h)
    }
}

impl From<Job> for Operator {
    fn from(j: Job) -> Self {
        Self::Job(j)
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
    /// Policy reconciliation, compliance and the inventory.
    Fleet,
    /// Checkpoints and retention of the audit log.
    Audit,
    /// The sweep of administrator accounts unused for too long.
    Accounts,
}

/// An administrator authenticated by the guard: the account and the
/// credential it used. Only core makes one (`authenticate_session`,
/// `authenticate_token`): another crate can read an actor but never build
/// one (`non_exhaustive`).
#[derive(Debug, Clone)]
#[non_exhaustive]
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
