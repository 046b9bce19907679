//! In-memory throttling of login attempts per source address, and per login
//! name for names that match no account (so an unknown name is slowed down
//! exactly like a known one and the responses do not tell them apart).
//! Per-account counters of real accounts live in the database.

use std::collections::HashMap;
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// Failures older than this are forgotten.
const WINDOW: Duration = Duration::hours(1);
/// Entries kept at most; beyond it, forgotten ones are dropped first.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: OffsetDateTime,
    blocked_until: Option<OffsetDateTime>,
}

/// Failure counters with exponential backoff.
#[derive(Debug, Default)]
pub struct SourceThrottle {
    entries: Mutex<HashMap<String, Entry>>,
}

/// `2^(n - free)` seconds once `n` exceeds `free`, at most `max`.
pub(crate) fn backoff(n: u32, free: u32, max: Duration) -> Option<Duration> {
    if n < free {
        return None;
    }
    let exp = (n - free).min(20);
    Some(Duration::seconds(1_i64 << exp).min(max))
}

impl SourceThrottle {
    /// Seconds to wait before `key` may try again, if it must.
    pub fn wait(&self, key: &str, now: OffsetDateTime) -> Option<u64> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let until = map.get(key)?.blocked_until?;
        (until > now).then(|| u64::try_from((until - now).whole_seconds()).unwrap_or(0) + 1)
    }

    /// Records a failure for `key`; after `free` failures every further one
    /// blocks the key for an exponentially growing time.
    pub fn failure(&self, key: &str, now: OffsetDateTime, free: u32, max: Duration) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, e| now - e.last_failure < WINDOW);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        let e = map.entry(key.to_owned()).or_insert(Entry {
            failures: 0,
            last_failure: now,
            blocked_until: None,
        });
        if now - e.last_failure >= WINDOW {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last_failure = now;
        e.blocked_until = backoff(e.failures, free, max).map(|d| now + d);
    }

    /// Forgets `key` (a login name that now exists, say).
    pub fn forget(&self, key: &str) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key);
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
}
