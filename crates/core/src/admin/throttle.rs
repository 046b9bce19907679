//! In-memory throttling of login attempts per source address, and per login
//! name for names that match no account (so an unknown name is slowed down
//! exactly like a known one and the responses do not tell them apart).
//! Per-account counters of real accounts live in the database.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// Failures older than this are forgotten.
const WINDOW: Duration = Duration::hours(1);
/// Entries kept at most; beyond it, the least recently used one goes (an
/// attacker who keeps trying stays recently used, so flooding the map with
/// new sources does not reset anyone's backoff).
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: OffsetDateTime,
    blocked_until: Option<OffsetDateTime>,
}

/// Failure counters with exponential backoff.
#[derive(Debug)]
pub struct SourceThrottle {
    entries: Mutex<Lru>,
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

/// A map bounded by evicting its least recently used entry.
#[derive(Debug)]
struct Lru {
    capacity: usize,
    /// Key → (entry, the tick of its last use).
    map: HashMap<String, (Entry, u64)>,
    /// Tick of last use → key; the first is the least recently used.
    order: BTreeMap<u64, String>,
    tick: u64,
}

impl Lru {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            map: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
        }
    }

    /// The entry of `key`, marked as just used.
    fn touch(&mut self, key: &str) -> Option<&mut Entry> {
        let (entry, used) = self.map.get_mut(key)?;
        self.order.remove(used);
        self.tick += 1;
        *used = self.tick;
        self.order.insert(self.tick, key.to_owned());
        Some(entry)
    }

    /// The entry of `key` (a new one from `fresh` if there is none, after
    /// evicting the least recently used when full), marked as just used.
    fn touch_or_insert(&mut self, key: &str, fresh: Entry) -> &mut Entry {
        if !self.map.contains_key(key) {
            while self.map.len() >= self.capacity {
                let Some((_, oldest)) = self.order.pop_first() else {
                    break;
                };
                self.map.remove(&oldest);
            }
        }
        self.tick += 1;
        // Ticks start at 1: 0 marks an entry not yet in `order`.
        let (entry, used) = self.map.entry(key.to_owned()).or_insert((fresh, 0));
        self.order.remove(used);
        *used = self.tick;
        self.order.insert(self.tick, key.to_owned());
        entry
    }

    fn remove(&mut self, key: &str) {
        if let Some((_, used)) = self.map.remove(key) {
            self.order.remove(&used);
        }
    }
}

impl SourceThrottle {
    /// A throttle keeping at most `capacity` keys.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(Lru::new(capacity)),
        }
    }

    /// Seconds to wait before `key` may try again, if it must. Looking a
    /// key up counts as using it.
    pub fn wait(&self, key: &str, now: OffsetDateTime) -> Option<u64> {
        let mut map = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let until = map.touch(key)?.blocked_until?;
        (until > now).then(|| u64::try_from((until - now).whole_seconds()).unwrap_or(0) + 1)
    }

    /// Records a failure for `key`; after `free` failures every further one
    /// blocks the key for an exponentially growing time.
    pub fn failure(&self, key: &str, now: OffsetDateTime, free: u32, max: Duration) {
        let mut map = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = map.touch_or_insert(
            key,
            Entry {
                failures: 0,
                last_failure: now,
                blocked_until: None,
            },
        );
        if now - e.last_failure >= WINDOW {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last_failure = now;
        e.blocked_until = backoff(e.failures, free, max).map(|d| now + d);
    }

    /// Forgets `key` (a login name that now exists, say).
    pub fn forget(&self, key: &str) {
        let mut map = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(key);
    }
}

/// The login names whose password is being checked right now. One check
/// per name at a time: otherwise parallel guesses all read the account's
/// backoff before the first failure is written, and each gets its
/// password checked (and its answer tells a right guess from a wrong one).
/// It holds only the names in flight, so it stays as small as the number
/// of concurrent sign-ins.
#[derive(Debug, Default)]
pub struct InFlight {
    names: Mutex<HashSet<String>>,
}

/// A name's turn to be checked; the name is free again when it is dropped.
#[derive(Debug)]
pub(crate) struct Turn<'a> {
    set: &'a InFlight,
    name: String,
}

