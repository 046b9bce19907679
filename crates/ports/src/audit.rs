//! Ports of audit and response: the chained log, sinks, retention,
//! incidents.

use crate::StoreResult;
use async_trait::async_trait;
use mamori_domain::chain::{ChainLink, ChainedRecord};
use mamori_domain::{AuditEvent, AuditRecord};
use time::OffsetDateTime;

/// Links records onto the audit chain: the service layer's hash
/// (`mamori_core::audit::record_hash`), handed to the store, which calls
/// it while it holds the chain's end (its write lock), so the records are
/// linked onto the end they are appended to, whoever else appends. A
/// backend numbers the records and stores the links; it never hashes.
pub trait ChainLinker: Send + Sync {
    /// The hash of `event` stored as record `seq` after the record whose
    /// hash is `prev` (`GENESIS` for the first).
    fn link(&self, prev: &[u8], seq: i64, event: &AuditEvent) -> Vec<u8>;

    /// `events` linked onto `end`, in order: numbered from the one after
    /// it, each record's `prev_hash` the hash before it.
    fn link_onto(&self, end: &ChainLink, events: &[AuditEvent]) -> Vec<ChainedRecord> {
        let mut prev = end.hash.clone();
        events
            .iter()
            .zip(end.seq + 1..)
            .map(|(e, seq)| {
                let hash = self.link(&prev, seq, e);
                ChainedRecord {
                    seq,
                    event: e.clone(),
                    prev_hash: Some(std::mem::replace(&mut prev, hash.clone())),
                    hash: Some(hash),
                }
            })
            .collect()
    }
}

/// What [`AuditStore::newest_audit_by_action`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewestByAction {
    /// Records of the actions in the window.
    pub total: u64,
    /// Of those, the ones whose detail starts with the prefix asked for.
    pub with_prefix: u64,
    /// The newest of them, newest first, at most the limit asked for.
    pub newest: Vec<AuditRecord>,
}

/// The audit trail: append-only, hash-chained (links computed by `mamori_core::audit::chain`).
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends `events` to the chain, in order, all or none; returns their
    /// sequence numbers. Holding the chain's write lock (no other writer,
    /// on any server, appends meanwhile), reads its end and links the
    /// records onto it with `linker` ([`ChainLinker::link_onto`]), so an
    /// append never conflicts with another and never forks the chain or
    /// leaves a gap. No events: nothing written, no sequence numbers.
    async fn append_audit(
        &self,
        events: &[AuditEvent],
        linker: &dyn ChainLinker,
    ) -> StoreResult<Vec<i64>>;
    /// The end of the chain: the last record's sequence number and hash
    /// ([`ChainLink::genesis`] for an empty log).
    async fn audit_head(&self) -> StoreResult<ChainLink>;
    /// Records after `after` (sequence number), oldest first.
    async fn list_audit(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditRecord>>;
    /// Records with their chain links, after `after`, oldest first.
    async fn audit_chain(&self, after: i64, limit: u32) -> StoreResult<Vec<ChainedRecord>>;
    /// The newest chained record's sequence number and hash.
    async fn last_audit_hash(&self) -> StoreResult<Option<(i64, Vec<u8>)>>;
    /// Stores a signed checkpoint.
    async fn insert_audit_checkpoint(
        &self,
        c: &mamori_domain::chain::Checkpoint,
    ) -> StoreResult<()>;
    /// Every checkpoint, oldest first.
    async fn audit_checkpoints(&self) -> StoreResult<Vec<mamori_domain::chain::Checkpoint>>;
    /// Records of the given actions in [from, to), optionally of one actor,
    /// oldest first.
    async fn audit_by_action(
        &self,
        actions: &[&str],
        from: OffsetDateTime,
        to: OffsetDateTime,
        actor: Option<&str>,
    ) -> StoreResult<Vec<AuditRecord>>;
    /// Records of the given actions in [from, to): how many there are, how
    /// many of those have a detail starting with `detail_prefix`, and the
    /// newest `limit` of them, newest first. Reads no more than `limit`
    /// records whatever the count (an alerts page over a busy log).
    async fn newest_audit_by_action(
        &self,
        actions: &[&str],
        from: OffsetDateTime,
        to: OffsetDateTime,
        detail_prefix: &str,
        limit: u32,
    ) -> StoreResult<NewestByAction>;
    /// Feeds `into` every record of the given actions in [from, to),
    /// narrowed by `filter` (one actor, an actor prefix) — only the columns of
    /// `mamori_domain::breach::Access`, in no particular order — and hands it
    /// back. For the breach-scope report over millions of records: no
    /// record is materialised on the way.
    async fn scan_audit_access(
        &self,
        actions: &[&str],
        from: OffsetDateTime,
        to: OffsetDateTime,
        filter: &mamori_domain::breach::AccessFilter,
        into: mamori_domain::breach::ScopeBuilder,
    ) -> StoreResult<mamori_domain::breach::ScopeBuilder>;
}

