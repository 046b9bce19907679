//! The audit log's tamper evidence: every record holds the SHA-256 of the
//! record before it and its own hash over its fields and that link, so
//! editing, deleting or reordering a record breaks the chain at that
//! record; checkpoints — (sequence number, hash) signed with the server's
//! audit key (ECDSA P-256) — pin the chain, so cutting records off its end
//! or rewriting all of it is caught up to the last checkpoint. The chain is
//! computed here and only here ([`record_hash`]): the store numbers the
//! records and asks for their links while it holds the chain's end
//! (`mamori_ports::AuditStore::append_audit`, `chain::ChainHasher`).

mod retention;

use crate::access::permit::AuditRead;
use crate::access::Authorized;
use crate::access::Operator;
use crate::{CoreError, CoreResult, Services};
use mamori_domain::chain::{ChainedRecord, Checkpoint, Truncation, GENESIS};
use mamori_domain::AuditAction;
use mamori_domain::AuditEvent;
use mamori_domain::Outcome;
use serde::Serialize;

fn field(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(s) => {
            out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX - 1).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        None => out.extend_from_slice(&u32::MAX.to_be_bytes()),
    }
}

/// The hash of record `seq` whose predecessor hashed to `prev`.
pub fn record_hash(prev: &[u8], seq: i64, e: &AuditEvent) -> [u8; 32] {
    let mut m = Vec::with_capacity(128);
    m.extend_from_slice(b"mamori-audit-v1\0");
    m.extend_from_slice(prev);
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&e.at.unix_timestamp().to_be_bytes());
    field(&mut m, Some(&e.actor));
    field(&mut m, e.source.as_deref());
    field(&mut m, Some(&e.action));
    field(&mut m, e.target.as_deref());
    field(&mut m, Some(&e.outcome));
    field(&mut m, e.request_id.as_deref());
    field(&mut m, e.detail.as_deref());
    mamori_crypto::sha256(&m)
}

/// What a checkpoint signs.
pub fn checkpoint_message(seq: i64, hash: &[u8], at: i64) -> Vec<u8> {
    let mut m = b"mamori-audit-checkpoint-v1\0".to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m.extend_from_slice(&at.to_be_bytes());
    m
}

/// What a truncation mark signs.
pub fn truncation_message(up_to_seq: i64, hash: &[u8], at: i64, before_at: i64) -> Vec<u8> {
    let mut m = b"mamori-audit-truncation-v1\0".to_vec();
    m.extend_from_slice(&up_to_seq.to_be_bytes());
    m.extend_from_slice(hash);
    m.extend_from_slice(&at.to_be_bytes());
    m.extend_from_slice(&before_at.to_be_bytes());
    m
}

/// The outcome of `audit verify`.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// Records checked.
    pub records: u64,
    /// Records written before the chain existed (not protected).
    pub unchained: u64,
    /// Checkpoints whose signature and record matched.
    pub checkpoints: u64,
    /// Records removed by retention up to this sequence number (signed mark).
    pub truncated_up_to: Option<i64>,
    /// The first problem, naming the record; None when intact.
    pub fault: Option<String>,
}

/// Walks records in sequence order, checking each link and hash.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_prev: Option<Vec<u8>>,
    last_seq: Option<i64>,
    /// Records checked so far.
    pub records: u64,
    /// Unchained records seen.
    pub unchained: u64,
    /// First problem.
    pub fault: Option<String>,
    hashes_at: std::collections::HashMap<i64, Vec<u8>>,
}

impl ChainVerifier {
    /// A verifier that remembers the hashes of the given sequence numbers
    /// (the checkpoints to match afterwards).
    pub fn new(pinned: impl IntoIterator<Item = i64>) -> Self {
        Self {
            expected_prev: None,
            last_seq: None,
            records: 0,
            unchained: 0,
            fault: None,
            hashes_at: pinned.into_iter().map(|s| (s, Vec::new())).collect(),
        }
    }

    /// Starts after a (verified) truncation mark: the first record must be
    /// `seq + 1` and link to `hash`.
    pub fn after_truncation(mut self, seq: i64, hash: &[u8]) -> Self {
        self.last_seq = Some(seq);
        self.expected_prev = Some(hash.to_vec());
        self
    }

