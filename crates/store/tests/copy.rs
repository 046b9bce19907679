//! The copy port (`CopyStore`, what `mamori migrate` moves an installation
//! with): the table list names every table of both schemas with its key
//! and in an order the foreign keys allow; every table round-trips with
//! odd values (NULLs, empty strings and bytes, bytes with zeros, large
//! integers, non-ASCII text, identical rows of a keyless table) read in
//! small batches; a copy from SQLite to PostgreSQL is cell for cell the
//! same and numbers on after the copied rows; a copy goes only into empty
//! tables, once, and a copy given up or failed leaves nothing.
#![allow(clippy::unwrap_used)]

mod backends;

use backends::{Backend, Db};
use mamori_ports::*;
use mamori_store::SqliteStore;
use mamori_store_pg::PgStore;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A store of `b` through its copy port and its ordinary ports.
async fn open(b: Backend) -> (Arc<dyn CopyStore>, Arc<dyn Store>, Db) {
    match b {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let s = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
            (Arc::new(s.clone()), Arc::new(s), Db::Sqlite(dir))
        }
        Backend::Postgres => {
            let url = mamori_testkit::pg::shared().fresh_database();
            let s = PgStore::connect(&url).await.unwrap();
            (Arc::new(s.clone()), Arc::new(s), Db::Postgres(url))
        }
    }
}

fn ready(start: CopyStart) -> Box<dyn CopyWriter> {
    match start {
        CopyStart::Ready(w) => w,
        CopyStart::NotEmpty(t) => panic!("a fresh store has rows in {t}"),
    }
}

/// Columns that are booleans (INTEGER 0/1 on SQLite, BOOLEAN on
/// PostgreSQL).
const BOOLEANS: &[(&str, &str)] = &[
    ("enrollment_links", "signed"),
    ("admins", "must_change_password"),
];

/// The values of row 0, 1 and 2 of every table: the same in every column
/// of one kind, so a child's reference finds its parent's row of the same
/// number. Row 1 is NULL wherever a column may be.
const TEXTS: [&str; 3] = [
    "",
    "東京都千代田区 — naïve café ✓ 🙂",
    "it's \"quoted\"; -- \\ %_ \t\r\n end",
];
const INTS: [i64; 3] = [9_007_199_254_740_993, 1, 4_294_967_296];

