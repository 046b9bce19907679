//! Detection on the audit stream, in the request path where it must stop
//! harm: bulk personal-data reads. Every person read is recorded first;
//! then the reader's reads in the sliding window are counted, and past the
//! threshold an alert is recorded (severity high, evidence: the records'
//! sequence numbers) and — by policy, on by default — the reader is
//! suspended at once: the token revoked, or for a session every session
//! and token of the account. The request that crossed the line gets no
//! data.

use crate::auth::{Actor, ClientContext, Via};
use crate::{CoreError, CoreResult, Services};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// Bulk-read rule settings.
#[derive(Debug, Clone)]
pub struct DetectionPolicy {
    /// People read by one actor within `window` that fire the alert.
    pub bulk_read_threshold: usize,
    /// The sliding window.
    pub bulk_read_window: Duration,
    /// Suspend the actor when the alert fires.
    pub suspend_on_bulk_read: bool,
}

impl Default for DetectionPolicy {
    fn default() -> Self {
        Self {
            bulk_read_threshold: 300,
            bulk_read_window: Duration::minutes(1),
            suspend_on_bulk_read: true,
        }
    }
}

/// Per-actor sliding windows of personal-data reads, where each device
/// identity was last used from, and how many refused device requests each
/// source made this minute.
#[derive(Debug, Default)]
pub struct Detector {
    reads: Mutex<HashMap<String, VecDeque<(OffsetDateTime, i64)>>>,
    device_sources: Mutex<HashMap<String, VecDeque<(IpAddr, OffsetDateTime)>>>,
    rejections: Mutex<HashMap<IpAddr, (OffsetDateTime, u32)>>,
}

/// A device identity used alternately from two addresses within this
/// window (A, B, A) is in two places at once: a copied identity.
pub const TWO_PLACES_WINDOW: Duration = Duration::minutes(2);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Detector {
    /// Notes that `device` was used from `ip`; returns the two addresses
    /// when it alternated between them within [`TWO_PLACES_WINDOW`] (once
    /// per burst).
    fn device_seen(
        &self,
        device: &str,
        ip: IpAddr,
        now: OffsetDateTime,
    ) -> Option<(IpAddr, IpAddr)> {
        let mut map = lock(&self.device_sources);
        if map.len() > 100_000 {
            map.retain(|_, q| q.back().is_some_and(|(_, t)| now - *t < TWO_PLACES_WINDOW));
        }
        let q = map.entry(device.to_owned()).or_default();
        if q.back().is_some_and(|(last, _)| *last == ip) {
            if let Some(b) = q.back_mut() {
                b.1 = now;
            }
            return None;
        }
        q.push_back((ip, now));
        while q.len() > 3
            || q.front()
                .is_some_and(|(_, t)| now - *t >= TWO_PLACES_WINDOW)
        {
            q.pop_front();
        }
        if q.len() == 3 && q[0].0 == q[2].0 && q[0].0 != q[1].0 {
            let pair = (q[0].0, q[1].0);
            q.clear();
            return Some(pair);
        }
        None
    }

    /// Whether a refused device request from `ip` should be recorded: the
    /// first in each minute is, with the count of the ones not recorded in
    /// the minute before (a flood cannot flood the log).
    fn rejection(&self, ip: IpAddr, now: OffsetDateTime) -> Option<u32> {
        let mut map = lock(&self.rejections);
        if map.len() > 100_000 {
            map.retain(|_, (t, _)| now - *t < Duration::minutes(1));
        }
        match map.get_mut(&ip) {
            Some((start, n)) if now - *start < Duration::minutes(1) => {
                *n += 1;
                None
            }
            Some(entry) => {
                let suppressed = entry.1;
                *entry = (now, 0);
                Some(suppressed)
            }
            None => {
                map.insert(ip, (now, 0));
                Some(0)
            }
        }
    }

    /// Adds reads (record sequence numbers at `now`) for `actor`; returns
    /// the evidence (sequence numbers in the window) when the threshold is
    /// reached, and forgets it (one alert per burst).
    fn observe(
        &self,
        actor: &str,
        now: OffsetDateTime,
        seqs: &[i64],
        policy: &DetectionPolicy,
    ) -> Option<Vec<i64>> {
        let mut map = lock(&self.reads);
        if map.len() > 10_000 {
            map.retain(|_, q| {
                q.back()
                    .is_some_and(|(t, _)| now - *t < policy.bulk_read_window)
            });
        }
        let q = map.entry(actor.to_owned()).or_default();
        while q
            .front()
            .is_some_and(|(t, _)| now - *t >= policy.bulk_read_window)
        {
            q.pop_front();
        }
        q.extend(seqs.iter().map(|s| (now, *s)));
        if q.len() >= policy.bulk_read_threshold {
            let evidence = q.iter().map(|(_, s)| *s).collect();
            q.clear();
            return Some(evidence);
        }
        None
    }
}

