//! A stand-in for the service layer's hash of the audit chain
//! (`mamori_core::audit::chain::ChainHasher`), and a check of a stored
//! chain against it. A backend numbers the records and stores their links
//! but never hashes, so any function of the previous hash, the sequence
//! number and the event serves; this one notes what it was asked.
#![allow(dead_code)]

use mamori_domain::chain::{ChainedRecord, GENESIS};
use mamori_domain::AuditEvent;
use mamori_ports::{ChainLinker, Store};
use std::sync::Mutex;

/// Links records with [`hash`], noting each `(prev, seq)` it was asked for.
#[derive(Debug, Default)]
pub struct Linker {
    asked: Mutex<Vec<(Vec<u8>, i64)>>,
}

impl Linker {
    /// The `(prev, seq)` of every link asked for so far, in order.
    pub fn asked(&self) -> Vec<(Vec<u8>, i64)> {
        self.asked.lock().unwrap().clone()
    }
}

impl ChainLinker for Linker {
    fn link(&self, prev: &[u8], seq: i64, event: &AuditEvent) -> Vec<u8> {
        self.asked.lock().unwrap().push((prev.to_vec(), seq));
        hash(prev, seq, event)
    }
}

/// 32 bytes that change with the previous hash, the sequence number and
/// every field of the event: four lanes of FNV-1a (not a cryptographic
/// hash; enough to tell records apart).
pub fn hash(prev: &[u8], seq: i64, e: &AuditEvent) -> Vec<u8> {
    let text = format!(
        "{}|{}|{:?}|{}|{:?}|{}|{:?}|{:?}",
        e.at.unix_timestamp(),
        e.actor,
        e.source,
        e.action,
        e.target,
        e.outcome,
        e.request_id,
        e.detail
    );
    (0u8..4)
        .flat_map(|lane| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(lane);
            for b in prev.iter().chain(&seq.to_be_bytes()).chain(text.as_bytes()) {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            h.to_be_bytes()
        })
        .collect()
}

/// The whole stored chain, oldest first.
pub async fn stored_chain(s: &dyn Store) -> Vec<ChainedRecord> {
    let mut all = Vec::new();
    loop {
        let after = all.last().map_or(0, |r: &ChainedRecord| r.seq);
        let page = s.audit_chain(after, 1000).await.unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// Checks the stored chain as `audit verify` would with [`hash`]: numbered
/// 1, 2, 3… without a gap, the first linked to `GENESIS`, each next to the
/// one before, every hash that of its record. Returns the records.
pub async fn verify(s: &dyn Store) -> Vec<ChainedRecord> {
    let chain = stored_chain(s).await;
    let mut prev = GENESIS.to_vec();
    for (r, seq) in chain.iter().zip(1..) {
        assert_eq!(r.seq, seq, "the chain is numbered without a gap");
        assert_eq!(
            r.prev_hash.as_deref(),
            Some(&prev[..]),
            "record {seq}'s link"
        );
        let h = hash(&prev, seq, &r.event);
        assert_eq!(r.hash.as_deref(), Some(&h[..]), "record {seq}'s hash");
        prev = h;
    }
    chain
}
