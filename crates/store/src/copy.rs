//! Whole tables read and written for `mamori migrate` (`CopyStore`): rows
//! as backend-neutral cells, read in key order from a cursor, written in
//! one `BEGIN IMMEDIATE` transaction on the writer connection.

use crate::{db, join, live, query_all, SqliteStore};
use async_trait::async_trait;
use mamori_ports::{
    key_positions, Cell, CopyCursor, CopyStart, CopyStore, CopyTable, CopyWriter, StoreError,
    StoreResult, TableShape, COPY_TABLES,
};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{params_from_iter, Connection};
use tokio::sync::OwnedMutexGuard;

/// Tables of the schema that are SQLite's or an earlier backend's own
/// bookkeeping, never copied (besides `sqlite_*`).
const BOOKKEEPING: &[&str] = &["_sqlx_migrations"];

#[async_trait]
impl CopyStore for SqliteStore {
    async fn schema_tables(&self) -> StoreResult<Vec<String>> {
        let names = self
            .read(|c| {
                query_all(
                    c,
                    "SELECT name FROM sqlite_master WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
                    [],
                    |r| r.get::<_, String>(0).map_err(db),
                )
            })
            .await?;
        Ok(names
            .into_iter()
            .filter(|n| !BOOKKEEPING.contains(&n.as_str()))
            .collect())
    }

    async fn table_shape(&self, table: CopyTable) -> StoreResult<TableShape> {
        self.read(|c| shape(c, table)).await
    }

    async fn count_rows(&self, table: CopyTable) -> StoreResult<u64> {
        let sql = format!("SELECT count(*) FROM {}", quoted(table.name));
        self.read_blocking(move |c| {
            let n: i64 = c.query_row(&sql, [], |r| r.get(0)).map_err(db)?;
            u64::try_from(n).map_err(StoreError::from_cause)
        })
        .await
    }

    async fn read_rows(
        &self,
        table: CopyTable,
        columns: &[String],
        from: &CopyCursor,
        limit: usize,
    ) -> StoreResult<Vec<Vec<Cell>>> {
        let columns = columns.to_vec();
        let from = from.clone();
        self.read_blocking(move |c| read(c, table, &columns, &from, limit))
            .await
    }

    async fn begin_copy(&self) -> StoreResult<CopyStart> {
        let guard = std::sync::Arc::clone(&self.inner.writer).lock_owned().await;
        let mut tx = OpenTx {
            guard: Some(guard),
            open: false,
        };
        tx.conn()?.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
        tx.open = true;
        for table in COPY_TABLES {
            let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", quoted(table.name));
            let any: bool = tx
                .conn()?
                .query_row(&sql, [], |r| r.get(0))
                .map_err(|e| StoreError::new(format!("{}: {e}", table.name)))?;
            if any {
                return Ok(CopyStart::NotEmpty(table.name));
            }
        }
        Ok(CopyStart::Ready(Box::new(SqliteCopy { tx: Some(tx) })))
    }
}

/// The writer connection inside the copy's transaction; rolled back when
/// dropped before it commits (wherever it is dropped).
struct OpenTx {
    guard: Option<OwnedMutexGuard<Option<Connection>>>,
    open: bool,
}

impl OpenTx {
    fn conn(&mut self) -> StoreResult<&mut Connection> {
        match self.guard.as_mut() {
            Some(g) => live(g),
            None => Err(StoreError::new("the copy's connection is gone")),
        }
    }
}

impl Drop for OpenTx {
    fn drop(&mut self) {
        if self.open {
            if let Ok(c) = self.conn() {
                if let Err(e) = c.execute_batch("ROLLBACK") {
                    tracing::warn!(error = %e, "rolling back an unfinished copy");
                }
            }
        }
    }
}

/// A copy being written into SQLite.
struct SqliteCopy {
    tx: Option<OpenTx>,
}

impl SqliteCopy {
    /// Runs `f` in the transaction on the blocking pool.
    async fn run<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let mut tx = self
            .tx
            .take()
            .ok_or_else(|| StoreError::new("the copy was abandoned after a failure"))?;
        let (tx, out) = tokio::task::spawn_blocking(move || {
            let out = tx.conn().and_then(f);
            (tx, out)
        })
        .await
        .map_err(join)?;
        // A failed statement leaves the transaction unusable: dropping it
        // rolls it back.
        if out.is_ok() {
            self.tx = Some(tx);
        }
        out
    }
}

#[async_trait]
impl CopyWriter for SqliteCopy {
    async fn write_rows(
        &mut self,
        table: CopyTable,
        columns: &[String],
        rows: Vec<Vec<Cell>>,
    ) -> StoreResult<u64> {
        let columns = columns.to_vec();
        self.run(move |c| write(c, table, &columns, &rows)).await
    }

    async fn commit(mut self: Box<Self>) -> StoreResult<()> {
        self.run(|c| c.execute_batch("COMMIT").map_err(db)).await?;
        if let Some(tx) = self.tx.as_mut() {
            tx.open = false;
        }
        Ok(())
    }
}