    /// Checks the next record; stops at the first fault.
    pub fn push(&mut self, r: &ChainedRecord) {
        if self.fault.is_some() {
            return;
        }
        self.records += 1;
        if self.last_seq.is_none() && r.seq != 1 {
            self.fault = Some(format!(
                "records 1-{} are missing and no signed truncation mark covers them",
                r.seq - 1
            ));
            return;
        }
        if let Some(last) = self.last_seq {
            if r.seq != last + 1 {
                self.fault = Some(format!(
                    "record {} is missing (record {last} is followed by record {})",
                    last + 1,
                    r.seq
                ));
                return;
            }
        }
        self.last_seq = Some(r.seq);
        let (Some(prev), Some(hash)) = (&r.prev_hash, &r.hash) else {
            if self.expected_prev.is_some() {
                self.fault = Some(format!("record {} has lost its chain links", r.seq));
            } else {
                self.unchained += 1;
            }
            return;
        };
        let expected_prev = self.expected_prev.clone().unwrap_or_else(|| {
            if self.unchained == 0 {
                GENESIS.to_vec()
            } else {
                prev.clone()
            }
        });
        if *prev != expected_prev {
            self.fault = Some(format!(
                "record {} does not follow the record before it (deleted, inserted or reordered)",
                r.seq
            ));
            return;
        }
        let computed = record_hash(prev, r.seq, &r.event);
        if computed.as_slice() != hash.as_slice() {
            self.fault = Some(format!(
                "record {} was altered (its hash does not match its content)",
                r.seq
            ));
            return;
        }
        if let Some(slot) = self.hashes_at.get_mut(&r.seq) {
            slot.clone_from(hash);
        }
        self.expected_prev = Some(hash.clone());
    }

    /// Checks checkpoints after the walk: signature, and that the pinned
    /// record exists with that hash (catches records cut off the end).
    pub fn check_points(&mut self, points: &[Checkpoint], spki: &[u8]) -> u64 {
        let mut ok = 0;
        for p in points {
            if self.fault.is_some() {
                break;
            }
            if mamori_crypto::verify_signature(
                spki,
                mamori_crypto::SignatureAlg::EcdsaP256Sha256,
                &checkpoint_message(p.seq, &p.hash, p.at),
                &p.signature,
            )
            .is_err()
            {
                self.fault = Some(format!(
                    "the checkpoint at record {} has a bad signature",
                    p.seq
                ));
                break;
            }
            match self.hashes_at.get(&p.seq) {
                Some(h) if *h == p.hash => ok += 1,
                Some(h) if h.is_empty() => {
                    self.fault = Some(format!(
                        "record {} (signed in a checkpoint) is missing: records were removed",
                        p.seq
                    ));
                }
                _ => {
                    self.fault = Some(format!(
                        "record {} does not match its signed checkpoint",
                        p.seq
                    ));
                }
            }
        }
        ok
    }
}

/// A configured audit sink, as administrators see it.
#[derive(Debug, Clone, Serialize)]
pub struct SinkInfo {
    /// Name.
    pub name: String,
    /// `webhook`, `syslog+tls` or `syslog+tcp`.
    pub kind: String,
    /// Where it sends (no credentials).
    pub target: String,
}

/// A sink's delivery status.
#[derive(Debug, Clone, Serialize)]
pub struct SinkStatus {
    /// The sink.
    #[serde(flatten)]
    pub sink: SinkInfo,
    /// Last record delivered.
    pub delivered_seq: i64,
    /// Records not yet delivered.
    pub behind: i64,
    /// Last delivery.
    #[serde(with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<time::OffsetDateTime>,
    /// Failing since (None: healthy).
    #[serde(with = "time::serde::rfc3339::option")]
    pub failing_since: Option<time::OffsetDateTime>,
    /// Last failure.
    pub last_error: Option<String>,
}

impl Services {
    /// Where each configured audit sink stands.
    pub async fn audit_sink_status(
        &self,
        _by: &Authorized<AuditRead>,
    ) -> CoreResult<Vec<SinkStatus>> {
        let last = self
            .ports
            .audit
            .last_audit_hash()
            .await?
            .map_or(0, |(seq, _)| seq);
        let mut out = Vec::with_capacity(self.config.audit_sinks.len());
        for sink in &self.config.audit_sinks {
            let state = self.ports.audit.sink_state(&sink.name).await?;
            let delivered = state.as_ref().map_or(0, |s| s.delivered_seq);
            out.push(SinkStatus {
                sink: sink.clone(),
                delivered_seq: delivered,
                behind: (last - delivered).max(0),
                delivered_at: state.as_ref().and_then(|s| s.delivered_at),
                failing_since: state.as_ref().and_then(|s| s.failing_since),
                last_error: state.and_then(|s| s.last_error),
            });
        }
        Ok(out)
    }

