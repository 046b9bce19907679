//! Mamori's service layer: the use-cases (enroll, check in, queue commands,
//! authenticate administrators) and the narrow ports they need. Handlers call
//! these; these call the ports. No HTTP, no SQL.

pub mod access;
pub mod admin;
pub mod audit;
pub mod device;
pub mod error;
pub mod fleet;
pub mod people;
pub mod pki;

pub use error::{Cause, CoreError, CoreResult, PasskeyProblem};

use mamori_ports::{Clock, Pusher, Store};
use pki::Pki;
use std::sync::Arc;
use time::OffsetDateTime;

/// A random record identifier: 96 bits, hex (approvals, groups,
/// incidents, policies).
pub(crate) fn random_id() -> CoreResult<String> {
    Ok(hex::encode(
        mamori_crypto::try_random_bytes(12).map_err(|e| CoreError::Internal(e.into()))?,
    ))
}

/// A display name given by an administrator (groups, policies): trimmed,
/// 1-100 characters, no control characters.
pub(crate) fn check_display_name(name: &str) -> CoreResult<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
        return Err(CoreError::BadRequest(
            "name must be 1-100 characters without control characters".into(),
        ));
    }
    Ok(n.to_owned())
}

/// Who hears of a device's answer to a command, in order (see
/// [`device::ResultHandler`]). Device management calls these; it knows
/// nothing of the contexts above it.
pub(crate) static RESULT_HANDLERS: &[&dyn device::ResultHandler] =
    &[&fleet::groups::ProfileResults];

/// Who carries out an approved request that the administrator context
/// does not own (see [`admin::approvals::ApprovalExecutor`]).
pub(crate) static APPROVAL_EXECUTORS: &[&dyn admin::approvals::ApprovalExecutor] = &[
    &device::retire::EraseOnApproval,
    &device::wipe::DeleteUsersOnApproval,
];

/// Settings the use-cases need.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Base URL devices use, e.g. `https://mdm.example.com:8443`.
    pub public_url: String,
    /// APNs topic written into enrollment profiles.
    pub push_topic: String,
    /// Organisation name shown in profiles.
    pub organization: String,
    /// The organisation's time zone (IANA name): the console shows times
    /// in it.
    pub time_zone: String,
    /// Accept SCEP envelopes encrypted with single DES (old clients).
    pub allow_single_des: bool,
    /// Validity of issued device identity certificates, in days.
    pub device_cert_days: u32,
    /// Default lifetime of API tokens, in days.
    pub token_ttl_days: u32,
    /// Administrator authentication policy.
    pub auth: admin::AuthPolicy,
    /// Departed people are purged this many days after departure (0: at
    /// the next run of the retention job).
    pub people_retention_days: u32,
    /// What offboarding does to a person's devices.
    pub offboard_action: people::offboard::OffboardAction,
    /// Detection rules.
    pub detection: audit::detect::DetectionPolicy,
    /// Anomaly rules on the audit stream.
    pub anomaly: audit::anomaly::AnomalyPolicy,
    /// The configured audit sinks (for the status listing).
    pub audit_sinks: Vec<audit::SinkInfo>,
    /// An EraseDevice for more devices than this waits for a second
    /// administrator.
    pub erase_approval_threshold: usize,
    /// EraseDevice commands all administrators together may queue in any
    /// 24 hours without a second administrator; past it, each waits for
    /// one (so one person with several accounts gets no more).
    pub erase_budget_per_day: u64,
    /// OS versions known to be vulnerable.
    pub vulnerable_os: Arc<fleet::compliance::VulnerableOs>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            public_url: "https://localhost:8443".into(),
            push_topic: "com.apple.mgmt.External.00000000-0000-0000-0000-000000000000".into(),
            organization: "Mamori".into(),
            time_zone: "Asia/Tokyo".into(),
            allow_single_des: true,
            device_cert_days: 365,
            token_ttl_days: 90,
            auth: admin::AuthPolicy::default(),
            people_retention_days: 30,
            offboard_action: people::offboard::OffboardAction::RemoveManagement,
            detection: audit::detect::DetectionPolicy::default(),
            anomaly: audit::anomaly::AnomalyPolicy::default(),
            audit_sinks: Vec::new(),
            erase_approval_threshold: 1,
            erase_budget_per_day: 5,
            vulnerable_os: Arc::new(fleet::compliance::VulnerableOs::shipped()),
        }
    }
}

/// Everything a use-case may touch, cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// Storage, every port at once: for the binary and the tests. The
    /// contexts use their own part of it, in [`Ports`].
    pub store: Arc<dyn Store>,
    /// The same store, as each context's ports.
    ports: Ports,
    /// Key material.
    pub pki: Arc<Pki>,
    /// Settings.
    pub config: Arc<CoreConfig>,
    /// Push delivery.
    pub pusher: Arc<dyn Pusher>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Verified device identities (see [`cache`]).
    pub identities: Arc<device::cache::IdentityCache>,
    /// Administrator authentication state.
    pub auth: Arc<admin::AuthState>,
    /// Master keys wrapping personal-data keys.
    pub vault: Arc<dyn people::vault::KeyProvider>,
    /// Detection state (sliding windows).
    pub detector: Arc<audit::detect::Detector>,
    /// The end of the audit chain as this process last wrote it.
    pub chain: Arc<audit::chain::ChainWriter>,
    /// Every group's progress as the last reconciliation pass counted it.
    pub progress: Arc<fleet::groups::ProgressCache>,
    /// The people blind-index key, once read (see `people::keys`).
    index_key: Arc<tokio::sync::OnceCell<zeroize::Zeroizing<Vec<u8>>>>,
}

/// The store as each context sees it: the ports it uses, and no more.
#[derive(Clone)]
pub(crate) struct Ports {
    pub(crate) audit: Arc<dyn audit::AuditPorts>,
    pub(crate) admin: Arc<dyn admin::AdminPorts>,
    pub(crate) device: Arc<dyn device::DevicePorts>,
    pub(crate) people: Arc<dyn people::PeoplePorts>,
    pub(crate) fleet: Arc<dyn fleet::FleetPorts>,
}

/// What a [`Services`] is made of; the rest of its state starts empty.
#[allow(missing_debug_implementations)]
pub struct Parts<S> {
    /// The storage backend.
    pub store: Arc<S>,
    /// Key material.
    pub pki: Arc<Pki>,
    /// Settings.
    pub config: Arc<CoreConfig>,
    /// Push delivery.
    pub pusher: Arc<dyn Pusher>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Administrator authentication state.
    pub auth: Arc<admin::AuthState>,
    /// Master keys wrapping personal-data keys.
    pub vault: Arc<dyn people::vault::KeyProvider>,
}

impl Services {
    /// Wires the services over one backend, which each context sees
    /// through its own ports.
    pub fn new<S: Store + 'static>(parts: Parts<S>) -> Self {
        let Parts {
            store,
            pki,
            config,
            pusher,
            clock,
            auth,
            vault,
        } = parts;
        Self {
            ports: Ports {
                audit: Arc::<S>::clone(&store),
                admin: Arc::<S>::clone(&store),
                device: Arc::<S>::clone(&store),
                people: Arc::<S>::clone(&store),
                fleet: Arc::<S>::clone(&store),
            },
            store,
            pki,
            config,
            pusher,
            clock,
            identities: Arc::default(),
            auth,
            vault,
            detector: Arc::default(),
            chain: Arc::default(),
            progress: Arc::default(),
            index_key: Arc::default(),
        }
    }
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Services {
    /// Now.
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}
