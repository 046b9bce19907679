//! The evidence bundle of an incident: the segment of the audit log that
//! covers its window, anchored at both ends by records the server signed
//! (a checkpoint before the window — or the signed truncation mark, or the
//! start of the log — and a checkpoint at or after its end), every
//! checkpoint in between, the scope counted from those records, and the
//! whole signed with the audit key. [`verify_bundle`] checks it offline
//! with nothing but the audit public key: every link, every hash, every
//! signature, and that the scope is what the records say.

use crate::access::permit::AuditRead;
use crate::access::Authorized;
use crate::access::ClientContext;
use crate::audit::{checkpoint_message, truncation_message, ChainVerifier};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::breach::PERSONAL_DATA_ACTIONS;
use mamori_domain::chain::{ChainedRecord, Checkpoint, Truncation, GENESIS};
use mamori_domain::AuditEvent;
use mamori_domain::{AuditAction, Outcome};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

/// The bundle format's name.
pub const FORMAT: &str = "mamori-evidence-v1";

/// One record, with its links (hashes in hex, time in Unix seconds as the
/// hash covers it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BundleRecord {
    seq: i64,
    at: i64,
    actor: String,
    source: Option<String>,
    action: String,
    target: Option<String>,
    outcome: String,
    request_id: Option<String>,
    detail: Option<String>,
    prev_hash: String,
    hash: String,
}

/// A signed anchor: a checkpoint, a truncation mark, or the log's start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    /// `checkpoint`, `truncation` or `genesis`.
    kind: String,
    seq: i64,
    hash: String,
    at: i64,
    before_at: Option<i64>,
    signature: String,
}

/// The scope counted from the records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct ScopeCount {
    /// Access records in the window.
    pub records: usize,
    /// Distinct people.
    pub people_affected: usize,
    /// People per field.
    pub by_field: BTreeMap<String, usize>,
}

/// What is signed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleBody {
    format: String,
    created_at: i64,
    incident: serde_json::Value,
    window_from: i64,
    window_to: i64,
    actor: Option<String>,
    scope: ScopeCount,
    start: Anchor,
    end: Anchor,
    checkpoints: Vec<Anchor>,
    records: Vec<BundleRecord>,
    audit_public_key: String,
}

/// The file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    body: BundleBody,
    signature: String,
}

/// What a verified bundle proves.
#[derive(Debug, Clone, Serialize)]
pub struct BundleReport {
    /// Records in the segment.
    pub records: usize,
    /// First and last sequence number.
    pub first_seq: i64,
    /// Last.
    pub last_seq: i64,
    /// Signed anchors and checkpoints verified.
    pub signatures: usize,
    /// The scope, recounted.
    pub scope: ScopeCount,
    /// SHA-256 of the audit public key (compare with your copy).
    pub key_fingerprint: String,
    /// The incident's title.
    pub incident: String,
}

fn body_message(body: &BundleBody) -> Result<Vec<u8>, String> {
    let mut m = b"mamori-evidence-bundle-v1\0".to_vec();
    m.extend_from_slice(&serde_json::to_vec(body).map_err(|e| e.to_string())?);
    Ok(m)
}

/// Counts the scope (people and fields of `people.read` / `people.export`
/// records in the window, optionally of one actor).
pub fn count_scope(
    records: &[BundleRecord],
    from: i64,
    to: i64,
    actor: Option<&str>,
) -> ScopeCount {
    let mut people: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut n = 0;
    for r in records {
        if !PERSONAL_DATA_ACTIONS.contains(&r.action.as_str())
            || r.at < from
            || r.at >= to
            || actor.is_some_and(|a| a != r.actor)
        {
            continue;
        }
        n += 1;
        let Some(p) = r.target.as_deref() else {
            continue;
        };
        let fields = people.entry(p).or_default();
        if let Some(f) = r.detail.as_deref().and_then(|d| d.strip_prefix("fields=")) {
            fields.extend(f.split(',').filter(|f| !f.is_empty()));
        }
    }
    let mut by_field = BTreeMap::new();
    for fields in people.values() {
        for f in fields {
            *by_field.entry((*f).to_owned()).or_insert(0) += 1;
        }
    }
    ScopeCount {
        records: n,
        people_affected: people.len(),
        by_field,
    }
}

