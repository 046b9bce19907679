//! Throttling of login attempts per source address, and per login name for
//! names that match no account (so an unknown name is slowed down exactly
//! like a known one and the responses do not tell them apart), and the
//! one-check-per-name rule. Per-account counters of real accounts live in
//! the accounts' rows.
//!
//! Both live in the shared store (the `EphemeralStore`'s `throttle` and
//! `sign-in` spaces), so every server behind a load balancer counts the
//! same failures and sees the same checks in flight: an attacker
//! alternating servers is slowed down at the same count as against one.

use crate::Services;
use mamori_ports::{EphemeralStore, Space, StoreError, StoreResult, Tally};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// Failures older than this are forgotten.
const WINDOW: Duration = Duration::hours(1);
/// Keys kept at most; beyond it, the least recently used one goes (an
/// attacker who keeps trying stays recently used, so flooding the store
/// with new sources does not reset anyone's backoff).
pub const MAX_ENTRIES: u64 = 100_000;
/// The store's space of the failure counters.
const SPACE: &str = "throttle";

/// Failure counters with exponential backoff, in the shared store.
#[derive(Debug)]
pub struct SourceThrottle {
    capacity: u64,
}

impl Default for SourceThrottle {
    fn default() -> Self {
        Self::with_capacity(MAX_ENTRIES)
    }
}

/// The key a client address is throttled under: an IPv4 address as itself
/// (also when written IPv4-mapped), an IPv6 address by its /64 (one
/// subscriber, so one attacker, holds a whole /64 and could otherwise rotate
/// through its addresses). Text that is no address is used as it is.
pub fn source_network(source: &str) -> String {
    match source.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
        Err(_) => source.to_owned(),
    }
}

/// `2^(n - free)` seconds once `n` exceeds `free`, at most `max`.
pub(crate) fn backoff(n: u32, free: u32, max: Duration) -> Option<Duration> {
    if n < free {
        return None;
    }
    let exp = (n - free).min(20);
    Some(Duration::seconds(1_i64 << exp).min(max))
}

/// Seconds a key with the counter `t` waits at `now`, if it must: its
/// latest failure blocks it for the backoff its count earned.
fn wait_for(t: Tally, now: OffsetDateTime, free: u32, max: Duration) -> Option<u64> {
    let until = t.last + backoff(t.count, free, max)?;
    (until > now).then(|| u64::try_from((until - now).whole_seconds()).unwrap_or(0) + 1)
}

impl SourceThrottle {
    /// A throttle keeping at most `capacity` keys.
    pub fn with_capacity(capacity: u64) -> Self {
        Self { capacity }
    }

    fn space(&self) -> Space<'static> {
        Space {
            name: SPACE,
            cap: self.capacity,
        }
    }

    /// Seconds to wait before `key` may try again, if it must, its failures
    /// counted with `free` and `max`. Looking a key up counts as using it.
    pub async fn wait<S: EphemeralStore + ?Sized>(
        &self,
        store: &S,
        key: &str,
        now: OffsetDateTime,
        free: u32,
        max: Duration,
    ) -> StoreResult<Option<u64>> {
        let tally = store.tally(self.space(), key, now).await?;
        Ok(tally.and_then(|t| wait_for(t, now, free, max)))
    }

    /// Records a failure for `key` (one count on every server). Past its
    /// free failures, every further one blocks the key for an
    /// exponentially growing time, at most `max` ([`wait`](Self::wait)
    /// tells how long).
    pub async fn failure<S: EphemeralStore + ?Sized>(
        &self,
        store: &S,
        key: &str,
        now: OffsetDateTime,
        max: Duration,
    ) -> StoreResult<()> {
        // Kept while it may still count or block; after that it is as if
        // there were none.
        store
            .count_event(self.space(), key, WINDOW, WINDOW.max(max), now)
            .await?;
        Ok(())
    }

    /// Forgets `key` (a login name that now exists, say).
    pub async fn forget<S: EphemeralStore + ?Sized>(
        &self,
        store: &S,
        key: &str,
    ) -> StoreResult<()> {
        store.forget(self.space(), key).await
    }
}

impl Services {
    /// The throttle's key of a login name no account has.
    pub(crate) fn name_throttle_key(&self, name: &str) -> String {
        format!("name:{}", self.auth.name_key(name))
    }
}

/// How long a check holds its name at most: a server that stops in the
/// middle of one frees the name after this long.
const CHECK_TTL: Duration = Duration::minutes(1);
/// Checks in flight at most, across every server (a further one is
/// answered as if its name were being checked).
pub const MAX_CHECKS: u64 = 10_000;
/// The store's space of the checks in flight.
const CHECKS: &str = "sign-in";

