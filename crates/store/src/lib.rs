//! Storage backends for Mamori's ports. SQLite is the embedded default; every
//! SQL statement stays inside this crate, written in the portable subset so the
//! PostgreSQL backend can share the same shape.
//!
//! # Execution model
//!
//! The SQLite backend is built on `rusqlite` with a tiny connection pool: one
//! writer connection (SQLite serialises writers anyway, so all writes in this
//! process queue on an async mutex instead of spinning in SQLite's busy
//! handler) and a few reader connections (WAL lets them read concurrently with
//! the writer). Each connection sits behind a `tokio::sync::Mutex`, so waiting
//! for a busy connection parks the task, never a runtime thread.
//!
//! Point operations (indexed reads and single-row updates, a few microseconds
//! each) run **inline on the calling task** once the connection is acquired.
//! Profiling showed that handing such statements to a worker thread and back
//! (what `sqlx-sqlite` does) costs far more in context switches than SQLite's
//! own work. The operations that can touch many rows (`list_devices`,
//! `enqueue`, `push_targets`) run on `tokio::task::spawn_blocking` with an
//! owned connection guard so they never stall a runtime thread for long.

mod admins;
mod approvals;
mod audit;
mod audit_retention;
mod backup;
mod certs;
mod compliance;
mod control;
mod copy;
mod departments;
mod devices;
mod ephemeral;
mod groups;
mod identity;
mod incidents;
mod inventory;
mod keyring;
mod leases;
mod migrate;
mod people;
mod policies;
mod queue;
mod reads;
mod reenroll;
mod sinks;
mod tokens;

pub use backup::{adopt_data_keys, read_snapshot, schema_version, LiveDataKey, SnapshotSummary};
use mamori_ports::{StoreError, StoreResult};
use rusqlite::types::FromSql;
use rusqlite::{Connection, Params, Row};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Reader connections in the pool (besides the single writer).
const READERS: usize = 4;
/// Prepared statements cached per connection.
const STATEMENT_CACHE: usize = 64;

/// A pooled connection; `None` once the store is closed.
type Slot = Arc<Mutex<Option<Connection>>>;

/// The SQLite backend.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Slot,
    readers: Vec<Slot>,
    next_reader: AtomicUsize,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("readers", &self.inner.readers.len())
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let owned = path.to_path_buf();
        let (writer, readers) = tokio::task::spawn_blocking(move || {
            let mut writer = connect(&owned)?;
            migrate::run(&mut writer)?;
            let readers = (0..READERS)
                .map(|_| connect(&owned))
                .collect::<StoreResult<Vec<_>>>()?;
            Ok::<_, StoreError>((writer, readers))
        })
        .await
        .map_err(join)??;
        let slot = |c: Connection| Arc::new(Mutex::new(Some(c)));
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: slot(writer),
                readers: readers.into_iter().map(slot).collect(),
                next_reader: AtomicUsize::new(0),
            }),
        })
    }

    /// Closes every connection (waiting for in-flight statements); the last
    /// close checkpoints the WAL. Later calls fail with a `StoreError`.
    pub async fn close(&self) {
        for r in &self.inner.readers {
            close_conn(r.lock().await.take());
        }
        close_conn(self.inner.writer.lock().await.take());
    }

    /// A reader connection: the first free one, else waits for one.
    async fn reader(&self) -> OwnedMutexGuard<Option<Connection>> {
        let readers = &self.inner.readers;
        let start = self.inner.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..readers.len() {
            let slot = &readers[(start + i) % readers.len()];
            if let Ok(g) = Arc::clone(slot).try_lock_owned() {
                return g;
            }
        }
        Arc::clone(&readers[start % readers.len()])
            .lock_owned()
            .await
    }

    /// Runs a read inline on the calling task.
    pub(crate) async fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut g = self.reader().await;
        f(live(&mut g)?)
    }

    /// Runs a potentially long read on the blocking pool.
    pub(crate) async fn read_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let mut g = self.reader().await;
        tokio::task::spawn_blocking(move || f(live(&mut g)?))
            .await
            .map_err(join)?
    }

    /// Runs a write inline on the calling task, on the writer connection.
    pub(crate) async fn write<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut g = self.inner.writer.lock().await;
        f(live(&mut g)?)
    }

    /// Runs a potentially long write on the blocking pool.
    pub(crate) async fn write_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let mut g = Arc::clone(&self.inner.writer).lock_owned().await;
        tokio::task::spawn_blocking(move || f(live(&mut g)?))
            .await
            .map_err(join)?
    }
}

