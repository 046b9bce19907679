//! Copying a whole installation from one backend to another, table by
//! table (`mamori migrate`): the tables in the order their rows can be
//! written, a backend-neutral cell, bounded reads in a stable order and
//! batched writes inside one transaction. Only the migration uses this
//! port; it is not part of [`crate::Store`].

use crate::{StoreError, StoreResult};
use async_trait::async_trait;

/// A table that is copied, and the columns its rows are read in order of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyTable {
    /// The table's name, the same on every backend.
    pub name: &'static str,
    /// Its primary key's columns, in the key's order; empty for a table
    /// without one, whose rows are then ordered by every column. Key
    /// columns are never NULL.
    pub key: &'static [&'static str],
}

/// Every table of Mamori's schema, parents before the tables that refer
/// to them, so rows written in this order satisfy every foreign key.
/// A backend's own bookkeeping (SQLite's `sqlite_sequence`, PostgreSQL's
/// `mamori_schema`) is not listed; everything else must be (the store's
/// `copy` tests compare this list with each backend's schema).
pub const COPY_TABLES: &[CopyTable] = &[
    table("enrollment_profiles", &["id"]),
    table("device_certificates", &["fingerprint"]),
    table("people", &["id"]),
    table("person_keys", &["person_id"]),
    table("people_tombstones", &["id"]),
    table("devices", &["udid"]),
    table("user_channels", &["udid", "user_id"]),
    table("commands", &["seq"]),
    table("secrets", &["name"]),
    table("enrollment_links", &["id"]),
    table("admins", &["id"]),
    table("admin_recovery_codes", &["admin_id", "code_hash"]),
    table("admin_webauthn", &["id"]),
    table("admin_sessions", &["id"]),
    table("api_tokens", &["id"]),
    table("admin_control", &[]),
    table("audit_log", &["seq"]),
    table("audit_checkpoints", &["seq"]),
    table("audit_sinks", &["name"]),
    table("audit_truncations", &["up_to_seq"]),
    table("approvals", &["id"]),
    table("incidents", &["id"]),
    table("incident_people", &["incident_id", "person_id"]),
    table("policies", &["id"]),
    table("device_groups", &["id"]),
    table("device_group_members", &["group_id", "udid"]),
    table("group_policies", &["group_id", "policy_id"]),
    table("device_profiles", &["udid", "profile_identifier"]),
    table("group_compliance", &["group_id"]),
    table("device_apps", &["udid", "bundle_id"]),
    table("device_inventory", &["udid"]),
    table("pending_reenrollments", &["fingerprint"]),
    table("job_leases", &["name"]),
    table("ephemeral", &["space", "key"]),
    table("read_reservations", &["id", "key"]),
    table("read_evidence", &["id", "seq"]),
    table("read_alerts", &["key"]),
    table("people_key_choice", &["id"]),
    table("people_key_holders", &["holder"]),
    table("queue_budget", &["name", "command_uuid"]),
];

const fn table(name: &'static str, key: &'static [&'static str]) -> CopyTable {
    CopyTable { name, key }
}

/// The listed table named `name`.
pub fn copy_table(name: &str) -> Option<CopyTable> {
    COPY_TABLES.iter().copied().find(|t| t.name == name)
}

/// One stored value, whatever the backend. A boolean is an `Integer`, 0 or
/// 1 (SQLite stores it so; PostgreSQL's BOOLEAN is read and written as
/// such); a time is Unix seconds, an `Integer`, on both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// An integer (or a boolean, 0 or 1).
    Integer(i64),
    /// UTF-8 text.
    Text(String),
    /// Bytes (sealed data, hashes, signatures).
    Bytes(Vec<u8>),
}

/// How a backend stores one table: its columns (generated ones left out:
/// they are computed again where the rows are written) and its primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableShape {
    /// The stored columns, in the backend's order.
    pub columns: Vec<String>,
    /// The primary key's columns in the key's order (empty: none).
    pub primary_key: Vec<String>,
}

