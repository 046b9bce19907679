//! Records of dead credentials in use: a revoked or expired token, a revoked
//! session, a token or session of a disabled account. Every use is refused;
//! the first use is recorded at once, and after that at most one record of
//! each kind (action and target) per credential per minute, the next one
//! carrying the count of the uses not recorded in between. So a leaver who
//! keeps replaying a credential cannot flood the audit log (and, through
//! high-severity alerts, the incident list).
//!
//! The counters live in memory, bounded: beyond [`MAX_ENTRIES`] the least
//! recently used one goes, after which that credential's next use is
//! recorded at once again (forgetting errs towards recording).

use crate::access::ClientContext;
use crate::{CoreResult, Services};
use mamori_domain::{AdminAccount, AuditEvent};
use mamori_domain::{AuditAction, Outcome};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// One record of a kind per credential at most this often.
pub const EVERY: Duration = Duration::minutes(1);
/// Credentials (times kinds of record) tracked at most.
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// When the last record was written; `None` when it could not be (the
    /// next use records again).
    recorded_at: Option<OffsetDateTime>,
    /// Uses not recorded since.
    suppressed: u32,
    /// Tick of the last use (its key in `Inner::order`).
    used: u64,
}

#[derive(Debug)]
struct Inner {
    capacity: usize,
    map: HashMap<String, Entry>,
    /// Tick of last use → key; the first is the least recently used.
    order: BTreeMap<u64, String>,
    tick: u64,
}

/// Per-credential record limiter (see the module documentation).
#[derive(Debug)]
pub struct DeadCredentials {
    inner: Mutex<Inner>,
}

impl Default for DeadCredentials {
    fn default() -> Self {
        Self::with_capacity(MAX_ENTRIES)
    }
}

impl DeadCredentials {
    /// A limiter tracking at most `capacity` keys.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                capacity: capacity.max(1),
                map: HashMap::new(),
                order: BTreeMap::new(),
                tick: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the record `key` is due at `now`: `Some(n)` when it is, `n`
    /// being the uses not recorded since the previous record; `None` when
    /// one was written less than [`EVERY`] ago (this use is counted).
    pub fn due(&self, key: &str, now: OffsetDateTime) -> Option<u32> {
        let mut g = self.lock();
        let inner = &mut *g;
        inner.tick += 1;
        let tick = inner.tick;
        if let Some(e) = inner.map.get_mut(key) {
            inner.order.remove(&e.used);
            e.used = tick;
            inner.order.insert(tick, key.to_owned());
            // A clock stepping back counts as "within the minute".
            if e.recorded_at.is_some_and(|t| now - t < EVERY) {
                e.suppressed = e.suppressed.saturating_add(1);
                return None;
            }
            e.recorded_at = Some(now);
            return Some(std::mem::take(&mut e.suppressed));
        }
        while inner.map.len() >= inner.capacity {
            let Some((_, oldest)) = inner.order.pop_first() else {
                break;
            };
            inner.map.remove(&oldest);
        }
        inner.map.insert(
            key.to_owned(),
            Entry {
                recorded_at: Some(now),
                suppressed: 0,
                used: tick,
            },
        );
        inner.order.insert(tick, key.to_owned());
        Some(0)
    }

    /// The record [`due`](Self::due) allowed could not be written: the next
    /// use of `key` records again, with the `suppressed` uses it carried.
    pub fn not_written(&self, key: &str, suppressed: u32) {
        let mut g = self.lock();
        if let Some(e) = g.map.get_mut(key) {
            e.recorded_at = None;
            e.suppressed = e.suppressed.saturating_add(suppressed);
        }
    }
}

impl Services {
    /// Appends `event`, a record of a dead credential in use, if one of its
    /// kind (action and target) is due (see [`DeadCredentials::due`]), with
    /// the count of the uses not recorded since the previous one. A failed
    /// append is an error, as for any record, and the next use tries again.
    pub(crate) async fn audit_dead_use(&self, mut event: AuditEvent) -> CoreResult<()> {
        let key = format!(
            "{}\u{0}{}",
            event.action,
            event.target.as_deref().unwrap_or("")
        );
        let Some(suppressed) = self.auth.dead.due(&key, event.at) else {
            return Ok(());
        };
        if suppressed > 0 {
            let more = format!("({suppressed} more uses since the previous record)");
            event.detail = Some(match event.detail.take() {
                Some(d) => format!("{d} {more}"),
                None => more,
            });
        }
        if let Err(e) = self.audit(event).await {
            self.auth.dead.not_written(&key, suppressed);
            return Err(e);
        }
        Ok(())
    }