impl Services {
    /// An audit record of a device's own request.
    pub(crate) fn device_event(
        &self,
        device: &mamori_domain::DeviceKey,
        source: Option<IpAddr>,
        action: &str,
        detail: Option<String>,
    ) -> mamori_domain::AuditEvent {
        mamori_domain::AuditEvent {
            at: self.clock.now(),
            actor: format!("device:{device}"),
            source: source.map(|s| s.to_string()),
            action: action.to_owned(),
            target: Some(device.to_string()),
            outcome: "success".into(),
            request_id: None,
            detail,
        }
    }

    /// Records a refused device request (rate-limited per source). The
    /// request is refused whether or not the record could be written.
    pub(crate) async fn device_rejected(&self, source: Option<IpAddr>, what: &str, e: &CoreError) {
        let now = self.clock.now();
        let suppressed = match source {
            Some(ip) => match self.detector.rejection(ip, now) {
                Some(n) => n,
                None => return,
            },
            None => 0,
        };
        let reason = match e {
            CoreError::Unauthorized => "no valid device identity".to_owned(),
            other => other.to_string(),
        };
        let mut detail = format!("{what}: {reason}");
        if suppressed > 0 {
            detail.push_str(&format!(
                " ({suppressed} more from this source in the minute before)"
            ));
        }
        let event = mamori_domain::AuditEvent {
            at: now,
            actor: "anonymous".into(),
            source: source.map(|s| s.to_string()),
            action: "device.rejected".into(),
            target: None,
            outcome: "denied".into(),
            request_id: None,
            detail: Some(detail),
        };
        if let Err(e) = self.store.append_audit(&event).await {
            tracing::error!(error = %e, "cannot record a refused device request");
        }
    }

    /// Watches where a device identity is used from: alternating between
    /// two addresses within minutes means two holders of one identity.
    pub(crate) async fn observe_device_source(
        &self,
        device: &mamori_domain::DeviceKey,
        source: Option<IpAddr>,
    ) -> CoreResult<()> {
        let Some(ip) = source else { return Ok(()) };
        let now = self.clock.now();
        if let Some((a, b)) = self.detector.device_seen(device.as_str(), ip, now) {
            self.record_alert(&crate::anomaly::Alert {
                rule: "device_two_places",
                severity: "high",
                actor: format!("device:{device}"),
                evidence: Vec::new(),
                detail: format!(
                    "the device identity was used from {a}, then {b}, then {a} again within {} minutes: \
                     it may have been copied",
                    TWO_PLACES_WINDOW.whole_minutes()
                ),
            })
            .await?;
        }
        Ok(())
    }

    /// Revokes every session and token of an account (suspension).
    pub(crate) async fn revoke_everything_of(
        &self,
        admin: &mamori_domain::AdminId,
        now: OffsetDateTime,
    ) -> CoreResult<(u64, u64)> {
        let sessions = self.store.revoke_admin_sessions(admin, None, now).await?;
        let mut tokens = 0;
        for t in self.store.list_tokens(Some(admin)).await? {
            if t.revoked_at.is_none() && self.store.revoke_token(&t.id, now).await? {
                tokens += 1;
            }
        }
        Ok((sessions, tokens))
    }

