//! A snapshot of a PostgreSQL database (`PgStore::snapshot`, what `mamori
//! backup create` reads on PostgreSQL): every read through it sees the
//! database as it stood when it was taken, whatever other servers commit
//! meanwhile; a table it withholds reads as empty and is never touched (so
//! never locked); it writes nothing; and it leaves no transaction open,
//! whether finished or dropped. PostgreSQL only: SQLite's backup copies
//! its file (`VACUUM INTO`).
#![allow(clippy::unwrap_used)]

use mamori_ports::*;
use mamori_store_pg::PgStore;
use mamori_testkit::pg::{shared, Cluster};
use std::time::Duration;
use time::OffsetDateTime;

fn table(name: &str) -> CopyTable {
    copy_table(name).unwrap()
}

/// Every row of `t` read through `store`, one row per read (each its own
/// statement), as (first column, the column `column`).
async fn every_row(store: &dyn CopyStore, t: CopyTable, column: &str) -> Vec<(Cell, Cell)> {
    let columns = store.table_shape(t).await.unwrap().columns;
    let at = columns.iter().position(|c| c == column).unwrap();
    let mut cursor = CopyCursor::start();
    let mut out = Vec::new();
    loop {
        let rows = store.read_rows(t, &columns, &cursor, 1).await.unwrap();
        if rows.is_empty() {
            return out;
        }
        cursor.advance(t, &columns, &rows).unwrap();
        out.extend(rows.into_iter().map(|r| (r[0].clone(), r[at].clone())));
    }
}

/// Connections of `url`'s database left inside a transaction.
fn open_transactions(url: &str) -> i64 {
    let db = Cluster::database_of(url);
    shared()
        .psql(
            db,
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' \
                 AND state LIKE 'idle in transaction%'"
            ),
        )
        .unwrap()
        .parse()
        .unwrap()
}

fn secret_row(name: &str, value: &[u8]) -> (Cell, Cell) {
    (Cell::Text(name.into()), Cell::Bytes(value.to_vec()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_reads_the_database_as_it_stood_when_taken() {
    let url = shared().fresh_database();
    let store = PgStore::connect(&url).await.unwrap();
    let now = OffsetDateTime::now_utc();
    store.put_secret("a", b"one", now).await.unwrap();
    store.put_secret("b", b"two", now).await.unwrap();
    let snapshot = store.snapshot().await.unwrap();

    // Another server goes on writing: a row added, one changed, one
    // deleted, each committed at once.
    let other = PgStore::connect(&url).await.unwrap();
    other.put_secret("c", b"three", now).await.unwrap();
    other.put_secret("a", b"changed", now).await.unwrap();
    assert!(other.delete_secret("b").await.unwrap());

    let secrets = table("secrets");
    assert_eq!(snapshot.count_rows(secrets).await.unwrap(), 2);
    assert_eq!(
        every_row(&snapshot, secrets, "sealed").await,
        vec![secret_row("a", b"one"), secret_row("b", b"two")]
    );
    // The database itself has moved on.
    assert_eq!(
        every_row(&store, secrets, "sealed").await,
        vec![secret_row("a", b"changed"), secret_row("c", b"three")]
    );
    // Only read: nothing is written through a snapshot.
    assert!(snapshot.begin_copy().await.is_err());
    snapshot.finish().await.unwrap();
    assert_eq!(open_transactions(&url), 0);
    assert_eq!(store.count_rows(secrets).await.unwrap(), 2);
}

/// A withheld table reads as empty and is never queried: another session
/// takes it whole at once (as VACUUM FULL does), while a table the
/// snapshot read stays held until the snapshot ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_table_is_never_read_nor_locked() {
    let url = shared().fresh_database();
    let db = Cluster::database_of(&url);
    let store = PgStore::connect(&url).await.unwrap();
    let person = mamori_domain::PersonRecord {
        id: mamori_domain::PersonId::parse("p1").unwrap(),
        status: mamori_domain::EmploymentStatus::Active,
        departed_at: None,
        created_at: OffsetDateTime::now_utc(),
        updated_at: OffsetDateTime::now_utc(),
        key_id: "mk1".into(),
        wrapped_key: b"wrapped data key".to_vec(),
        sealed: b"sealed fields".to_vec(),
        email_index: "e".into(),
        user_id_index: "u".into(),
        department_index: None,
    };
    store.insert_people(&[person]).await.unwrap().unwrap();
    let keys = table("person_keys");
    let people = table("people");
    let snapshot = store.snapshot().await.unwrap().withholding(keys);
    assert_eq!(snapshot.count_rows(keys).await.unwrap(), 0);
    let columns = snapshot.table_shape(keys).await.unwrap().columns;
    assert!(columns.contains(&"wrapped_key".to_owned()));
    assert!(snapshot
        .read_rows(keys, &columns, &CopyCursor::start(), 100)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(snapshot.count_rows(people).await.unwrap(), 1);

    let take_whole = |t: &str| {
        shared().psql(
            db,
            &format!("BEGIN; LOCK TABLE {t} IN ACCESS EXCLUSIVE MODE NOWAIT; COMMIT"),
        )
    };
    assert!(take_whole("person_keys").is_ok());
    let held = take_whole("people").unwrap_err();
    assert!(held.contains("could not obtain lock"), "{held}");
    // Dropped without finishing: its connection closes, which ends the
    // transaction and frees the table.
    drop(snapshot);
    let mut waited = Duration::ZERO;
    while take_whole("people").is_err() {
        assert!(waited < Duration::from_secs(10), "the snapshot stays open");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    // The lock is freed as the transaction aborts; the backend then leaves
    // pg_stat_activity a moment later.
    while open_transactions(&url) != 0 {
        assert!(waited < Duration::from_secs(10), "a transaction stays open");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
}
