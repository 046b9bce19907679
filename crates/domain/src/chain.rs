//! The audit log's chain as data: what a record links to, what the store
//! keeps, what a checkpoint and a truncation mark hold. Computing hashes and
//! signatures is the service layer's (`mamori_core::audit`); backends store
//! these and number the records, asking the service layer for each link
//! (`mamori_ports::ChainLinker`).

use crate::AuditEvent;

/// The link before the first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// The end of the chain a writer appends to: the last record's sequence
/// number and hash (`0` and [`GENESIS`] for an empty log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    /// Sequence number of the last record (0: none yet).
    pub seq: i64,
    /// Its hash.
    pub hash: Vec<u8>,
}

impl ChainLink {
    /// The link of an empty log.
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.to_vec(),
        }
    }
}

/// A signed "truncated up to" mark: records up to `up_to_seq` (older than
/// `before_at`) were removed by retention; the first remaining record
/// links to `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// Last removed record.
    pub up_to_seq: i64,
    /// Its hash.
    pub hash: Vec<u8>,
    /// When the mark was made (Unix seconds).
    pub at: i64,
    /// The retention cut-off (Unix seconds).
    pub before_at: i64,
    /// ECDSA P-256 signature over `mamori_core::audit::truncation_message`.
    pub signature: Vec<u8>,
}

/// One stored record with its chain links.
#[derive(Debug, Clone)]
pub struct ChainedRecord {
    /// Sequence number.
    pub seq: i64,
    /// The event.
    pub event: AuditEvent,
    /// Stored link to the previous record (None: written before chaining).
    pub prev_hash: Option<Vec<u8>>,
    /// Stored hash.
    pub hash: Option<Vec<u8>>,
}

/// A signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Sequence number of the record it pins.
    pub seq: i64,
    /// That record's hash.
    pub hash: Vec<u8>,
    /// When it was made (Unix seconds).
    pub at: i64,
    /// ECDSA P-256 signature over `mamori_core::audit::checkpoint_message`.
    pub signature: Vec<u8>,
}
