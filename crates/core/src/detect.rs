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

/// Per-actor sliding windows of personal-data reads.
#[derive(Debug, Default)]
pub struct Detector {
    reads: Mutex<HashMap<String, VecDeque<(OffsetDateTime, i64)>>>,
}

impl Detector {
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
        let mut map = self.reads.lock().unwrap_or_else(|p| p.into_inner());
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
        self.audit(self.audit_event(
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
        Err(CoreError::Forbidden(
            "suspended: bulk reads of personal data; a security officer has been alerted".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