/// Opens one connection with the pragmas every connection needs.
fn connect(path: &Path) -> StoreResult<Connection> {
    let c = Connection::open(path).map_err(db)?;
    c.busy_timeout(Duration::from_secs(10)).map_err(db)?;
    c.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
        .map_err(db)?;
    // FULL: in WAL mode every commit fsyncs the WAL before it returns, so a
    // write the caller saw succeed (an audit record, a result acknowledged to
    // a device) survives power loss, not only a crash of this process
    // (NORMAL syncs only at checkpoints). The cost per commit is one fsync;
    // README, "Performance", has the figures.
    c.pragma_update(None, "synchronous", "FULL").map_err(db)?;
    c.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
    c.pragma_update(None, "secure_delete", "ON").map_err(db)?;
    c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(c)
}

fn close_conn(c: Option<Connection>) {
    if let Some(Err((_, e))) = c.map(Connection::close) {
        tracing::warn!(error = %e, "closing SQLite connection");
    }
}

fn live(slot: &mut Option<Connection>) -> StoreResult<&mut Connection> {
    slot.as_mut()
        .ok_or_else(|| StoreError::new("the store is closed"))
}

fn join(e: tokio::task::JoinError) -> StoreError {
    StoreError::from_cause(e)
}

pub(crate) fn db(e: rusqlite::Error) -> StoreError {
    StoreError::from_cause(e)
}

/// Executes a cached statement; returns the number of rows changed.
pub(crate) fn exec(c: &Connection, sql: &str, params: impl Params) -> StoreResult<usize> {
    c.prepare_cached(sql)
        .and_then(|mut s| s.execute(params))
        .map_err(db)
}

/// Runs a cached statement and maps its first row, if any.
pub(crate) fn query_opt<T>(
    c: &Connection,
    sql: &str,
    params: impl Params,
    f: impl FnOnce(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = c.prepare_cached(sql).map_err(db)?;
    let mut rows = stmt.query(params).map_err(db)?;
    match rows.next().map_err(db)? {
        Some(r) => f(r).map(Some),
        None => Ok(None),
    }
}

/// Runs a cached statement and maps every row.
pub(crate) fn query_all<T>(
    c: &Connection,
    sql: &str,
    params: impl Params,
    mut f: impl FnMut(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = c.prepare_cached(sql).map_err(db)?;
    let mut rows = stmt.query(params).map_err(db)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db)? {
        out.push(f(r)?);
    }
    Ok(out)
}

/// One column of a row by name.
pub(crate) fn col<T: FromSql>(r: &Row<'_>, name: &str) -> StoreResult<T> {
    r.get(name).map_err(db)
}

pub(crate) fn ts(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

pub(crate) fn from_ts(v: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp(v).map_err(StoreError::from_cause)
}

pub(crate) fn from_opt_ts(v: Option<i64>) -> Result<Option<OffsetDateTime>, StoreError> {
    v.map(from_ts).transpose()
}

pub(crate) fn json_col(v: Option<String>) -> Result<Option<serde_json::Value>, StoreError> {
    v.map(|s| serde_json::from_str(&s).map_err(StoreError::from_cause))
        .transpose()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn synchronous(c: &Connection) -> StoreResult<i64> {
        c.pragma_query_value(None, "synchronous", |r| r.get(0))
            .map_err(db)
    }

    /// Every connection, the writer first, commits with synchronous=FULL
    /// (2) in WAL mode: a write that returned is on disk, power loss
    /// included (with NORMAL, 1, the last commits before a power cut may
    /// be lost).
    #[tokio::test]
    async fn writes_are_synced_to_disk_before_they_return() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        let (sync, mode) = store
            .write(|c| {
                let mode: String = c
                    .pragma_query_value(None, "journal_mode", |r| r.get(0))
                    .map_err(db)?;
                Ok((synchronous(c)?, mode))
            })
            .await
            .unwrap();
        assert_eq!((sync, mode.as_str()), (2, "wal"), "the writer");
        for _ in 0..READERS {
            assert_eq!(store.read(synchronous).await.unwrap(), 2, "a reader");
        }
        store.close().await;
    }
}
