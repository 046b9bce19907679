//! Whole tables read and written for `mamori migrate` (`CopyStore`): rows
//! as backend-neutral cells (a BOOLEAN is 0 or 1, as SQLite stores it),
//! read in key order from a cursor, written in one transaction that holds
//! every copied table against other writers until it commits. Generated
//! columns are neither read nor written (PostgreSQL computes them); an
//! identity column's sequence is set past the copied numbers. The reads
//! take any client, so a snapshot (`snapshot.rs`) reads through them in
//! its own transaction.

use crate::{col, db, query_all, query_opt, PgStore};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Object};
use mamori_ports::{
    key_positions, Cell, CopyCursor, CopyStart, CopyStore, CopyTable, CopyWriter, StoreError,
    StoreResult, TableShape, COPY_TABLES,
};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;

/// PostgreSQL's limit on the parameters of one statement.
const MAX_PARAMS: usize = 65_535;

/// Rows in one INSERT at most.
const MAX_ROWS: usize = 1_000;

/// The sequences that number a column without being its own (an identity
/// column's): sequence, table, column.
const COUNTERS: &[(&str, &str, &str)] = &[("ephemeral_tick", "ephemeral", "used")];

/// The bookkeeping table of `schema.rs`, never copied.
const BOOKKEEPING: &str = "mamori_schema";

/// The current schema's namespace (where `schema.rs` creates the tables).
const NAMESPACE: &str = "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())";

#[async_trait]
impl CopyStore for PgStore {
    async fn schema_tables(&self) -> StoreResult<Vec<String>> {
        schema_tables(&self.conn().await?).await
    }

    async fn table_shape(&self, table: CopyTable) -> StoreResult<TableShape> {
        shape(&self.conn().await?, table).await
    }

    async fn count_rows(&self, table: CopyTable) -> StoreResult<u64> {
        count_rows(&self.conn().await?, table).await
    }

    async fn read_rows(
        &self,
        table: CopyTable,
        columns: &[String],
        from: &CopyCursor,
        limit: usize,
    ) -> StoreResult<Vec<Vec<Cell>>> {
        read_rows(&self.conn().await?, table, columns, from, limit).await
    }

    async fn begin_copy(&self) -> StoreResult<CopyStart> {
        let mut copy = PgCopy {
            conn: Some(self.conn().await?),
            committed: false,
        };
        let names: Vec<String> = COPY_TABLES.iter().map(|t| quoted(t.name)).collect();
        // EXCLUSIVE: others may read, nobody else writes (nor copies) into
        // these tables until this transaction ends.
        let start = format!(
            "BEGIN; SET LOCAL lock_timeout = '30s'; LOCK TABLE {} IN EXCLUSIVE MODE",
            names.join(", ")
        );
        copy.client()?.batch_execute(&start).await.map_err(db)?;
        for table in COPY_TABLES {
            let sql = format!(
                "SELECT EXISTS (SELECT 1 FROM {}) AS any",
                quoted(table.name)
            );
            let any = match query_opt(copy.client()?, &sql, &[]).await? {
                Some(r) => col::<bool>(&r, "any")?,
                None => false,
            };
            if any {
                copy.client()?.batch_execute("ROLLBACK").await.map_err(db)?;
                copy.committed = true;
                return Ok(CopyStart::NotEmpty(table.name));
            }
        }
        Ok(CopyStart::Ready(Box::new(copy)))
    }
}

/// Every table of the schema but [`BOOKKEEPING`], as `c` sees it.
pub(crate) async fn schema_tables(c: &impl GenericClient) -> StoreResult<Vec<String>> {
    let sql = format!(
        "SELECT relname::text AS name FROM pg_class \
         WHERE relnamespace = {NAMESPACE} AND relkind IN ('r', 'p') ORDER BY 1"
    );
    query_all(c, &sql, &[])
        .await?
        .iter()
        .map(|r| col::<String>(r, "name"))
        .filter(|n| n.as_ref().map_or(true, |n| n != BOOKKEEPING))
        .collect()
}

/// The rows of `table`, as `c` sees them.
pub(crate) async fn count_rows(c: &impl GenericClient, table: CopyTable) -> StoreResult<u64> {
    let sql = format!("SELECT count(*) AS n FROM {}", quoted(table.name));
    let n: i64 = match query_opt(c, &sql, &[]).await? {
        Some(r) => col(&r, "n")?,
        None => 0,
    };
    u64::try_from(n).map_err(StoreError::from_cause)
}

