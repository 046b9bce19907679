//! Audit retention: records older than the retention period removed
//! behind a signed truncation mark, never past what a sink has yet to
//! deliver, and only once the part removed verifies.

use super::*;
use crate::access::Operator;

impl Services {
    /// Retention: removes the records older than `days` days, behind a
    /// signed "truncated up to" mark. Never removes records a sink has not
    /// delivered yet, and refuses when the part to remove does not verify
    /// (removing it would hide tampering). Returns the records removed.
    pub async fn apply_audit_retention(&self, by: &Operator, days: u32) -> CoreResult<u64> {
        let before = self.clock.now() - time::Duration::days(i64::from(days));
        self.truncate_audit_before(by, before).await
    }

    /// Removes the records written before `before` (see
    /// [`Self::apply_audit_retention`]).
    pub async fn truncate_audit_before(
        &self,
        _by: &Operator,
        before: time::OffsetDateTime,
    ) -> CoreResult<u64> {
        let now = self.clock.now();
        let Some((mut seq, mut hash)) = self.ports.audit.last_audit_before(before).await? else {
            return Ok(0);
        };
        seq = self.delivered_to_every_sink(seq).await?;
        let marks = self.ports.audit.audit_truncations().await?;
        let start = marks.last().map(|m| (m.up_to_seq, m.hash.clone()));
        if seq <= start.as_ref().map_or(0, |s| s.0) {
            return Ok(0);
        }
        // Check the part to remove, and take the hash of its last record.
        let (fault, last_hash) = self.verify_segment(start.as_ref(), seq).await?;
        if let Some(h) = last_hash {
            hash = h;
        }
        if let Some(fault) = fault {
            tracing::error!(%fault, "audit retention refused: the records to remove do not verify");
            self.audit(AuditEvent {
                at: now,
                actor: "system".into(),
                source: None,
                action: AuditAction::AlertAuditChainBroken.as_str().into(),
                target: None,
                outcome: Outcome::Alert.as_str().into(),
                request_id: None,
                detail: Some(format!("severity=high retention refused: {fault}")),
            })
            .await?;
            return Err(CoreError::Internal(
                format!("audit retention refused: {fault}").into(),
            ));
        }
        let at = now.unix_timestamp();
        let before_at = before.unix_timestamp();
        let signature = self
            .pki
            .audit_key
            .sign(&truncation_message(seq, &hash, at, before_at))
            .map_err(|e| CoreError::Internal(e.into()))?;
        self.audit(AuditEvent {
            at: now,
            actor: "system".into(),
            source: None,
            action: AuditAction::AuditTruncate.as_str().into(),
            target: None,
            outcome: Outcome::Success.as_str().into(),
            request_id: None,
            detail: Some(format!("up_to={seq} before={before_at}")),
        })
        .await?;
        let removed = self
            .ports
            .audit
            .truncate_audit(&Truncation {
                up_to_seq: seq,
                hash,
                at,
                before_at,
                signature,
            })
            .await?;
        tracing::info!(up_to = seq, removed, "audit retention applied");
        Ok(removed)
    }

    /// How far retention may cut: not past what a sink has yet to deliver.
    pub(super) async fn delivered_to_every_sink(&self, mut seq: i64) -> CoreResult<i64> {
        for sink in &self.config.audit_sinks {
            let delivered = self
                .ports
                .audit
                .sink_state(&sink.name)
                .await?
                .map_or(0, |s| s.delivered_seq);
            if delivered < seq {
                tracing::warn!(sink = %sink.name, delivered, "audit retention waits for a sink");
                seq = delivered;
            }
        }
        Ok(seq)
    }

    /// Verifies the chain from the last truncation (or the start) up to
    /// `seq`: the first fault, and the hash of record `seq`.
    pub(super) async fn verify_segment(
        &self,
        start: Option<&(i64, Vec<u8>)>,
        seq: i64,
    ) -> CoreResult<(Option<String>, Option<Vec<u8>>)> {
        let mut last_hash = None;
        let mut v = ChainVerifier::new([]);
        if let Some((s, h)) = start {
            v = v.after_truncation(*s, h);
        }
        let mut after = start.map_or(0, |s| s.0);
        'walk: while v.fault.is_none() {
            let page = self.ports.audit.audit_chain(after, 10_000).await?;
            if page.is_empty() {
                break;
            }
            for r in &page {
                if r.seq > seq {
                    break 'walk;
                }
                v.push(r);
                if r.seq == seq {
                    last_hash.clone_from(&r.hash);
                }
                after = r.seq;
            }
        }
        Ok((v.fault, last_hash))
    }
}