/// The login names whose password is being checked right now, on any
/// server. One check per name at a time: otherwise parallel guesses all
/// read the account's backoff before the first failure is written, and
/// each gets its password checked (and its answer tells a right guess from
/// a wrong one). It holds only the names in flight, so it stays as small
/// as the number of concurrent sign-ins.
#[derive(Debug)]
pub struct InFlight {
    capacity: u64,
}

impl Default for InFlight {
    fn default() -> Self {
        Self {
            capacity: MAX_CHECKS,
        }
    }
}

/// A name's turn to be checked. [`Turn::release`] frees the name; a turn
/// dropped unreleased (its request ended early) frees it in the
/// background.
pub(crate) struct Turn {
    held: Option<(Arc<dyn EphemeralStore>, String, Vec<u8>)>,
    capacity: u64,
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turn")
            .field("held", &self.held.is_some())
            .finish_non_exhaustive()
    }
}

impl InFlight {
    /// The turn of `key` (a login name's key), or `None` while another
    /// check of it runs.
    pub(crate) async fn enter(
        &self,
        store: Arc<dyn EphemeralStore>,
        key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Turn>> {
        let holder = mamori_crypto::try_random_bytes(16)
            .map_err(|e| StoreError::with_cause("no random holder for a sign-in check", e))?;
        let space = checks(self.capacity);
        if !store
            .claim(space, key, &holder, now + CHECK_TTL, now)
            .await?
        {
            return Ok(None);
        }
        Ok(Some(Turn {
            held: Some((store, key.to_owned(), holder)),
            capacity: self.capacity,
        }))
    }
}

fn checks(capacity: u64) -> Space<'static> {
    Space {
        name: CHECKS,
        cap: capacity,
    }
}

impl Turn {
    /// Frees the name. A failure is logged: the claim then runs out by
    /// itself.
    pub(crate) async fn release(mut self) {
        if let Some((store, key, holder)) = self.held.take() {
            if let Err(e) = store.release(checks(self.capacity), &key, &holder).await {
                tracing::warn!(error = %e, "a sign-in check was not released; it runs out in a minute");
            }
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let Some((store, key, holder)) = self.held.take() else {
            return;
        };
        let space = checks(self.capacity);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = store.release(space, &key, &holder).await {
                    tracing::warn!(error = %e, "a sign-in check was not released; it runs out in a minute");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let max = Duration::minutes(15);
        assert_eq!(backoff(2, 3, max), None);
        assert_eq!(backoff(3, 3, max), Some(Duration::seconds(1)));
        assert_eq!(backoff(5, 3, max), Some(Duration::seconds(4)));
        assert_eq!(backoff(40, 3, max), Some(max));
    }

    /// What `wait` answers for a stored counter (the counting itself, its
    /// window and its bound are the store's, checked by the store's
    /// contract tests, `crates/store/tests/ephemeral.rs`).
    #[test]
    fn blocks_after_free_failures_for_the_backoff_earned() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let max = Duration::minutes(15);
        let at = |count| Tally { count, last: now };
        assert_eq!(wait_for(at(2), now, 3, max), None);
        assert_eq!(wait_for(at(3), now, 3, max), Some(2));
        assert_eq!(wait_for(at(3), now + Duration::seconds(1), 3, max), None);
        assert_eq!(wait_for(at(5), now, 3, max), Some(5));
        assert_eq!(wait_for(at(40), now, 3, max), Some(901));
        assert_eq!(wait_for(at(40), now + max, 3, max), None);
        // The free failures differ by key: ten per source by default.
        assert_eq!(wait_for(at(9), now, 10, max), None);
        assert_eq!(wait_for(at(10), now, 10, max), Some(2));
    }

    #[test]
    fn ipv6_sources_count_by_their_64() {
        assert_eq!(
            source_network("2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
            "2001:db8:1:2::/64"
        );
        assert_eq!(source_network("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(source_network("2001:db8:1:3::1"), "2001:db8:1:3::/64");
        assert_eq!(source_network("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(source_network("192.0.2.7"), "192.0.2.7");
        assert_eq!(source_network("::1"), "::/64");
        assert_eq!(source_network(""), "");
        // An attacker rotating through the addresses of one /64 is one
        // source, whatever address next.
        for i in 0..5u32 {
            let addr = format!("2001:db8:1:2:{:x}:{:x}::{:x}", i * 7919, i, i + 1);
            assert_eq!(source_network(&addr), "2001:db8:1:2::/64");
        }
    }
}