    /// Feeds personal-data reads to the bulk-read rule; when it fires, the
    /// alert is recorded, the actor suspended (by policy) and the request
    /// refused.
    pub(crate) async fn observe_personal_reads(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        seqs: &[i64],
    ) -> CoreResult<()> {
        let policy = &self.config.detection;
        let now = self.clock.now();
        let Some(evidence) = self.detector.observe(&actor.label(), now, seqs, policy) else {
            return Ok(());
        };
        let (first, last) = (
            evidence.first().copied().unwrap_or(0),
            evidence.last().copied().unwrap_or(0),
        );
        tracing::warn!(actor = %actor.label(), reads = evidence.len(), "ALERT: bulk personal-data reads");
        let alert_seq = self
            .store
            .append_audit(&self.audit_event(
                "system",
                ctx,
                "alert.bulk_personal_data_read",
                Some(&actor.label()),
                "alert",
                Some(format!(
                    "severity=high reads={} window={}s evidence=records {first}-{last}",
                    evidence.len(),
                    policy.bulk_read_window.whole_seconds()
                )),
            ))
            .await?;
        if !policy.suspend_on_bulk_read {
            self.incident_for_alert(alert_seq, "bulk_personal_data_read", &actor.label())
                .await?;
            return Ok(());
        }
        let now = self.clock.now();
        let what = match &actor.via {
            Via::Token(t) => {
                self.store.revoke_token(&t.id, now).await?;
                format!("token {} revoked", t.id)
            }
            Via::Session(_) => {
                let (sessions, tokens) = self.revoke_everything_of(&actor.admin.id, now).await?;
                format!("sessions revoked={sessions} tokens revoked={tokens}")
            }
        };
        self.audit(self.audit_event(
            "system",
            ctx,
            "actor.suspend",
            Some(&actor.label()),
            "success",
            Some(format!("reason=bulk personal-data reads; {what}")),
        ))
        .await?;
        self.incident_for_alert(alert_seq, "bulk_personal_data_read", &actor.label())
            .await?;
        Err(CoreError::Forbidden(
            "suspended: bulk reads of personal data; a security officer has been alerted".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_alternating_between_two_addresses_is_in_two_places() {
        let d = Detector::default();
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let a: IpAddr = "198.51.100.7".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let b: IpAddr = "203.0.113.9".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        // Repeats from one place, then a move to another: normal roaming.
        assert!(d.device_seen("D", a, t0).is_none());
        assert!(d.device_seen("D", a, t0 + Duration::seconds(5)).is_none());
        assert!(d.device_seen("D", b, t0 + Duration::seconds(10)).is_none());
        assert!(d.device_seen("D", b, t0 + Duration::seconds(15)).is_none());
        // Back to the first within the window: two holders.
        assert_eq!(
            d.device_seen("D", a, t0 + Duration::seconds(20)),
            Some((a, b))
        );
        // Slow alternation (hours apart) is roaming.
        let t1 = t0 + Duration::hours(1);
        assert!(d.device_seen("E", a, t1).is_none());
        assert!(d.device_seen("E", b, t1 + Duration::minutes(3)).is_none());
        assert!(d.device_seen("E", a, t1 + Duration::minutes(6)).is_none());
    }

    #[test]
    fn refused_device_requests_are_recorded_once_a_minute_per_source() {
        let d = Detector::default();
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let ip = IpAddr::from([192, 0, 2, 1]);
        assert_eq!(d.rejection(ip, t0), Some(0));
        for i in 1..=50 {
            assert_eq!(d.rejection(ip, t0 + Duration::milliseconds(i * 100)), None);
        }
        assert_eq!(d.rejection(IpAddr::from([192, 0, 2, 2]), t0), Some(0));
        assert_eq!(d.rejection(ip, t0 + Duration::seconds(61)), Some(50));
    }

    #[test]
    fn fires_once_per_burst_within_the_window() {
        let d = Detector::default();
        let p = DetectionPolicy {
            bulk_read_threshold: 5,
            ..DetectionPolicy::default()
        };
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        assert!(d.observe("a", t0, &[1, 2, 3], &p).is_none());
        assert!(d.observe("b", t0, &[4, 5, 6], &p).is_none(), "per actor");
        assert_eq!(d.observe("a", t0, &[7, 8], &p), Some(vec![1, 2, 3, 7, 8]));
        assert!(d.observe("a", t0, &[9], &p).is_none(), "evidence consumed");
        // Old reads leave the window.
        assert!(d
            .observe("b", t0 + Duration::minutes(2), &[10, 11], &p)
            .is_none());
    }
}