fn unhex(s: &str, what: &str) -> Result<Vec<u8>, String> {
    hex::decode(s).map_err(|_| format!("{what} is not hex"))
}

fn verify_sig(spki: &[u8], msg: &[u8], sig_hex: &str, what: &str) -> Result<(), String> {
    let sig = unhex(sig_hex, what)?;
    mamori_crypto::verify_signature(
        spki,
        mamori_crypto::SignatureAlg::EcdsaP256Sha256,
        msg,
        &sig,
    )
    .map_err(|_| format!("{what}: bad signature"))
}

fn chained(r: &BundleRecord) -> Result<ChainedRecord, String> {
    Ok(ChainedRecord {
        seq: r.seq,
        event: AuditEvent {
            at: OffsetDateTime::from_unix_timestamp(r.at)
                .map_err(|_| format!("record {}: bad time", r.seq))?,
            actor: r.actor.clone(),
            source: r.source.clone(),
            action: r.action.clone(),
            target: r.target.clone(),
            outcome: r.outcome.clone(),
            request_id: r.request_id.clone(),
            detail: r.detail.clone(),
        },
        prev_hash: Some(unhex(&r.prev_hash, "prev_hash")?),
        hash: Some(unhex(&r.hash, "hash")?),
    })
}

/// Verifies a bundle offline. With `trusted_spki` (the audit public key,
/// DER), the bundle must be signed by that key; without, the key inside
/// the bundle is used and its fingerprint reported for comparison.
// Length: the checks of a bundle in the order they depend on each other
// (signature, start, chain, end, checkpoints, scope), each refusing with its
// own reason.
pub fn verify_bundle(bytes: &[u8], trusted_spki: Option<&[u8]>) -> Result<BundleReport, String> {
    let b: Bundle =
        serde_json::from_slice(bytes).map_err(|e| format!("not an evidence bundle: {e}"))?;
    let body = &b.body;
    if body.format != FORMAT {
        return Err(format!("unknown bundle format {:?}", body.format));
    }
    let inside = unhex(&body.audit_public_key, "audit_public_key")?;
    if let Some(t) = trusted_spki {
        if t != inside.as_slice() {
            return Err("the bundle was made with another audit key than the one given".into());
        }
    }
    let spki = inside;
    verify_sig(&spki, &body_message(body)?, &b.signature, "the bundle")?;
    let mut signatures = 1;
    // The start anchor.
    let s = &body.start;
    let start_hash = unhex(&s.hash, "start hash")?;
    signatures += verify_start(&spki, s, &start_hash)?;
    let mut v = if s.kind == "genesis" {
        ChainVerifier::new(body.checkpoints.iter().map(|c| c.seq))
    } else {
        ChainVerifier::new(body.checkpoints.iter().map(|c| c.seq))
            .after_truncation(s.seq, &start_hash)
    };
    for r in &body.records {
        v.push(&chained(r)?);
    }
    if let Some(f) = v.fault.take() {
        return Err(f);
    }
    let first = body.records.first().ok_or("the bundle holds no records")?;
    let last = body.records.last().ok_or("the bundle holds no records")?;
    // The end anchor pins the last record.
    let e = &body.end;
    if e.kind != "checkpoint" || e.seq != last.seq || e.hash != last.hash {
        return Err(format!(
            "the segment does not end at its signed checkpoint (record {} vs {})",
            last.seq, e.seq
        ));
    }
    verify_sig(
        &spki,
        &checkpoint_message(e.seq, &unhex(&e.hash, "end hash")?, e.at),
        &e.signature,
        "the end checkpoint",
    )?;
    signatures += 1;
    // Checkpoints in between: signed, and matching their records.
    let points: Vec<Checkpoint> = body
        .checkpoints
        .iter()
        .map(|c| {
            Ok(Checkpoint {
                seq: c.seq,
                hash: unhex(&c.hash, "checkpoint hash")?,
                at: c.at,
                signature: unhex(&c.signature, "checkpoint signature")?,
            })
        })
        .collect::<Result<_, String>>()?;
    signatures += usize::try_from(v.check_points(&points, &spki)).unwrap_or(0);
    if let Some(f) = v.fault {
        return Err(f);
    }
    let scope = count_scope(
        &body.records,
        body.window_from,
        body.window_to,
        body.actor.as_deref(),
    );
    if scope != body.scope {
        return Err("the scope stated in the bundle is not what its records say".into());
    }
    Ok(BundleReport {
        records: body.records.len(),
        first_seq: first.seq,
        last_seq: last.seq,
        signatures,
        scope,
        key_fingerprint: mamori_crypto::sha256_hex(&spki),
        incident: body
            .incident
            .pointer("/incident/title")
            .and_then(|t| t.as_str())
            .unwrap_or("")
            .to_owned(),
    })
}

