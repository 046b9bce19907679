//! The writer's side of the audit chain. Each record's hash is computed
//! here, in one place for every backend ([`ChainHasher`], over
//! [`record_hash`]); the store calls it while it holds the chain's write
//! lock (`mamori_ports::AuditStore::append_audit`): it reads the end,
//! links the records onto it and inserts them in one transaction. Several
//! writers (every server on one database, a `mamori` command) append to
//! one log without ever chaining onto a stale end, so an append never
//! conflicts, is never retried, and the log never forks nor has a gap.

use crate::audit::record_hash;
use crate::CoreResult;
use mamori_domain::AuditEvent;
use mamori_ports::{AuditStore, ChainLinker, StoreResult};
use std::future::Future;

/// The chain's hash as the store asks for it: [`record_hash`] over the
/// previous record's hash, the sequence number and the event.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChainHasher;

impl ChainLinker for ChainHasher {
    fn link(&self, prev: &[u8], seq: i64, event: &AuditEvent) -> Vec<u8> {
        record_hash(prev, seq, event).to_vec()
    }
}

/// This process's appends to the chain, one at a time.
///
/// The store serialises appends itself (SQLite's write lock, PostgreSQL's
/// advisory lock of the chain), so this turn is not what keeps the chain
/// whole: it keeps a burst of this process's appends waiting here, on one
/// in-memory queue, rather than each holding a database connection while
/// it waits for the chain's lock (on PostgreSQL, a busy server would
/// otherwise park most of its pool on that lock, and starve everything
/// else). Each server thus has at most one append waiting on the database,
/// which is also what shares the chain fairly between servers.
///
/// It keeps no copy of the chain's end: the store reads the end under its
/// lock, in the append's own transaction, which costs one indexed read and
/// is the only end that cannot be stale. (PostgreSQL's store first tries
/// the end it last appended to, checked under the same lock.)
#[derive(Debug, Default)]
pub struct ChainWriter {
    turn: tokio::sync::Mutex<()>,
}

impl ChainWriter {
    /// Appends `events`, in order, all or none; returns their sequence
    /// numbers.
    pub async fn append(
        &self,
        store: &dyn AuditStore,
        events: &[AuditEvent],
    ) -> CoreResult<Vec<i64>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.in_turn(|linker| store.append_audit(events, linker))
            .await
    }

    /// Runs `write` in this process's turn with the chain's hash: a write
    /// that appends to the chain along with something else in the same
    /// transaction (a SCEP issuance and its record).
    pub async fn in_turn<T, F, Fut>(&self, write: F) -> CoreResult<T>
    where
        F: FnOnce(&'static dyn ChainLinker) -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        let _turn = self.turn.lock().await;
        Ok(write(&ChainHasher).await?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mamori_domain::chain::{ChainLink, GENESIS};

    fn event(n: i64) -> AuditEvent {
        AuditEvent {
            at: time::OffsetDateTime::from_unix_timestamp(1_800_000_000 + n).unwrap(),
            actor: "system".into(),
            source: None,
            action: "test.append".into(),
            target: None,
            outcome: "success".into(),
            request_id: None,
            detail: Some(format!("n={n}")),
        }
    }

    /// The links the store asks for are the chain's own: the format
    /// `verify` checks is unchanged.
    #[test]
    fn the_links_handed_to_the_store_are_the_chains_hashes() {
        let end = ChainLink {
            seq: 41,
            hash: vec![3; 32],
        };
        let records = ChainHasher.link_onto(&end, &[event(1), event(2)]);
        assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [42, 43]);
        assert_eq!(records[0].prev_hash.as_deref(), Some(&end.hash[..]));
        assert_eq!(
            records[0].hash.as_deref(),
            Some(&record_hash(&end.hash, 42, &event(1))[..])
        );
        assert_eq!(records[1].prev_hash, records[0].hash);
        assert_eq!(
            records[1].hash.as_deref(),
            Some(&record_hash(records[0].hash.as_deref().unwrap(), 43, &event(2))[..])
        );
        let first = ChainHasher.link_onto(&ChainLink::genesis(), &[event(1)]);
        assert_eq!(first[0].seq, 1);
        assert_eq!(first[0].prev_hash.as_deref(), Some(&GENESIS[..]));
    }
}
