//! The narrow storage and delivery ports the services depend on: one module
//! per bounded context, each trait a few related operations. `Store` bundles
//! them for wiring. Implementations live in `mamori-store` (SQLite now,
//! PostgreSQL next); this crate knows no backend and no service.
//!
//! Contract: "not found" is `Ok(None)` / `Ok(false)`; `Err` always means the
//! backend failed.

use async_trait::async_trait;
use time::OffsetDateTime;

mod admin;
mod audit;
mod copy;
mod device;
mod ephemeral;
mod fleet;
mod identity;
mod keyring;
mod lease;
mod people;
mod reads;

pub use admin::*;
pub use audit::*;
pub use copy::*;
pub use device::*;
pub use ephemeral::*;
pub use fleet::*;
pub use identity::*;
pub use keyring::*;
pub use lease::*;
pub use people::*;
pub use reads::*;

/// A storage backend failure. The text is for the log, never for a client;
/// the backend's own error, when there is one, stays attached as the
/// source (a backend can be asked what exactly failed).
#[derive(Debug, thiserror::Error)]
#[error("storage: {message}")]
pub struct StoreError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// A failure the backend describes itself.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// A failure caused by `cause` (its text is the message).
    pub fn from_cause(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            message: cause.to_string(),
            source: Some(Box::new(cause)),
        }
    }

    /// A failure caused by `cause`, described by `message`.
    pub fn with_cause(
        message: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(cause)),
        }
    }

    /// What failed, without the `storage:` prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Result of a storage call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Every port at once, for wiring.
pub trait Store:
    ProfileStore
    + CertStore
    + DeviceStore
    + QueueStore
    + TokenStore
    + SecretStore
    + AdminStore
    + AuditStore
    + PeopleStore
    + ApprovalStore
    + SinkStore
    + AuditRetentionStore
    + IncidentStore
    + PolicyStore
    + GroupStore
    + ComplianceStore
    + InventoryStore
    + DepartmentStore
    + ReenrollmentStore
    + ControlStore
    + EphemeralStore
    + IdentityFeed
    + ReadLimitStore
    + LeaseStore
    + KeyRingStore
{
}
impl<T> Store for T where
    T: ProfileStore
        + CertStore
        + DeviceStore
        + QueueStore
        + TokenStore
        + SecretStore
        + AdminStore
        + AuditStore
        + PeopleStore
        + ApprovalStore
        + SinkStore
        + AuditRetentionStore
        + IncidentStore
        + PolicyStore
        + GroupStore
        + ComplianceStore
        + InventoryStore
        + DepartmentStore
        + ReenrollmentStore
        + ControlStore
        + EphemeralStore
        + IdentityFeed
        + ReadLimitStore
        + LeaseStore
        + KeyRingStore
{
}

/// Sends APNs notifications.
#[async_trait]
pub trait Pusher: Send + Sync {
    /// Pushes to each target; returns how many were accepted by APNs.
    async fn push(&self, targets: &[PushTarget]) -> usize;
    /// Installs the MDM push certificate and key (PEM); returns its topic.
    /// The error text is safe to show the administrator.
    fn configure(&self, cert_pem: &str, key_pem: &str) -> Result<String, String>;
    /// The topic of the installed certificate, if any.
    fn topic(&self) -> Option<String>;
    /// Checks a certificate and key as [`Self::configure`] would, without
    /// installing them: their topic and the certificate's end, or why not
    /// (safe to show).
    fn check(&self, cert_pem: &str, key_pem: &str) -> Result<(String, OffsetDateTime), String>;
    /// When the installed certificate expires, if one is installed.
    fn expires_at(&self) -> Option<OffsetDateTime>;
}

/// A clock, so tests can move time.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}