/// The positions, in `columns`, of the columns `table`'s rows are ordered
/// by: its key's, or every column for a table without a key.
pub fn key_positions(table: CopyTable, columns: &[String]) -> StoreResult<Vec<usize>> {
    if table.key.is_empty() {
        return Ok((0..columns.len()).collect());
    }
    table
        .key
        .iter()
        .map(|k| {
            columns.iter().position(|c| c == k).ok_or_else(|| {
                StoreError::new(format!(
                    "{}: the key column {k} is not among the columns read",
                    table.name
                ))
            })
        })
        .collect()
}

/// Where reading a table resumes: after the rows whose key is at most
/// `key`, of which `seen` had exactly `key` (a table without a primary key
/// may hold identical rows; with one, `seen` is 1). A backend reads from
/// the first row whose key is at least `key`, skipping `seen` rows, so a
/// read never rescans what came before (no OFFSET).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyCursor {
    key: Vec<Cell>,
    seen: usize,
}

impl CopyCursor {
    /// The start of the table.
    pub fn start() -> Self {
        Self::default()
    }

    /// The key read up to; empty at the start.
    pub fn key(&self) -> &[Cell] {
        &self.key
    }

    /// How many rows with exactly [`Self::key`] were already read.
    pub fn seen(&self) -> usize {
        self.seen
    }

    /// Moves past `rows`, a batch just read from this cursor with
    /// `columns`.
    pub fn advance(
        &mut self,
        table: CopyTable,
        columns: &[String],
        rows: &[Vec<Cell>],
    ) -> StoreResult<()> {
        let positions = key_positions(table, columns)?;
        let key_of = |row: &Vec<Cell>| -> StoreResult<Vec<Cell>> {
            positions
                .iter()
                .map(|&p| {
                    row.get(p).cloned().ok_or_else(|| {
                        StoreError::new(format!(
                            "{}: a row is shorter than its columns",
                            table.name
                        ))
                    })
                })
                .collect()
        };
        let Some(last) = rows.last() else {
            return Ok(());
        };
        let last = key_of(last)?;
        let mut same = 0;
        for row in rows.iter().rev() {
            if key_of(row)? != last {
                break;
            }
            same += 1;
        }
        if same == rows.len() && last == self.key {
            self.seen += same;
        } else {
            self.key = last;
            self.seen = same;
        }
        Ok(())
    }
}

/// Reads and writes whole tables of one backend, for `mamori migrate`.
#[async_trait]
pub trait CopyStore: Send + Sync {
    /// The name of every table of this backend's schema except its own
    /// bookkeeping.
    async fn schema_tables(&self) -> StoreResult<Vec<String>>;

    /// How `table` is stored here.
    async fn table_shape(&self, table: CopyTable) -> StoreResult<TableShape>;

    /// How many rows `table` holds.
    async fn count_rows(&self, table: CopyTable) -> StoreResult<u64>;

    /// At most `limit` rows of `table` from `from` on, in the order of its
    /// key (byte order for text, on every backend), each with the cells of
    /// `columns` in that order.
    async fn read_rows(
        &self,
        table: CopyTable,
        columns: &[String],
        from: &CopyCursor,
        limit: usize,
    ) -> StoreResult<Vec<Vec<Cell>>>;

    /// Starts writing a copy into this backend: one transaction, which
    /// first keeps other writers out of every listed table and makes sure
    /// they are all empty.
    async fn begin_copy(&self) -> StoreResult<CopyStart>;
}

/// What [`CopyStore::begin_copy`] found.
pub enum CopyStart {
    /// Every table is empty; the copy is written through this.
    Ready(Box<dyn CopyWriter>),
    /// This table already has rows: nothing is written.
    NotEmpty(&'static str),
}

impl std::fmt::Debug for CopyStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CopyStart::Ready(_) => f.write_str("Ready(…)"),
            CopyStart::NotEmpty(t) => f.debug_tuple("NotEmpty").field(t).finish(),
        }
    }
}