    /// The high-severity alert `action` (`alert.token_after_offboarding`,
    /// `alert.session_after_offboarding`) for `credential` of the disabled
    /// account `owner` in use: an offboarded insider, or whoever took it.
    pub(crate) async fn alert_after_offboarding(
        &self,
        ctx: &ClientContext,
        action: AuditAction,
        credential: &str,
        owner: &AdminAccount,
    ) -> CoreResult<()> {
        tracing::warn!(credential, source = %ctx.source, "ALERT: credential of a disabled account used");
        self.audit_dead_use(
            self.audit_record("system", ctx, action, Outcome::Alert)
                .target(credential)
                .detail(format!(
                    "severity=high owner={} disabled ({})",
                    owner.name,
                    owner
                        .disabled_reason
                        .as_deref()
                        .unwrap_or("no reason given")
                ))
                .event(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::days(20_000)
    }

    #[test]
    fn first_use_records_then_one_per_minute_with_the_count() {
        let d = DeadCredentials::default();
        let now = t0();
        assert_eq!(d.due("auth.token\0tok", now), Some(0));
        for i in 1..=37 {
            assert_eq!(d.due("auth.token\0tok", now + Duration::seconds(i)), None);
        }
        // Another credential, and another kind of record of the same one,
        // are limited on their own.
        assert_eq!(d.due("auth.token\0other", now), Some(0));
        assert_eq!(d.due("alert.x\0tok", now + Duration::seconds(5)), Some(0));
        // Just short of a minute: still suppressed.
        assert_eq!(
            d.due("auth.token\0tok", now + EVERY - Duration::milliseconds(1)),
            None
        );
        // A minute after the record: recorded, with the 38 in between.
        assert_eq!(d.due("auth.token\0tok", now + EVERY), Some(38));
        assert_eq!(d.due("auth.token\0tok", now + EVERY), None);
        // Long after: recorded, with the one suppressed since.
        assert_eq!(d.due("auth.token\0tok", now + Duration::hours(3)), Some(1));
        // A clock stepping back does not open the gate.
        assert_eq!(d.due("auth.token\0tok", now), None);
    }

    #[test]
    fn an_unwritten_record_is_tried_again_with_its_count() {
        let d = DeadCredentials::default();
        let now = t0();
        assert_eq!(d.due("k", now), Some(0));
        assert_eq!(d.due("k", now), None);
        assert_eq!(d.due("k", now + EVERY), Some(1));
        d.not_written("k", 1);
        assert_eq!(d.due("k", now + EVERY), Some(1));
        assert_eq!(d.due("k", now + EVERY), None);
    }

    #[test]
    fn a_flood_of_distinct_credentials_stays_bounded_and_keeps_the_busy_one() {
        let d = DeadCredentials::with_capacity(100);
        let now = t0();
        assert_eq!(d.due("busy", now), Some(0));
        for i in 0..1_000 {
            assert_eq!(d.due(&format!("filler{i}"), now), Some(0));
            // The replayed credential stays recently used: still limited.
            assert_eq!(d.due("busy", now), None);
        }
        let g = d.lock();
        assert_eq!(g.map.len(), 100);
        assert_eq!(g.order.len(), 100);
        assert!(g.map.contains_key("busy"));
        assert!(!g.map.contains_key("filler0"));
        assert!(g.map.contains_key("filler999"));
    }

    #[test]
    fn an_evicted_credential_records_again_at_once() {
        let d = DeadCredentials::with_capacity(2);
        let now = t0();
        assert_eq!(d.due("a", now), Some(0));
        assert_eq!(d.due("b", now), Some(0));
        assert_eq!(d.due("c", now), Some(0));
        assert_eq!(d.due("a", now), Some(0));
    }
}