    /// Where the log stands: its newest record's sequence number (0 when
    /// empty) and its last signed checkpoint (sequence number, time).
    pub async fn audit_head(
        &self,
        _by: &Authorized<AuditRead>,
    ) -> CoreResult<(i64, Option<(i64, time::OffsetDateTime)>)> {
        let last = self
            .ports
            .audit
            .last_audit_hash()
            .await?
            .map_or(0, |(seq, _)| seq);
        let checkpoint = self
            .ports
            .audit
            .audit_checkpoints()
            .await?
            .last()
            .and_then(|c| {
                time::OffsetDateTime::from_unix_timestamp(c.at)
                    .ok()
                    .map(|at| (c.seq, at))
            });
        Ok((last, checkpoint))
    }

    /// A page of the audit log: records after `after`, oldest first.
    pub async fn audit_page(
        &self,
        _by: &Authorized<AuditRead>,
        after: i64,
        limit: u32,
    ) -> CoreResult<Vec<mamori_domain::AuditRecord>> {
        Ok(self.ports.audit.list_audit(after, limit).await?)
    }

    /// Signs a checkpoint of the newest record, if it is newer than the
    /// last checkpoint. Returns its sequence number.
    pub async fn audit_checkpoint(&self, _by: &Operator) -> CoreResult<Option<i64>> {
        self.checkpoint_now().await
    }

    /// Signs a checkpoint now (see [`Self::audit_checkpoint`]); an evidence
    /// bundle asks for one when none follows its window.
    pub(crate) async fn checkpoint_now(&self) -> CoreResult<Option<i64>> {
        let Some((seq, hash)) = self.ports.audit.last_audit_hash().await? else {
            return Ok(None);
        };
        if self
            .ports
            .audit
            .audit_checkpoints()
            .await?
            .last()
            .is_some_and(|c| c.seq >= seq)
        {
            return Ok(None);
        }
        let at = self.clock.now().unix_timestamp();
        let signature = self
            .pki
            .audit_key
            .sign(&checkpoint_message(seq, &hash, at))
            .map_err(|e| CoreError::Internal(e.into()))?;
        self.ports
            .audit
            .insert_audit_checkpoint(&Checkpoint {
                seq,
                hash,
                at,
                signature,
            })
            .await?;
        Ok(Some(seq))
    }

    /// Proves the audit chain intact, or names the first bad record.
    pub async fn verify_audit(&self) -> CoreResult<Verification> {
        let spki = self.pki.audit_key.public_key_spki_der();
        let marks = self.ports.audit.audit_truncations().await?;
        let mut fault = None;
        for m in &marks {
            if mamori_crypto::verify_signature(
                &spki,
                mamori_crypto::SignatureAlg::EcdsaP256Sha256,
                &truncation_message(m.up_to_seq, &m.hash, m.at, m.before_at),
                &m.signature,
            )
            .is_err()
            {
                fault = Some(format!(
                    "the truncation mark at record {} has a bad signature (records were removed \
                     without the audit key)",
                    m.up_to_seq
                ));
                break;
            }
        }
        let cut = marks.last();
        let points: Vec<Checkpoint> = self
            .ports
            .audit
            .audit_checkpoints()
            .await?
            .into_iter()
            .filter(|p| cut.is_none_or(|m| p.seq > m.up_to_seq))
            .collect();
        let mut v = ChainVerifier::new(points.iter().map(|p| p.seq));
        if let Some(m) = cut {
            v = v.after_truncation(m.up_to_seq, &m.hash);
        }
        v.fault = fault;
        let mut after = cut.map_or(0, |m| m.up_to_seq);
        while v.fault.is_none() {
            let page = self.ports.audit.audit_chain(after, 10_000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for r in &page {
                v.push(r);
            }
        }
        let checkpoints = if v.fault.is_none() {
            v.check_points(&points, &spki)
        } else {
            0
        };
        Ok(Verification {
            records: v.records,
            unchained: v.unchained,
            checkpoints,
            truncated_up_to: cut.map(|m| m.up_to_seq),
            fault: v.fault,
        })
    }
}

impl Services {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ev(action: &str) -> AuditEvent {
        AuditEvent {
            at: time::OffsetDateTime::UNIX_EPOCH,
            actor: "system".into(),
            source: None,
            action: action.into(),
            target: None,
            outcome: "success".into(),
            request_id: None,
            detail: None,
        }
    }

