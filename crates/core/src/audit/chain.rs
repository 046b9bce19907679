//! The writer's side of the audit chain. Each record's links are computed
//! here, in one place for every backend: the store only compares a batch's
//! first link with the end of the stored chain and appends or refuses
//! (`mamori_ports::AuditStore::append_audit`). Several writers (this
//! server, a `mamori` CLI command, in time other servers on one database)
//! can append to one log: the one that chained onto a stale end is told so,
//! reads the new end and chains again, so the log never forks and never
//! has a gap.

use crate::audit::record_hash;
use crate::{CoreError, CoreResult};
use mamori_domain::chain::{ChainLink, Chained, ChainedRecord};
use mamori_domain::AuditEvent;
use mamori_ports::{AuditStore, StoreResult};
use std::future::Future;

/// How often an append chains again after another writer got there first
/// before it gives up (each retry means someone else's append succeeded).
const ATTEMPTS: usize = 16;

/// Links `events` onto `head`, in order.
pub fn chain_onto(head: &ChainLink, events: &[AuditEvent]) -> Vec<ChainedRecord> {
    let mut prev = head.hash.clone();
    let mut seq = head.seq;
    events
        .iter()
        .map(|e| {
            seq += 1;
            let hash = record_hash(&prev, seq, e).to_vec();
            ChainedRecord {
                seq,
                event: e.clone(),
                prev_hash: Some(std::mem::replace(&mut prev, hash.clone())),
                hash: Some(hash),
            }
        })
        .collect()
}

/// What a write that carried chained records did with them.
pub trait Appended {
    /// Whether the records were stored (the chain moved on).
    fn appended(&self) -> bool;
}

/// The sequence numbers of the appended records.
impl Appended for Vec<i64> {
    fn appended(&self) -> bool {
        true
    }
}

/// `false`: the write refused for its own reason and stored nothing.
impl Appended for bool {
    fn appended(&self) -> bool {
        *self
    }
}

/// The end of the chain as this process last wrote it, behind a lock so the
/// process's appends follow one another without reading the end each time.
#[derive(Debug, Default)]
pub struct ChainWriter {
    head: tokio::sync::Mutex<Option<ChainLink>>,
}

impl ChainWriter {
    /// Appends `events`; returns their sequence numbers.
    pub async fn append(
        &self,
        store: &dyn AuditStore,
        events: &[AuditEvent],
    ) -> CoreResult<Vec<i64>> {
        self.append_with(store, events, |records| async move {
            let seqs: Vec<i64> = records.iter().map(|r| r.seq).collect();
            Ok(match store.append_audit(&records).await? {
                Chained::Written(()) => Chained::Written(seqs),
                Chained::HeadMoved => Chained::HeadMoved,
            })
        })
        .await
    }

    /// Chains `events` onto the end and hands them to `write`, which stores
    /// them with whatever else belongs in the same transaction; chains
    /// again when another writer appended first.
    pub async fn append_with<T, F, Fut>(
        &self,
        store: &dyn AuditStore,
        events: &[AuditEvent],
        mut write: F,
    ) -> CoreResult<T>
    where
        T: Appended,
        F: FnMut(Vec<ChainedRecord>) -> Fut,
        Fut: Future<Output = StoreResult<Chained<T>>>,
    {
        let mut held = self.head.lock().await;
        for _ in 0..ATTEMPTS {
            // Taken: on an error or a moved end the next append reads it.
            let head = match held.take() {
                Some(h) => h,
                None => store.audit_head().await?,
            };
            let records = chain_onto(&head, events);
            let end = records.last().map_or_else(
                || head.clone(),
                |r| ChainLink {
                    seq: r.seq,
                    hash: r.hash.clone().unwrap_or_default(),
                },
            );
            match write(records).await? {
                Chained::Written(v) => {
                    *held = Some(if v.appended() { end } else { head });
                    return Ok(v);
                }
                Chained::HeadMoved => {
                    tracing::debug!("the audit chain moved under this writer; chaining again");
                }
            }
        }
        Err(CoreError::Internal(
            "the audit chain kept moving under this writer".into(),
        ))
    }
}