/// A batch of `table`'s rows from `from` on, as `c` sees them (see
/// `CopyStore::read_rows`).
pub(crate) async fn read_rows(
    c: &impl GenericClient,
    table: CopyTable,
    columns: &[String],
    from: &CopyCursor,
    limit: usize,
) -> StoreResult<Vec<Vec<Cell>>> {
    check_columns(c, table, columns).await?;
    let key: Vec<String> = key_positions(table, columns)?
        .into_iter()
        .map(|p| quoted(&columns[p]))
        .collect();
    let list: Vec<String> = columns.iter().map(|n| quoted(n)).collect();
    let mut sql = format!("SELECT {} FROM {}", list.join(", "), quoted(table.name));
    let bound = from.key().len();
    if bound > 0 {
        let marks: Vec<String> = (1..=bound).map(|i| format!("${i}")).collect();
        sql.push_str(&format!(
            " WHERE ({}) >= ({})",
            key.join(", "),
            marks.join(", ")
        ));
    }
    sql.push_str(&format!(
        " ORDER BY {} LIMIT ${}",
        key.join(", "),
        bound + 1
    ));
    let skip = from.seen();
    let fetch = i64::try_from(limit.saturating_add(skip)).map_err(StoreError::from_cause)?;
    let stmt = c.prepare_cached(&sql).await.map_err(db)?;
    let mut params = Vec::with_capacity(bound + 1);
    for (cell, ty) in from.key().iter().zip(stmt.params()) {
        params.push(param(cell, ty).map_err(|e| in_table(table, e))?);
    }
    params.push(Param::I64(Some(fetch)));
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(Param::as_sql).collect();
    let rows = c.query(&stmt, &refs).await.map_err(db)?;
    rows.iter()
        .skip(skip)
        .map(|r| cells(r, table, columns))
        .collect()
}

/// A copy being written into PostgreSQL, on a connection of its own.
struct PgCopy {
    conn: Option<Object>,
    /// Committed (or rolled back): the connection may go back to the pool.
    committed: bool,
}

impl PgCopy {
    fn client(&self) -> StoreResult<&Object> {
        self.conn
            .as_ref()
            .ok_or_else(|| StoreError::new("the copy was abandoned after a failure"))
    }

    /// Gives up the transaction: its connection is closed, not pooled, so
    /// PostgreSQL rolls it back.
    fn abandon(&mut self) {
        if let Some(c) = self.conn.take() {
            drop(Object::take(c));
        }
    }

    /// `r`, abandoning the transaction when it is an error (a failed
    /// statement leaves it unusable).
    fn checked<T>(&mut self, r: StoreResult<T>) -> StoreResult<T> {
        if r.is_err() {
            self.abandon();
        }
        r
    }

    /// Sets every sequence past the largest number stored in the column
    /// it numbers (an identity column's own, or one of [`COUNTERS`]), so
    /// new rows go on numbering after the copied ones. A sequence that
    /// numbers nothing known fails the copy: it would start again at 1.
    async fn advance_counters(&self) -> StoreResult<()> {
        let c = self.client()?;
        let identities = format!(
            "SELECT c.relname::text AS tbl, a.attname::text AS col, \
                    pg_get_serial_sequence(quote_ident(c.relname), a.attname) AS seq \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             WHERE c.relnamespace = {NAMESPACE} AND a.attidentity <> '' \
               AND a.attnum > 0 AND NOT a.attisdropped"
        );
        let mut counters = Vec::new();
        for r in query_all(c, &identities, &[]).await? {
            counters.push((col::<String>(&r, "seq")?, col(&r, "tbl")?, col(&r, "col")?));
        }
        let standalone = format!(
            "SELECT s.relname::text AS seq FROM pg_class s \
             WHERE s.relkind = 'S' AND s.relnamespace = {NAMESPACE} \
               AND NOT EXISTS (SELECT 1 FROM pg_depend d \
                               WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid \
                                 AND d.deptype IN ('a', 'i'))"
        );
        for r in query_all(c, &standalone, &[]).await? {
            let seq: String = col(&r, "seq")?;
            let Some((_, t, column)) = COUNTERS.iter().find(|(s, _, _)| *s == seq) else {
                return Err(StoreError::new(format!(
                    "the sequence {seq} numbers no column the copy knows of"
                )));
            };
            counters.push((quoted(&seq), (*t).to_owned(), (*column).to_owned()));
        }
        for (seq, t, column) in counters {
            let set = format!(
                "SELECT setval($1::text::regclass, COALESCE((SELECT MAX({}) FROM {}), 0) + 1, false)",
                quoted(&column),
                quoted(&t)
            );
            query_opt(c, &set, &[&seq]).await?;
        }
        Ok(())
    }
}