/// `name` as an SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// How `table` is stored, or an error when there is no such table.
fn shape(c: &Connection, table: CopyTable) -> StoreResult<TableShape> {
    // `hidden` is 0 for an ordinary column (2 and 3 are generated ones).
    let cols = query_all(
        c,
        "SELECT name, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid",
        [table.name],
        |r| {
            Ok((
                r.get::<_, String>(0).map_err(db)?,
                r.get::<_, i64>(1).map_err(db)?,
                r.get::<_, i64>(2).map_err(db)?,
            ))
        },
    )?;
    if cols.is_empty() {
        return Err(StoreError::new(format!("there is no table {}", table.name)));
    }
    let mut key: Vec<(i64, String)> = cols
        .iter()
        .filter(|(_, pk, _)| *pk > 0)
        .map(|(n, pk, _)| (*pk, n.clone()))
        .collect();
    key.sort();
    Ok(TableShape {
        columns: cols
            .into_iter()
            .filter(|(_, _, hidden)| *hidden == 0)
            .map(|(n, _, _)| n)
            .collect(),
        primary_key: key.into_iter().map(|(_, n)| n).collect(),
    })
}

/// Refuses a column `table` does not store (SQLite would read an unknown
/// double-quoted name as a string).
fn check_columns(c: &Connection, table: CopyTable, columns: &[String]) -> StoreResult<()> {
    let shape = shape(c, table)?;
    match columns.iter().find(|n| !shape.columns.contains(n)) {
        Some(n) => Err(StoreError::new(format!("{} has no column {n}", table.name))),
        None if columns.is_empty() => Err(StoreError::new("no columns to copy")),
        None => Ok(()),
    }
}

/// A batch of rows from `from` on (see `CopyStore::read_rows`).
fn read(
    c: &Connection,
    table: CopyTable,
    columns: &[String],
    from: &CopyCursor,
    limit: usize,
) -> StoreResult<Vec<Vec<Cell>>> {
    check_columns(c, table, columns)?;
    let key: Vec<String> = key_positions(table, columns)?
        .into_iter()
        .map(|p| quoted(&columns[p]))
        .collect();
    let list: Vec<String> = columns.iter().map(|n| quoted(n)).collect();
    let mut sql = format!("SELECT {} FROM {}", list.join(", "), quoted(table.name));
    if !from.key().is_empty() {
        let marks = vec!["?"; key.len()].join(", ");
        sql.push_str(&format!(" WHERE ({}) >= ({marks})", key.join(", ")));
    }
    let skip = from.seen();
    let fetch = i64::try_from(limit.saturating_add(skip)).map_err(StoreError::from_cause)?;
    sql.push_str(&format!(" ORDER BY {} LIMIT ?", key.join(", ")));
    let mut stmt = c.prepare_cached(&sql).map_err(db)?;
    let params = from
        .key()
        .iter()
        .map(value)
        .chain([ToSqlOutput::Owned(Value::Integer(fetch))]);
    let mut rows = stmt.query(params_from_iter(params)).map_err(db)?;
    let mut out = Vec::new();
    let mut index = 0;
    while let Some(r) = rows.next().map_err(db)? {
        index += 1;
        if index <= skip {
            continue;
        }
        let mut cells = Vec::with_capacity(columns.len());
        for (i, name) in columns.iter().enumerate() {
            cells.push(
                cell(r.get_ref(i).map_err(db)?).map_err(|what| {
                    StoreError::new(format!("{}.{name} holds {what}", table.name))
                })?,
            );
        }
        out.push(cells);
    }
    Ok(out)
}

/// Inserts `rows` into `table`; how many.
fn write(
    c: &Connection,
    table: CopyTable,
    columns: &[String],
    rows: &[Vec<Cell>],
) -> StoreResult<u64> {
    check_columns(c, table, columns)?;
    let list: Vec<String> = columns.iter().map(|n| quoted(n)).collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        quoted(table.name),
        list.join(", "),
        vec!["?"; columns.len()].join(", ")
    );
    let mut stmt = c.prepare_cached(&sql).map_err(db)?;
    let mut n = 0;
    for row in rows {
        if row.len() != columns.len() {
            return Err(StoreError::new(format!(
                "{}: a row of {} cells for {} columns",
                table.name,
                row.len(),
                columns.len()
            )));
        }
        stmt.execute(params_from_iter(row.iter().map(value)))
            .map_err(|e| StoreError::new(format!("{}: {e}", table.name)))?;
        n += 1;
    }
    Ok(n)
}

/// A cell as a statement parameter.
fn value(c: &Cell) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(match c {
        Cell::Null => ValueRef::Null,
        Cell::Integer(v) => ValueRef::Integer(*v),
        Cell::Text(s) => ValueRef::Text(s.as_bytes()),
        Cell::Bytes(b) => ValueRef::Blob(b),
    })
}

/// A stored value as a cell; what it holds instead when it cannot be one
/// (never the value itself: it may be personal).
fn cell(v: ValueRef<'_>) -> Result<Cell, &'static str> {
    Ok(match v {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::Integer(i),
        ValueRef::Real(_) => return Err("a floating-point number"),
        ValueRef::Text(t) => Cell::Text(
            std::str::from_utf8(t)
                .map_err(|_| "text that is not UTF-8")?
                .to_owned(),
        ),
        ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
    })
}