/// A copy being written, in one transaction. Dropped without
/// [`CopyWriter::commit`], nothing of it stays.
#[async_trait]
pub trait CopyWriter: Send {
    /// Writes `rows` (cells of `columns`, in that order) into `table`;
    /// returns how many were written.
    async fn write_rows(
        &mut self,
        table: CopyTable,
        columns: &[String],
        rows: Vec<Vec<Cell>>,
    ) -> StoreResult<u64>;

    /// Makes the copy durable, after setting every counter the backend
    /// numbers rows with past the copied numbers; then readies it to be
    /// served (PostgreSQL: statistics gathered, pages marked visible).
    async fn commit(self: Box<Self>) -> StoreResult<()>;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    fn row(a: &str, b: i64) -> Vec<Cell> {
        vec![Cell::Text(a.into()), Cell::Integer(b)]
    }

    #[test]
    fn every_listed_table_is_named_once_and_its_key_is_unique_in_it() {
        let mut names: Vec<&str> = COPY_TABLES.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COPY_TABLES.len(), "a table listed twice");
        for t in COPY_TABLES {
            let mut key = t.key.to_vec();
            key.sort_unstable();
            key.dedup();
            assert_eq!(key.len(), t.key.len(), "{}: a key column twice", t.name);
        }
        assert_eq!(copy_table("audit_log").map(|t| t.key), Some(&["seq"][..]));
        assert_eq!(copy_table("nothing"), None);
    }

    #[test]
    fn a_keyed_table_resumes_after_its_last_key() {
        let t = CopyTable {
            name: "t",
            key: &["b"],
        };
        let columns = cols(&["a", "b"]);
        let mut c = CopyCursor::start();
        assert!(c.key().is_empty());
        c.advance(t, &columns, &[row("x", 1), row("y", 2)]).unwrap();
        assert_eq!((c.key(), c.seen()), (&[Cell::Integer(2)][..], 1));
        c.advance(t, &columns, &[]).unwrap();
        assert_eq!((c.key(), c.seen()), (&[Cell::Integer(2)][..], 1));
        c.advance(t, &columns, &[row("z", 3)]).unwrap();
        assert_eq!((c.key(), c.seen()), (&[Cell::Integer(3)][..], 1));
        let missing = CopyTable {
            name: "t",
            key: &["c"],
        };
        assert!(c.advance(missing, &columns, &[row("z", 4)]).is_err());
    }

    /// Identical rows of a table without a key are counted, so a batch
    /// that ends inside a run of them resumes inside the run, and a run
    /// longer than a batch keeps counting.
    #[test]
    fn identical_rows_of_a_keyless_table_are_counted_across_batches() {
        let t = CopyTable {
            name: "t",
            key: &[],
        };
        let columns = cols(&["a", "b"]);
        let mut c = CopyCursor::start();
        c.advance(t, &columns, &[row("a", 1), row("b", 1), row("b", 1)])
            .unwrap();
        assert_eq!(c.key(), &row("b", 1)[..]);
        assert_eq!(c.seen(), 2);
        c.advance(t, &columns, &[row("b", 1), row("b", 1)]).unwrap();
        assert_eq!(c.seen(), 4, "the same run goes on");
        c.advance(t, &columns, &[row("b", 1), row("c", 1)]).unwrap();
        assert_eq!((c.key(), c.seen()), (&row("c", 1)[..], 1));
        c.advance(t, &columns, &[row("c", 1)]).unwrap();
        assert_eq!(c.seen(), 2);
        c.advance(t, &columns, &[row("d", 1), row("d", 1)]).unwrap();
        assert_eq!((c.key(), c.seen()), (&row("d", 1)[..], 2));
    }
}