    fn chain(n: i64) -> Vec<ChainedRecord> {
        let mut prev = GENESIS.to_vec();
        (1..=n)
            .map(|seq| {
                let e = ev(&format!("a{seq}"));
                let h = record_hash(&prev, seq, &e).to_vec();
                let r = ChainedRecord {
                    seq,
                    event: e,
                    prev_hash: Some(prev.clone()),
                    hash: Some(h.clone()),
                };
                prev = h;
                r
            })
            .collect()
    }

    fn verify(records: &[ChainedRecord]) -> Option<String> {
        let mut v = ChainVerifier::new([]);
        for r in records {
            v.push(r);
        }
        v.fault
    }

    #[test]
    fn an_intact_chain_verifies_and_each_tampering_is_named() {
        let good = chain(5);
        assert_eq!(verify(&good), None);
        let mut edited = good.clone();
        edited[2].event.actor = "admin:mallory".into();
        assert!(verify(&edited).unwrap().contains("record 3 was altered"));
        let mut deleted = good.clone();
        deleted.remove(3);
        assert!(verify(&deleted).unwrap().contains("record 4 is missing"));
        assert!(verify(&good[2..])
            .unwrap()
            .contains("records 1-2 are missing and no signed truncation mark covers them"));
        // After a mark for record 2, records 3.. verify; a gap after it does not.
        let resume = |from: usize| {
            let mut v = ChainVerifier::new([]).after_truncation(2, good[1].hash.as_ref().unwrap());
            good[from..].iter().for_each(|r| v.push(r));
            v.fault
        };
        assert_eq!(resume(2), None);
        assert!(resume(3).unwrap().contains("record 3 is missing"));
        let mut swapped = good.clone();
        let (a, b) = (swapped[1].clone(), swapped[2].clone());
        swapped[1] = ChainedRecord { seq: 2, ..b };
        swapped[2] = ChainedRecord { seq: 3, ..a };
        assert!(verify(&swapped).unwrap().contains("record 2"));
        // Rewriting the whole chain consistently passes the walk; only a
        // signed checkpoint catches it (tested end to end).
        let mut field_null = good.clone();
        field_null[4].event.detail = Some("x".into());
        assert!(verify(&field_null).unwrap().contains("record 5"));
    }

    #[test]
    fn checkpoints_pin_records_and_need_a_valid_signature() {
        let key = mamori_crypto::EcPrivateKey::generate_p256().unwrap();
        let good = chain(4);
        let h3 = good[2].hash.clone().unwrap();
        let sig = key.sign(&checkpoint_message(3, &h3, 7)).unwrap();
        let cp = Checkpoint {
            seq: 3,
            hash: h3.clone(),
            at: 7,
            signature: sig.clone(),
        };
        let mut v = ChainVerifier::new([3]);
        good.iter().for_each(|r| v.push(r));
        assert_eq!(
            v.check_points(std::slice::from_ref(&cp), &key.public_key_spki_der()),
            1
        );
        assert_eq!(v.fault, None);
        // The tail cut off: the pinned record is gone.
        let mut v = ChainVerifier::new([3]);
        good[..2].iter().for_each(|r| v.push(r));
        v.check_points(std::slice::from_ref(&cp), &key.public_key_spki_der());
        assert!(v
            .fault
            .unwrap()
            .contains("record 3 (signed in a checkpoint) is missing"));
        // Another key's signature.
        let other = mamori_crypto::EcPrivateKey::generate_p256().unwrap();
        let mut v = ChainVerifier::new([3]);
        good.iter().for_each(|r| v.push(r));
        v.check_points(&[cp], &other.public_key_spki_der());
        assert!(v.fault.unwrap().contains("bad signature"));
    }
}