fn anchor_of_checkpoint(c: &Checkpoint) -> Anchor {
    Anchor {
        kind: "checkpoint".into(),
        seq: c.seq,
        hash: hex::encode(&c.hash),
        at: c.at,
        before_at: None,
        signature: hex::encode(&c.signature),
    }
}

impl Services {
    /// The evidence bundle of an incident (JSON). Signs a checkpoint first
    /// when none pins the end of the window yet.
    pub async fn evidence_bundle(
        &self,
        by: &Authorized<AuditRead>,
        ctx: &ClientContext,
        id: &str,
    ) -> CoreResult<Vec<u8>> {
        let view = self.incident_view(by, id).await?;
        let i = &view.incident;
        let last_in_window = self
            .ports
            .audit
            .last_audit_before(i.window_to)
            .await?
            .map_or(0, |(s, _)| s);
        let before_window = self
            .ports
            .audit
            .last_audit_before(i.window_from)
            .await?
            .map_or(0, |(s, _)| s);
        // Recorded first: the bundle itself is an access to the evidence.
        self.audit(
            self.audit_record(
                &by.label(),
                ctx,
                AuditAction::IncidentEvidence,
                Outcome::Success,
            )
            .target(&i.id)
            .detail(format!(
                "records after {before_window} to at least {last_in_window}"
            )),
        )
        .await?;
        let mut points = self.ports.audit.audit_checkpoints().await?;
        if !points.iter().any(|c| c.seq >= last_in_window.max(1)) {
            self.checkpoint_now().await?;
            points = self.ports.audit.audit_checkpoints().await?;
        }
        let end = points
            .iter()
            .find(|c| c.seq >= last_in_window.max(1))
            .cloned()
            .ok_or_else(|| CoreError::Internal("no checkpoint after the window".into()))?;
        let marks = self.ports.audit.audit_truncations().await?;
        let start = start_anchor(&points, marks.last(), before_window);
        let records = self.bundle_records(start.seq, end.seq).await?;
        let (from, to) = (i.window_from.unix_timestamp(), i.window_to.unix_timestamp());
        let body = BundleBody {
            format: FORMAT.into(),
            created_at: self.clock.now().unix_timestamp(),
            incident: serde_json::to_value(&view).map_err(|e| CoreError::Internal(e.into()))?,
            window_from: from,
            window_to: to,
            actor: i.actor.clone(),
            scope: count_scope(&records, from, to, i.actor.as_deref()),
            checkpoints: points
                .iter()
                .filter(|c| c.seq > start.seq && c.seq < end.seq)
                .map(anchor_of_checkpoint)
                .collect(),
            start,
            end: anchor_of_checkpoint(&end),
            records,
            audit_public_key: hex::encode(self.pki.audit_key.public_key_spki_der()),
        };
        let signature = self
            .pki
            .audit_key
            .sign(&body_message(&body).map_err(|e| CoreError::Internal(e.into()))?)
            .map_err(|e| CoreError::Internal(e.into()))?;
        serde_json::to_vec_pretty(&Bundle {
            body,
            signature: hex::encode(signature),
        })
        .map_err(|e| CoreError::Internal(e.into()))
    }
}

