//! The people key ring across every process that holds it. The keys
//! themselves never enter the database (each server reads them from its
//! own `people.key` or environment); what the servers on one database must
//! agree on is kept here: which key wraps new data keys (the current one),
//! which is prepared to follow it (the next one), and what each running
//! server has loaded, reported under its holder identity until its report
//! runs out.
//!
//! Key IDs are text without a comma.

use crate::StoreResult;
use async_trait::async_trait;
use std::time::Duration;
use time::OffsetDateTime;

/// Which people key wraps new data keys, and which is prepared to follow it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeopleKeyChoice {
    /// The key every server wraps new data keys with (`None` until the
    /// first server names one).
    pub current: Option<String>,
    /// The key a rotation prepared: every server must load it before it
    /// becomes current.
    pub next: Option<String>,
}

/// What one running server reported of its people key ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHolder {
    /// The server's holder identity (as in the jobs' leases).
    pub holder: String,
    /// The IDs of the keys it has loaded.
    pub loaded: Vec<String>,
    /// The ID of the key it wraps new data keys with.
    pub wraps_with: String,
    /// When the report runs out unless renewed.
    pub until: OffsetDateTime,
}

/// The people key ring as the servers on one database share it (see the
/// module documentation).
#[async_trait]
pub trait KeyRingStore: Send + Sync {
    /// The current and the prepared key.
    async fn people_key_choice(&self) -> StoreResult<PeopleKeyChoice>;

    /// Names `current` the current key if no key is named yet (the first
    /// server, or the first after an upgrade); the choice after. Of
    /// servers racing, the first one's key is named.
    async fn adopt_people_key(&self, current: &str) -> StoreResult<PeopleKeyChoice>;

    /// Prepares `next` to follow `current`: only while `current` is the
    /// named current key and no other key is prepared (preparing the same
    /// key again is granted); `next` must differ from `current`. Whether
    /// `next` is prepared now.
    async fn prepare_people_key(&self, current: &str, next: &str) -> StoreResult<bool>;

    /// Makes the prepared key `next` current, in one decision: only while
    /// `next` is the prepared key and every server whose report has not run
    /// out has loaded it. Whether it did.
    async fn promote_people_key(&self, next: &str) -> StoreResult<bool>;

    /// Records that `holder` has loaded the keys `loaded` and wraps new data
    /// keys with `wraps_with`, until `ttl` from now by the backend's clock
    /// (the database's on PostgreSQL). Reports that ran out long ago are
    /// swept.
    async fn report_people_keys(
        &self,
        holder: &str,
        loaded: &[String],
        wraps_with: &str,
        ttl: Duration,
    ) -> StoreResult<()>;

    /// Removes `holder`'s report (a server stopping).
    async fn withdraw_people_keys(&self, holder: &str) -> StoreResult<()>;

    /// Every report that has not run out, by holder.
    async fn people_key_holders(&self) -> StoreResult<Vec<KeyHolder>>;

    /// The IDs of the keys that wrap at least one person's data key.
    async fn people_keys_wrapping(&self) -> StoreResult<Vec<String>>;
}