impl InFlight {
    /// The turn of `name`, or `None` while another check of it runs.
    pub(crate) fn enter(&self, name: &str) -> Option<Turn<'_>> {
        let mut names = self
            .names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        names.insert(name.to_owned()).then(|| Turn {
            set: self,
            name: name.to_owned(),
        })
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut names = self
            .set
            .names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        names.remove(&self.name);
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

    #[test]
    fn blocks_after_free_failures_and_forgets_old_ones() {
        let t = SourceThrottle::default();
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        for _ in 0..2 {
            t.failure("1.2.3.4", now, 3, Duration::minutes(15));
        }
        assert_eq!(t.wait("1.2.3.4", now), None);
        t.failure("1.2.3.4", now, 3, Duration::minutes(15));
        assert_eq!(t.wait("1.2.3.4", now), Some(2));
        assert_eq!(t.wait("1.2.3.4", now + Duration::seconds(2)), None);
        assert_eq!(t.wait("5.6.7.8", now), None);
        // An hour later the count starts again.
        t.failure("1.2.3.4", now + WINDOW, 3, Duration::minutes(15));
        assert_eq!(t.wait("1.2.3.4", now + WINDOW), None);
    }

    fn len(t: &SourceThrottle) -> usize {
        t.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map
            .len()
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
        // source: blocked after the free failures, whatever address next.
        let t = SourceThrottle::default();
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let max = Duration::minutes(15);
        for i in 0..5u32 {
            let addr = format!("2001:db8:1:2:{:x}:{:x}::{:x}", i * 7919, i, i + 1);
            t.failure(&source_network(&addr), now, 3, max);
        }
        assert_eq!(len(&t), 1);
        let fresh = source_network("2001:db8:1:2:ffff:ffff:ffff:ffff");
        assert!(
            t.wait(&fresh, now).is_some(),
            "a new address of the same /64"
        );
        // The neighbouring /64 and an IPv4 source are others.
        assert_eq!(t.wait(&source_network("2001:db8:1:3::1"), now), None);
        assert_eq!(t.wait(&source_network("192.0.2.7"), now), None);
    }

    #[test]
    fn a_full_map_evicts_the_least_recently_used_not_everyone() {
        let t = SourceThrottle::default();
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let max = Duration::minutes(15);
        let attacker = "source:198.51.100.1";
        for _ in 0..6 {
            t.failure(attacker, now, 3, max);
        }
        let blocked = t.wait(attacker, now);
        assert!(blocked.is_some());
        // Fresh sources flood the map past its size; the attacker keeps
        // trying (failing, or being told to wait) now and then.
        let filler = |i: usize| format!("source:10.{}.{}.{}", i >> 16, (i >> 8) & 0xff, i & 0xff);
        for i in 0..MAX_ENTRIES + 500 {
            t.failure(&filler(i), now, 3, max);
            if i % 20_000 == 0 {
                t.failure(attacker, now, 3, max);
            }
            if i % 20_000 == 10_000 {
                assert!(t.wait(attacker, now).is_some());
            }
        }
        assert_eq!(len(&t), MAX_ENTRIES);
        assert!(
            t.wait(attacker, now).unwrap_or(0) >= blocked.unwrap_or(0),
            "the attacker's backoff survived the flood"
        );
        // The least recently used went (501 of them: the fillers and the
        // attacker are MAX_ENTRIES + 501 keys): the first fillers only.
        let kept = (0..500).filter(|i| len_has(&t, &filler(*i))).count();
        assert_eq!(kept, 0);
        assert!((502..MAX_ENTRIES + 500).all(|i| len_has(&t, &filler(i))));
        t.forget(attacker);
        assert_eq!(len(&t), MAX_ENTRIES - 1);
    }

    fn len_has(t: &SourceThrottle, key: &str) -> bool {
        t.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map
            .contains_key(key)
    }

    #[test]
    fn lru_order_follows_use() {
        let t = SourceThrottle::with_capacity(3);
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let max = Duration::minutes(15);
        for k in ["a", "b", "c"] {
            t.failure(k, now, 1, max);
        }
        // "a" is used again (a lookup counts), so "b" is the oldest.
        assert!(t.wait("a", now).is_some());
        t.failure("d", now, 1, max);
        assert!(len_has(&t, "a") && !len_has(&t, "b"));
        assert!(len_has(&t, "c") && len_has(&t, "d"));
        t.failure("e", now, 1, max);
        assert!(!len_has(&t, "c"));
        assert_eq!(len(&t), 3);
    }
}
