//! Short-lived state every server on one database shares: one-time values
//! (a pending WebAuthn ceremony), counters in a time window (sign-in
//! throttles, the records of dead credentials) and claims (one password
//! check per login name at a time). Every entry lives in a space (a kind
//! of entry) under a key, and ends at its expiry; a space holds at most
//! [`Space::cap`] entries, so a caller sending many distinct keys cannot
//! grow it without bound.
//!
//! What happens at the cap depends on the kind of entry: a new one-time
//! value or claim is refused (it must not push out someone else's), a new
//! counter pushes out the least recently used one of its space (a caller
//! who keeps failing stays recently used, so flooding a space with new
//! keys does not reset anyone's count). Whenever a new entry is stored,
//! expired ones are swept first (a bounded batch, of any space).
//!
//! Spaces and keys are text without a NUL character. Times are the
//! caller's, kept to the millisecond (a backoff of one second must last
//! one second): the servers' clocks are expected to agree within a second
//! or two.

use crate::StoreResult;
use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

/// A space of entries and the most it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space<'a> {
    /// The space's name (`ceremony`, `throttle`, ...).
    pub name: &'a str,
    /// Entries kept at most (unexpired ones; at least 1).
    pub cap: u64,
}

/// A counter as stored: events counted since it last started again, and
/// the latest one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Events counted.
    pub count: u32,
    /// When the latest was counted.
    pub last: OffsetDateTime,
}

/// Short-lived state shared by every server on the database (see the
/// module documentation).
#[async_trait]
pub trait EphemeralStore: Send + Sync {
    /// Stores a one-time `value` under `key` until `expires`, replacing any
    /// value of the key. False, and nothing stored, when the space already
    /// holds its cap of other unexpired entries.
    async fn put_once(
        &self,
        space: Space<'_>,
        key: &str,
        value: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;

    /// Takes the value under `key`: removes it and returns it if it has not
    /// expired. Of callers racing for one value (on any server) exactly
    /// one gets it; every later take gets nothing.
    async fn take_once(
        &self,
        space: Space<'_>,
        key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Vec<u8>>>;

    /// Counts an event of `key` and returns the counter. The count starts
    /// again at 1 when the previous event is `idle` or more before `now`
    /// (a clock stepping back counts as within). The counter is kept until
    /// `keep` after this event; a new key in a full space pushes out the
    /// least recently used counter of the space.
    async fn count_event(
        &self,
        space: Space<'_>,
        key: &str,
        idle: Duration,
        keep: Duration,
        now: OffsetDateTime,
    ) -> StoreResult<Tally>;

    /// The counter of `key`, unless it has expired. Reading it counts as
    /// using it (it is pushed out later).
    async fn tally(
        &self,
        space: Space<'_>,
        key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Tally>>;

    /// A gate that lets `key` pass at most once per `every`: `Some(n)` when
    /// it passes now, `n` being the refusals since it last passed; `None`
    /// when it passed less than `every` ago (a clock stepping back counts
    /// as within), this refusal counted. Kept until `keep` after this
    /// call; a new key in a full space pushes out the least recently used
    /// gate of the space.
    async fn pass_gate(
        &self,
        space: Space<'_>,
        key: &str,
        every: Duration,
        keep: Duration,
        now: OffsetDateTime,
    ) -> StoreResult<Option<u32>>;

    /// What passed the gate of `key` came to nothing: it lets the next call
    /// pass, with `carried` more refusals to tell. Nothing when the gate is
    /// gone.
    async fn reopen_gate(&self, space: Space<'_>, key: &str, carried: u32) -> StoreResult<()>;

    /// Claims `key` for `holder` until `expires`. True when no one holds it
    /// (an expired claim is taken over); false when someone does, or when
    /// the space holds its cap of unexpired claims. Of callers racing for
    /// one key (on any server) exactly one gets it.
    async fn claim(
        &self,
        space: Space<'_>,
        key: &str,
        holder: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;

    /// Gives up the claim of `key` if `holder` holds it (a claim that ran
    /// out and was taken over by another is left alone); whether it did.
    async fn release(&self, space: Space<'_>, key: &str, holder: &[u8]) -> StoreResult<bool>;

    /// Forgets whatever `key` holds.
    async fn forget(&self, space: Space<'_>, key: &str) -> StoreResult<()>;

    /// Removes every expired entry of every space; how many.
    async fn sweep_ephemeral(&self, now: OffsetDateTime) -> StoreResult<u64>;
}
