//! The bulk-read limit's windows (`mamori_core::audit::detect`), shared by
//! every server on the database: one account's reads count together
//! whichever server each of its requests reaches.

use crate::StoreResult;
use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

/// A request to count `people` personal-data reads.
#[derive(Debug, Clone)]
pub struct ReadRequest<'a> {
    /// Chosen by the caller, unique: names the reservation (its evidence
    /// is attached to it later).
    pub id: i64,
    /// The windows it counts in (an account's, a source network's), in
    /// the order they are judged.
    pub keys: &'a [String],
    /// How many people.
    pub people: u64,
    /// Now.
    pub now: OffsetDateTime,
    /// The sliding window: reads older than this no longer count.
    pub window: Duration,
    /// People a window may hold; one more is over.
    pub threshold: u64,
    /// Count the reads even when a window is over (the alert-only policy).
    pub count_when_over: bool,
}

/// The first window a request would take over its threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverLimit {
    /// Which window.
    pub key: String,
    /// People already in it.
    pub read: u64,
    /// The disclosure records of its reads (audit sequence numbers, in
    /// order): the alert's evidence.
    pub evidence: Vec<i64>,
    /// True the first time in this burst (no alert for the window within
    /// the last `window`); the store marks it alerted.
    pub alert: bool,
}

/// What the limit says to a [`ReadRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadVerdict {
    /// Over a window's threshold, if it is.
    pub over: Option<OverLimit>,
    /// The reads were counted (within every threshold, or counted anyway).
    pub counted: bool,
}

/// Bulk-read windows: all or nothing per request, decided atomically
/// across every server, so concurrent requests cannot together pass a
/// threshold.
#[async_trait]
pub trait ReadLimitStore: Send + Sync {
    /// Judges and, if allowed, counts a request in every window at once.
    async fn reserve_reads(&self, request: &ReadRequest<'_>) -> StoreResult<ReadVerdict>;
    /// Attaches the disclosure records of a counted request (evidence for
    /// a later alert in its windows).
    async fn attach_read_evidence(
        &self,
        id: i64,
        seqs: &[i64],
        now: OffsetDateTime,
    ) -> StoreResult<()>;
}