impl Drop for PgCopy {
    fn drop(&mut self) {
        if !self.committed {
            self.abandon();
        }
    }
}

#[async_trait]
impl CopyWriter for PgCopy {
    async fn write_rows(
        &mut self,
        table: CopyTable,
        columns: &[String],
        rows: Vec<Vec<Cell>>,
    ) -> StoreResult<u64> {
        let r = insert(self.client()?, table, columns, &rows).await;
        self.checked(r)
    }

    async fn commit(mut self: Box<Self>) -> StoreResult<()> {
        let r = self.advance_counters().await;
        self.checked(r)?;
        let r = match self.client() {
            Ok(c) => c.batch_execute("COMMIT").await.map_err(db),
            Err(e) => Err(e),
        };
        self.checked(r)?;
        self.committed = true;
        // A bulk load leaves the planner without statistics and every page
        // not yet marked all-visible, so scans that should read an index
        // alone fetch each row from the table until autovacuum gets there
        // (the whole-year breach scope took half as long again, or more).
        // Done now, before the first server starts.
        // The copy is in; if this fails, autovacuum does it later.
        if let Ok(c) = self.client() {
            if let Err(e) = c.batch_execute("VACUUM (ANALYZE)").await {
                tracing::warn!(cause = %db(e), "VACUUM ANALYZE after the copy failed; autovacuum will do it");
            }
        }
        Ok(())
    }
}

/// Inserts `rows` into `table`, as many per statement as the parameter
/// limit allows; how many.
async fn insert(
    c: &Object,
    table: CopyTable,
    columns: &[String],
    rows: &[Vec<Cell>],
) -> StoreResult<u64> {
    check_columns(c, table, columns).await?;
    if let Some(r) = rows.iter().find(|r| r.len() != columns.len()) {
        return Err(StoreError::new(format!(
            "{}: a row of {} cells for {} columns",
            table.name,
            r.len(),
            columns.len()
        )));
    }
    let list: Vec<String> = columns.iter().map(|n| quoted(n)).collect();
    let per_statement = (MAX_PARAMS / columns.len()).clamp(1, MAX_ROWS);
    let mut written = 0;
    for chunk in rows.chunks(per_statement) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let marks: Vec<String> = (1..=columns.len())
                    .map(|j| format!("${}", i * columns.len() + j))
                    .collect();
                format!("({})", marks.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            quoted(table.name),
            list.join(", "),
            values.join(", ")
        );
        let stmt = c.prepare_cached(&sql).await.map_err(db)?;
        let mut params = Vec::with_capacity(chunk.len() * columns.len());
        for (cell, ty) in chunk.iter().flatten().zip(stmt.params()) {
            params.push(param(cell, ty).map_err(|e| in_table(table, e))?);
        }
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(Param::as_sql).collect();
        written += c.execute(&stmt, &refs).await.map_err(db)?;
    }
    Ok(written)
}

/// `name` as an SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn in_table(table: CopyTable, what: String) -> StoreError {
    StoreError::new(format!("{}: {what}", table.name))
}

/// How `table` is stored, or an error when there is no such table.
pub(crate) async fn shape(c: &impl GenericClient, table: CopyTable) -> StoreResult<TableShape> {
    // `indkey` is an int2vector, whose first element is at 0.
    let sql = format!(
        "SELECT a.attname::text AS name, a.attgenerated <> '' AS generated, \
                COALESCE(array_position(i.indkey::int2[], a.attnum) \
                         - array_lower(i.indkey::int2[], 1) + 1, 0) AS pk \
         FROM pg_attribute a \
         JOIN pg_class c ON c.oid = a.attrelid \
         LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary \
         WHERE c.relname = $1 AND c.relnamespace = {NAMESPACE} \
           AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum"
    );
    let rows = query_all(c, &sql, &[&table.name]).await?;
    if rows.is_empty() {
        return Err(StoreError::new(format!("there is no table {}", table.name)));
    }
    let mut columns = Vec::new();
    let mut key = Vec::new();
    for r in &rows {
        let name: String = col(r, "name")?;
        let pk: i32 = col(r, "pk")?;
        if pk > 0 {
            key.push((pk, name.clone()));
        }
        if !col::<bool>(r, "generated")? {
            columns.push(name);
        }
    }
    key.sort();
    Ok(TableShape {
        columns,
        primary_key: key.into_iter().map(|(_, n)| n).collect(),
    })
}