/// Where each audit sink (syslog, webhook) stands: the last record it
/// acknowledged, so a sink that was down resumes from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkState {
    /// The sink's configured name.
    pub name: String,
    /// Sequence number of the last record delivered (0: none yet).
    pub delivered_seq: i64,
    /// When a batch was last delivered.
    pub delivered_at: Option<OffsetDateTime>,
    /// Since when deliveries fail (None: healthy).
    pub failing_since: Option<OffsetDateTime>,
    /// The last failure, for administrators ("HTTP 503", "connection refused").
    pub last_error: Option<String>,
}

/// Delivery cursors of the audit sinks.
#[async_trait]
pub trait SinkStore: Send + Sync {
    /// One sink's state (None: never run).
    async fn sink_state(&self, name: &str) -> StoreResult<Option<SinkState>>;
    /// Stores a sink's state. The cursor never moves backwards.
    async fn save_sink_state(&self, state: &SinkState) -> StoreResult<()>;
}

/// Retention of the audit log: records leave it only from its start and
/// only up to a signed mark (see [`mamori_domain::chain::Truncation`]).
#[async_trait]
pub trait AuditRetentionStore: Send + Sync {
    /// The newest chained record written before `before`.
    async fn last_audit_before(
        &self,
        before: OffsetDateTime,
    ) -> StoreResult<Option<(i64, Vec<u8>)>>;
    /// Every truncation mark, oldest first.
    async fn audit_truncations(&self) -> StoreResult<Vec<mamori_domain::chain::Truncation>>;
    /// Stores the mark, then removes the records it covers (in batches, so
    /// appends are not held up); returns how many were removed.
    async fn truncate_audit(&self, mark: &mamori_domain::chain::Truncation) -> StoreResult<u64>;
}

/// Incidents and the people they affect.
#[async_trait]
pub trait IncidentStore: Send + Sync {
    /// Records a new incident; false when one for the same alert exists.
    async fn insert_incident(&self, i: &mamori_domain::Incident) -> StoreResult<bool>;
    /// One incident.
    async fn incident(&self, id: &str) -> StoreResult<Option<mamori_domain::Incident>>;
    /// Every incident, newest first.
    async fn list_incidents(&self) -> StoreResult<Vec<mamori_domain::Incident>>;
    /// Replaces an incident's changeable parts (title, status, window,
    /// actor, discovery time, facts, updated_at).
    async fn update_incident(&self, i: &mamori_domain::Incident) -> StoreResult<bool>;
    /// Sets who is affected: adds new people, updates the fields of known
    /// ones (keeping when they were notified), removes people no longer in
    /// scope who were not notified.
    async fn set_incident_people(
        &self,
        id: &str,
        people: &[(String, Vec<String>)],
    ) -> StoreResult<()>;
    /// The people affected, by pseudonymous ID.
    async fn incident_people(&self, id: &str) -> StoreResult<Vec<mamori_domain::AffectedPerson>>;
    /// Marks people (all when None) notified; returns how many changed.
    async fn mark_notified(
        &self,
        id: &str,
        people: Option<&[String]>,
        now: OffsetDateTime,
    ) -> StoreResult<u64>;
}
