//! Leases of the background jobs: a job that must run once across every
//! server on one database runs only on the server holding its lease.

use crate::StoreResult;
use async_trait::async_trait;
use std::time::Duration;
use time::OffsetDateTime;

/// A job's lease as stored (an operator's view of who runs what).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The job's name.
    pub name: String,
    /// Who holds it (a server's holder identity).
    pub holder: String,
    /// When it ends unless renewed (in the past once it has run out).
    pub until: OffsetDateTime,
}

/// The jobs' leases.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes or renews the lease `name` for `holder`, to last `ttl` from
    /// now by the backend's clock (the database's on PostgreSQL, so the
    /// servers' clocks need not agree). Granted when no one holds it, when
    /// its holder's time has run out, or when `holder` holds it already (a
    /// renewal, even one that comes late); its new end then, `None` when
    /// another holder has it. One atomic decision: of holders racing for
    /// the same lease, exactly one is granted.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> StoreResult<Option<OffsetDateTime>>;
    /// Gives the lease `name` up if `holder` holds it (another holder's is
    /// left alone); whether it did.
    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<bool>;
    /// Every lease, by name, those that have run out included.
    async fn leases(&self) -> StoreResult<Vec<Lease>>;
}
