//! Word between servers that a device identity changed: a certificate was
//! revoked, or bound to another device. Each server caches the identities
//! it verified (`mamori_core::device::cache`); a change made on one server
//! must reach every other's cache at once, not when its entry expires.

use crate::StoreResult;
use async_trait::async_trait;
use mamori_domain::DeviceKey;
use std::sync::Arc;

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityChange {
    /// Every certificate of this device (revoked, or the device re-enrolled
    /// or left management).
    Device(DeviceKey),
    /// One certificate, by fingerprint (bound, or revoked alone).
    Certificate(String),
}

/// What a watch on other servers' changes reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityEvent {
    /// From now on every change is reported (the watch (re)connected).
    Listening,
    /// Changes may have been missed (the watch lost its connection): a
    /// cache must forget everything and trust nothing until `Listening`.
    Lost,
    /// A change some server (this one included) announced.
    Changed(IdentityChange),
}

/// Called with each event of a watch, on the backend's own task: keep it
/// short and never block.
pub type IdentityListener = Arc<dyn Fn(IdentityEvent) + Send + Sync>;

/// Announcing identity changes to the other servers on the same database.
#[async_trait]
pub trait IdentityFeed: Send + Sync {
    /// Tells every server watching (call it after the change is stored).
    /// A backend that serves one process (SQLite) does nothing.
    async fn announce_identity_change(&self, change: &IdentityChange) -> StoreResult<()>;
    /// Starts reporting every server's announcements to `listener` until
    /// the store is closed; false when this backend has no other servers
    /// (SQLite: the process's own cache is all there is).
    fn watch_identity_changes(&self, listener: IdentityListener) -> bool;
}