/// Refuses a column `table` does not store, or a generated one.
async fn check_columns(
    c: &impl GenericClient,
    table: CopyTable,
    columns: &[String],
) -> StoreResult<()> {
    let shape = shape(c, table).await?;
    match columns.iter().find(|n| !shape.columns.contains(n)) {
        Some(n) => Err(StoreError::new(format!(
            "{} has no stored column {n}",
            table.name
        ))),
        None if columns.is_empty() => Err(StoreError::new("no columns to copy")),
        None => Ok(()),
    }
}

/// A statement parameter of the column's own type.
enum Param<'a> {
    Bool(Option<bool>),
    I64(Option<i64>),
    I32(Option<i32>),
    I16(Option<i16>),
    Text(Option<&'a str>),
    Bytes(Option<&'a [u8]>),
}

impl Param<'_> {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::Bool(v) => v,
            Param::I64(v) => v,
            Param::I32(v) => v,
            Param::I16(v) => v,
            Param::Text(v) => v,
            Param::Bytes(v) => v,
        }
    }
}

/// `cell` as a parameter of type `ty`; what does not fit, when it does not
/// (never the value: it may be personal).
fn param<'a>(cell: &'a Cell, ty: &Type) -> Result<Param<'a>, String> {
    let kind = match cell {
        Cell::Null => "NULL",
        Cell::Integer(_) => "an integer",
        Cell::Text(_) => "text",
        Cell::Bytes(_) => "bytes",
    };
    let int = |v: &i64| Some(*v);
    let p = match (cell, ty) {
        (Cell::Null, t) if *t == Type::BOOL => Param::Bool(None),
        (Cell::Integer(0), t) if *t == Type::BOOL => Param::Bool(Some(false)),
        (Cell::Integer(1), t) if *t == Type::BOOL => Param::Bool(Some(true)),
        (Cell::Null, t) if *t == Type::INT8 => Param::I64(None),
        (Cell::Integer(v), t) if *t == Type::INT8 => Param::I64(int(v)),
        (Cell::Null, t) if *t == Type::INT4 => Param::I32(None),
        (Cell::Integer(v), t) if *t == Type::INT4 => Param::I32(Some(
            i32::try_from(*v).map_err(|_| "an integer out of range")?,
        )),
        (Cell::Null, t) if *t == Type::INT2 => Param::I16(None),
        (Cell::Integer(v), t) if *t == Type::INT2 => Param::I16(Some(
            i16::try_from(*v).map_err(|_| "an integer out of range")?,
        )),
        (Cell::Null, t) if is_text(t) => Param::Text(None),
        (Cell::Text(s), t) if is_text(t) => Param::Text(Some(s)),
        (Cell::Null, t) if *t == Type::BYTEA => Param::Bytes(None),
        (Cell::Bytes(b), t) if *t == Type::BYTEA => Param::Bytes(Some(b)),
        _ => return Err(format!("{kind} cannot be stored in a {ty} column")),
    };
    Ok(p)
}

fn is_text(t: &Type) -> bool {
    [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(t)
}

/// A row's columns as cells.
fn cells(r: &Row, table: CopyTable, columns: &[String]) -> StoreResult<Vec<Cell>> {
    let mut out = Vec::with_capacity(columns.len());
    for (i, (column, name)) in r.columns().iter().zip(columns).enumerate() {
        let ty = column.type_();
        let got = |e: tokio_postgres::Error| db(e);
        let cell = if *ty == Type::BOOL {
            r.try_get::<_, Option<bool>>(i)
                .map_err(got)?
                .map_or(Cell::Null, |b| Cell::Integer(i64::from(b)))
        } else if *ty == Type::INT8 {
            r.try_get::<_, Option<i64>>(i)
                .map_err(got)?
                .map_or(Cell::Null, Cell::Integer)
        } else if *ty == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)
                .map_err(got)?
                .map_or(Cell::Null, |v| Cell::Integer(v.into()))
        } else if *ty == Type::INT2 {
            r.try_get::<_, Option<i16>>(i)
                .map_err(got)?
                .map_or(Cell::Null, |v| Cell::Integer(v.into()))
        } else if is_text(ty) {
            r.try_get::<_, Option<String>>(i)
                .map_err(got)?
                .map_or(Cell::Null, Cell::Text)
        } else if *ty == Type::BYTEA {
            r.try_get::<_, Option<Vec<u8>>>(i)
                .map_err(got)?
                .map_or(Cell::Null, Cell::Bytes)
        } else {
            return Err(StoreError::new(format!(
                "{}.{name} has the type {ty}, which is not copied",
                table.name
            )));
        };
        out.push(cell);
    }
    Ok(out)
}