/// The latest signed point at or before the window: a checkpoint, or the
/// truncation mark when it is later (records before it are gone), or the
/// start of the log.
fn start_anchor(points: &[Checkpoint], mark: Option<&Truncation>, before_window: i64) -> Anchor {
    let start_cp = points.iter().rev().find(|c| c.seq <= before_window);
    let truncation = mark.map(|m| Anchor {
        kind: "truncation".into(),
        seq: m.up_to_seq,
        hash: hex::encode(&m.hash),
        at: m.at,
        before_at: Some(m.before_at),
        signature: hex::encode(&m.signature),
    });
    // The latest signed point at or before the window: a checkpoint, or
    // the truncation mark when it is later (records before it are gone),
    // or the start of the log.
    match (start_cp, truncation) {
        (Some(c), Some(t)) if t.seq > c.seq => t,
        (Some(c), _) => anchor_of_checkpoint(c),
        (None, Some(t)) => t,
        (None, None) => Anchor {
            kind: "genesis".into(),
            seq: 0,
            hash: hex::encode(GENESIS),
            at: 0,
            before_at: None,
            signature: String::new(),
        },
    }
}

impl Services {
    /// The chained records after `from_seq` up to `to_seq`; a record that
    /// predates the hash chain makes a bundle impossible.
    async fn bundle_records(&self, from_seq: i64, to_seq: i64) -> CoreResult<Vec<BundleRecord>> {
        let mut records = Vec::new();
        let mut after = from_seq;
        'pages: loop {
            let page = self.ports.audit.audit_chain(after, 10_000).await?;
            if page.is_empty() {
                break;
            }
            for r in page {
                if r.seq > to_seq {
                    break 'pages;
                }
                after = r.seq;
                let (Some(prev), Some(hash)) = (r.prev_hash, r.hash) else {
                    return Err(CoreError::Conflict(format!(
                        "record {} predates the hash chain; no bundle can prove it",
                        r.seq
                    )));
                };
                let e = r.event;
                records.push(BundleRecord {
                    seq: r.seq,
                    at: e.at.unix_timestamp(),
                    actor: e.actor,
                    source: e.source,
                    action: e.action,
                    target: e.target,
                    outcome: e.outcome,
                    request_id: e.request_id,
                    detail: e.detail,
                    prev_hash: hex::encode(prev),
                    hash: hex::encode(hash),
                });
            }
        }
        Ok(records)
    }
}

/// Checks a bundle's start anchor; returns the signatures it checked.
fn verify_start(spki: &[u8], s: &Anchor, start_hash: &[u8]) -> Result<usize, String> {
    match s.kind.as_str() {
        "checkpoint" => {
            verify_sig(
                spki,
                &checkpoint_message(s.seq, start_hash, s.at),
                &s.signature,
                "the start checkpoint",
            )?;
            Ok(1)
        }
        "truncation" => {
            let before = s.before_at.ok_or("the truncation mark has no cut-off")?;
            verify_sig(
                spki,
                &truncation_message(s.seq, start_hash, s.at, before),
                &s.signature,
                "the truncation mark",
            )?;
            Ok(1)
        }
        "genesis" if s.seq == 0 && start_hash == GENESIS => Ok(0),
        other => Err(format!("unknown start anchor {other:?}")),
    }
}