fn bytes(k: usize) -> Vec<u8> {
    match k {
        0 => vec![0, 0, 0, 1, 0],
        1 => Vec::new(),
        _ => (0..=255).collect(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Int,
    Bool,
    Text,
    Bytes,
}

/// Kind and nullability of every column of every table, as SQLite's schema
/// declares them (a key column is never NULL).
async fn declared() -> HashMap<(String, String), (Kind, bool)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema.db");
    SqliteStore::open(&path).await.unwrap().close().await;
    let c = rusqlite::Connection::open(&path).unwrap();
    let mut out = HashMap::new();
    for t in COPY_TABLES {
        let mut stmt = c
            .prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_xinfo(?1)")
            .unwrap();
        let cols = stmt
            .query_map([t.name], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .unwrap();
        for col in cols {
            let (name, ty, not_null, pk) = col.unwrap();
            let kind = match ty.as_str() {
                _ if BOOLEANS.contains(&(t.name, name.as_str())) => Kind::Bool,
                "INTEGER" => Kind::Int,
                "TEXT" => Kind::Text,
                "BLOB" => Kind::Bytes,
                other => panic!("{}.{name}: a column of type {other}", t.name),
            };
            out.insert((t.name.to_owned(), name), (kind, !not_null && pk == 0));
        }
    }
    out
}

/// Rows 0, 1 and 2 of `table` (and, for a table without a key, row 2
/// twice more: identical rows).
fn odd_rows(
    table: CopyTable,
    columns: &[String],
    declared: &HashMap<(String, String), (Kind, bool)>,
) -> Vec<Vec<Cell>> {
    let row = |k: usize| -> Vec<Cell> {
        columns
            .iter()
            .map(|c| {
                let (kind, nullable) = declared[&(table.name.to_owned(), c.clone())];
                match kind {
                    _ if nullable && k == 1 => Cell::Null,
                    Kind::Int => Cell::Integer(INTS[k]),
                    Kind::Bool => Cell::Integer(i64::from(k != 1)),
                    Kind::Text => Cell::Text(TEXTS[k].to_owned()),
                    Kind::Bytes => Cell::Bytes(bytes(k)),
                }
            })
            .collect()
    };
    let mut rows = vec![row(2), row(0), row(1)];
    if table.key.is_empty() {
        rows.extend([row(2), row(2)]);
    }
    rows
}

/// How two cells of a key compare (text and bytes byte by byte).
fn cmp_cell(a: &Cell, b: &Cell) -> Ordering {
    match (a, b) {
        (Cell::Integer(x), Cell::Integer(y)) => x.cmp(y),
        (Cell::Text(x), Cell::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Cell::Bytes(x), Cell::Bytes(y)) => x.cmp(y),
        _ => panic!("a key column holds {a:?} and {b:?}"),
    }
}

/// `rows` in the order of `table`'s key.
fn sorted(table: CopyTable, columns: &[String], mut rows: Vec<Vec<Cell>>) -> Vec<Vec<Cell>> {
    let key = key_positions(table, columns).unwrap();
    rows.sort_by(|a, b| {
        key.iter()
            .map(|&p| cmp_cell(&a[p], &b[p]))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    rows
}

/// Every row of `table`, read `batch` at a time.
async fn read_all(
    s: &dyn CopyStore,
    table: CopyTable,
    columns: &[String],
    batch: usize,
) -> Vec<Vec<Cell>> {
    let mut cursor = CopyCursor::start();
    let mut out = Vec::new();
    loop {
        let rows = s.read_rows(table, columns, &cursor, batch).await.unwrap();
        assert!(rows.len() <= batch, "{}: more rows than asked", table.name);
        if rows.is_empty() {
            return out;
        }
        cursor.advance(table, columns, &rows).unwrap();
        out.extend(rows);
        assert!(out.len() <= 100, "{}: reading never ends", table.name);
    }
}

/// Writes odd rows into every table of `s`; the columns and rows of each.
async fn fill(s: &dyn CopyStore) -> HashMap<&'static str, (Vec<String>, Vec<Vec<Cell>>)> {
    let declared = declared().await;
    let mut w = ready(s.begin_copy().await.unwrap());
    let mut written = HashMap::new();
    for t in COPY_TABLES {
        let columns = s.table_shape(*t).await.unwrap().columns;
        let rows = odd_rows(*t, &columns, &declared);
        let n = w.write_rows(*t, &columns, rows.clone()).await.unwrap();
        assert_eq!(n, rows.len() as u64, "{}", t.name);
        written.insert(t.name, (columns, rows));
    }
    w.commit().await.unwrap();
    written
}

async fn the_table_list_names_every_table_of_the_schema_with_its_key(b: Backend) {
    let (s, _, _d) = open(b).await;
    let mut schema = s.schema_tables().await.unwrap();
    schema.sort();
    let mut listed: Vec<String> = COPY_TABLES.iter().map(|t| t.name.to_owned()).collect();
    listed.sort();
    assert_eq!(
        schema, listed,
        "every table is copied by `mamori migrate`: list a new one in \
         COPY_TABLES (crates/ports/src/copy.rs)"
    );
    for t in COPY_TABLES {
        let shape = s.table_shape(*t).await.unwrap();
        assert_eq!(shape.primary_key, t.key, "{}: the key listed", t.name);
        assert!(!shape.columns.is_empty(), "{}", t.name);
    }
    assert!(s.table_shape(table("no_such_table")).await.is_err());
}

fn table(name: &'static str) -> CopyTable {
    CopyTable { name, key: &[] }
}

/// Every foreign key's parent table is listed before its child, on both
/// schemas (read beneath the ports).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_list_puts_every_parent_before_its_children() {
    let position = |name: &str| {
        COPY_TABLES
            .iter()
            .position(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} is not listed"))
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    SqliteStore::open(&path).await.unwrap().close().await;
    let c = rusqlite::Connection::open(&path).unwrap();
    let mut pairs = Vec::new();
    for t in COPY_TABLES {
        let mut stmt = c
            .prepare("SELECT \"table\" FROM pragma_foreign_key_list(?1)")
            .unwrap();
        for parent in stmt.query_map([t.name], |r| r.get::<_, String>(0)).unwrap() {
            pairs.push((t.name.to_owned(), parent.unwrap()));
        }
    }
    let url = mamori_testkit::pg::shared().fresh_database();
    PgStore::connect(&url).await.unwrap().close();
    let cluster = mamori_testkit::pg::shared();
    let out = cluster
        .psql(
            mamori_testkit::pg::Cluster::database_of(&url),
            "SELECT conrelid::regclass::text || ' ' || confrelid::regclass::text \
             FROM pg_constraint WHERE contype = 'f'",
        )
        .unwrap();
    let pg_pairs: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(c, p)| (c.to_owned(), p.to_owned()))
        .collect();
    assert!(
        pairs.len() >= 10 && pg_pairs.len() >= 10,
        "{pairs:?} {pg_pairs:?}"
    );
    for (child, parent) in pairs.iter().chain(&pg_pairs) {
        assert!(
            position(parent) < position(child),
            "{parent} must be listed before {child}"
        );
    }
}

async fn every_table_round_trips_with_odd_values(b: Backend) {
    let (s, _, _d) = open(b).await;
    let written = fill(&*s).await;
    for t in COPY_TABLES {
        let (columns, rows) = written[t.name].clone();
        assert_eq!(s.count_rows(*t).await.unwrap(), rows.len() as u64);
        let read = read_all(&*s, *t, &columns, 2).await;
        assert_eq!(read, sorted(*t, &columns, rows), "{}", t.name);
    }
}

/// SQLite to PostgreSQL, read two rows at a time: every cell the same,
/// in the same order; every sequence (the queue's numbers, ...) goes on
/// after the largest number copied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_from_sqlite_to_postgres_keeps_every_cell_and_numbers_on() {
    let (src, _, _sd) = open(Backend::Sqlite).await;
    fill(&*src).await;
    let (dst, _, dd) = open(Backend::Postgres).await;
    let mut w = ready(dst.begin_copy().await.unwrap());
    for t in COPY_TABLES {
        let columns = src.table_shape(*t).await.unwrap().columns;
        let mut cursor = CopyCursor::start();
        loop {
            let rows = src.read_rows(*t, &columns, &cursor, 2).await.unwrap();
            if rows.is_empty() {
                break;
            }
            cursor.advance(*t, &columns, &rows).unwrap();
            w.write_rows(*t, &columns, rows).await.unwrap();
        }
    }
    w.commit().await.unwrap();
    for t in COPY_TABLES {
        let columns = src.table_shape(*t).await.unwrap().columns;
        let from = read_all(&*src, *t, &columns, 3).await;
        assert!(!from.is_empty());
        assert_eq!(read_all(&*dst, *t, &columns, 3).await, from, "{}", t.name);
    }
    let sequences = "FROM pg_class WHERE relkind = 'S' AND relnamespace = 'public'::regnamespace";
    assert!(dd.raw_i64(&format!("SELECT count(*) {sequences}")) >= 1);
    assert_eq!(
        dd.raw_i64(&format!(
            "SELECT count(*) FROM (SELECT nextval(oid::regclass) AS n {sequences}) s \
             WHERE n <> {}",
            INTS[0] + 1
        )),
        0,
        "a sequence would number new rows among the copied ones"
    );
}

/// A sequence the copy does not know the column of fails the copy rather
/// than let it number from 1 again; nothing stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_the_copy_does_not_know_fails_it() {
    let (s, _, d) = open(Backend::Postgres).await;
    d.raw("CREATE SEQUENCE stray_tick").unwrap();
    let mut w = ready(s.begin_copy().await.unwrap());
    let secrets = copy_table("secrets").unwrap();
    let columns = s.table_shape(secrets).await.unwrap().columns;
    let row = |c: &String| match c.as_str() {
        "name" => Cell::Text("k".into()),
        "sealed" => Cell::Bytes(vec![1]),
        _ => Cell::Integer(1),
    };
    w.write_rows(secrets, &columns, vec![columns.iter().map(row).collect()])
        .await
        .unwrap();
    let err = w.commit().await.unwrap_err();
    assert!(err.to_string().contains("stray_tick"), "{err}");
    assert_eq!(s.count_rows(secrets).await.unwrap(), 0);
}

async fn a_copy_goes_only_into_empty_tables(b: Backend) {
    let (s, store, _d) = open(b).await;
    // The last table listed, through a copy.
    let last = COPY_TABLES[COPY_TABLES.len() - 1];
    let declared = declared().await;
    let columns = s.table_shape(last).await.unwrap().columns;
    let mut w = ready(s.begin_copy().await.unwrap());
    let rows = odd_rows(last, &columns, &declared);
    w.write_rows(last, &columns, rows).await.unwrap();
    w.commit().await.unwrap();
    match s.begin_copy().await.unwrap() {
        CopyStart::NotEmpty(t) => assert_eq!(t, last.name),
        CopyStart::Ready(_) => panic!("a second copy into {}", last.name),
    }
    // A store in use, through its ordinary ports.
    let (s, store2, _d2) = open(b).await;
    drop(store);
    store2
        .put_secret("people.index", b"sealed", time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    match s.begin_copy().await.unwrap() {
        CopyStart::NotEmpty(t) => assert_eq!(t, "secrets"),
        CopyStart::Ready(_) => panic!("a copy into a store in use"),
    }
}

async fn a_copy_given_up_or_failed_leaves_nothing(b: Backend) {
    let (s, _, _d) = open(b).await;
    let declared = declared().await;
    let mut w = ready(s.begin_copy().await.unwrap());
    for t in &COPY_TABLES[..4] {
        let columns = s.table_shape(*t).await.unwrap().columns;
        w.write_rows(*t, &columns, odd_rows(*t, &columns, &declared))
            .await
            .unwrap();
    }
    drop(w);
    for t in &COPY_TABLES[..4] {
        assert_eq!(s.count_rows(*t).await.unwrap(), 0, "{}", t.name);
    }
    // A row whose parent is missing fails; the copy is then unusable and
    // leaves nothing either.
    let mut w = ready(s.begin_copy().await.unwrap());
    let profiles = copy_table("enrollment_profiles").unwrap();
    let columns = s.table_shape(profiles).await.unwrap().columns;
    w.write_rows(profiles, &columns, odd_rows(profiles, &columns, &declared))
        .await
        .unwrap();
    let keys = copy_table("person_keys").unwrap();
    let key_columns = s.table_shape(keys).await.unwrap().columns;
    let orphan = odd_rows(keys, &key_columns, &declared);
    assert!(w.write_rows(keys, &key_columns, orphan).await.is_err());
    let again = odd_rows(profiles, &columns, &declared);
    assert!(w.write_rows(profiles, &columns, again).await.is_err());
    assert!(w.commit().await.is_err());
    assert_eq!(s.count_rows(profiles).await.unwrap(), 0);
    // The store is free for a copy again.
    ready(s.begin_copy().await.unwrap());
}

/// A second copy started while one is being written waits for it, then
/// finds its rows: two copies never mix.
async fn two_copies_at_once_never_mix(b: Backend) {
    let (s, _, _d) = open(b).await;
    let declared = declared().await;
    let mut first = ready(s.begin_copy().await.unwrap());
    let secrets = copy_table("secrets").unwrap();
    let columns = s.table_shape(secrets).await.unwrap().columns;
    first
        .write_rows(secrets, &columns, odd_rows(secrets, &columns, &declared))
        .await
        .unwrap();
    let other = Arc::clone(&s);
    let second = tokio::spawn(async move { other.begin_copy().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the second copy did not wait");
    first.commit().await.unwrap();
    match second.await.unwrap() {
        CopyStart::NotEmpty(t) => assert_eq!(t, "secrets"),
        CopyStart::Ready(_) => panic!("the second copy found the tables empty"),
    }
}

/// Only the table's own stored columns are read or written (on SQLite an
/// unknown double-quoted name would be read as a string).
async fn a_column_the_table_does_not_store_is_refused(b: Backend) {
    let (s, _, _d) = open(b).await;
    let secrets = copy_table("secrets").unwrap();
    let nope = vec!["name".to_owned(), "nope".to_owned()];
    assert!(s
        .read_rows(secrets, &nope, &CopyCursor::start(), 10)
        .await
        .is_err());
    let mut w = ready(s.begin_copy().await.unwrap());
    let row = vec![Cell::Text("k".into()), Cell::Text("v".into())];
    assert!(w.write_rows(secrets, &nope, vec![row]).await.is_err());
}

on_both_backends!(
    the_table_list_names_every_table_of_the_schema_with_its_key,
    every_table_round_trips_with_odd_values,
    a_copy_goes_only_into_empty_tables,
    a_copy_given_up_or_failed_leaves_nothing,
    two_copies_at_once_never_mix,
    a_column_the_table_does_not_store_is_refused,
);
