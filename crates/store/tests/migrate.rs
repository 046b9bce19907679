//! Schema migrations: fresh databases, reopening, and databases created by the
//! earlier sqlx-based backend (`_sqlx_migrations`, `user_version` 0), and
//! the move to named administrator accounts (version 3).
#![allow(clippy::unwrap_used)]

use mamori_domain::{AdminId, DeviceKey, TokenId};
use mamori_ports::{AdminStore, DeviceStore, PeopleStore, SecretStore, TokenStore};
use mamori_store::SqliteStore;
use rusqlite::Connection;
use time::OffsetDateTime;

const CORE: &str = include_str!("../migrations/sqlite/0001_core.sql");
const LINKS: &str = include_str!("../migrations/sqlite/0002_enrollment_links.sql");
const ADMINS: &str = include_str!("../migrations/sqlite/0003_admins.sql");
const PASSWORD_SET_AT: &str = include_str!("../migrations/sqlite/0004_password_set_at.sql");
/// The latest schema version.
const LATEST: i64 = 31;

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn user_version(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// Builds a database the way sqlx's migrator left it, with `applied` migrations.
fn sqlx_era_db(path: &std::path::Path, applied: &[(i64, &str)]) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        "CREATE TABLE _sqlx_migrations (
             version BIGINT PRIMARY KEY, description TEXT NOT NULL,
             installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
             success BOOLEAN NOT NULL, checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)",
    )
    .unwrap();
    for (v, sql) in applied {
        c.execute_batch(sql).unwrap();
        c.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (?, 'm', TRUE, x'00', 1)",
            [v],
        )
        .unwrap();
    }
    c.execute(
        "INSERT INTO secrets (name, sealed, updated_at) VALUES ('old', x'0102', 1)",
        [],
    )
    .unwrap();
}

#[tokio::test]
async fn fresh_database_migrates_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let s = SqliteStore::open(&path).await.unwrap();
    s.put_secret("k", b"v", now()).await.unwrap();
    s.close().await;
    assert!(s.secret("k").await.is_err(), "closed store must fail");
    assert_eq!(user_version(&path), LATEST);
    let s = SqliteStore::open(&path).await.unwrap();
    assert_eq!(s.secret("k").await.unwrap(), Some(b"v".to_vec()));
    s.close().await;
}

#[tokio::test]
async fn sqlx_era_database_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    sqlx_era_db(&path, &[(1, CORE), (2, LINKS)]);
    let s = SqliteStore::open(&path).await.unwrap();
    assert_eq!(s.secret("old").await.unwrap(), Some(vec![1, 2]));
    s.close().await;
    assert_eq!(user_version(&path), LATEST);
}

#[tokio::test]
async fn sqlx_era_database_gets_missing_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    sqlx_era_db(&path, &[(1, CORE)]);
    let s = SqliteStore::open(&path).await.unwrap();
    assert_eq!(s.secret("old").await.unwrap(), Some(vec![1, 2]));
    s.close().await;
    assert_eq!(user_version(&path), LATEST);
    let c = Connection::open(&path).unwrap();
    let links: i64 = c
        .query_row("SELECT COUNT(*) FROM enrollment_links", [], |r| r.get(0))
        .unwrap();
    assert_eq!(links, 0);
}

/// A database at version 2 (before administrator accounts) holding one
/// ownerless API token.
fn version_2_db_with_token(path: &std::path::Path) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(CORE).unwrap();
    c.execute_batch(LINKS).unwrap();
    c.pragma_update(None, "user_version", 2).unwrap();
    c.execute(
        "INSERT INTO api_tokens (id, name, role, secret_hash, created_at, expires_at)
         VALUES ('old', 'legacy', 'owner', 'hash', 1, 4000000000)",
        [],
    )
    .unwrap();
}

#[tokio::test]
async fn ownerless_tokens_are_dropped_by_version_3() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    version_2_db_with_token(&path);
    let s = SqliteStore::open(&path).await.unwrap();
    assert!(
        s.token(&TokenId::parse("old").unwrap())
            .await
            .unwrap()
            .is_none(),
        "a token without an owner must never authenticate again"
    );
    assert!(s.list_tokens(None).await.unwrap().is_empty());
    s.close().await;
    assert_eq!(user_version(&path), LATEST);
    let c = Connection::open(&path).unwrap();
    let tokens: i64 = c
        .query_row("SELECT COUNT(*) FROM api_tokens", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tokens, 0);
    // The rebuilt table requires an owner that exists.
    c.pragma_update(None, "foreign_keys", "ON").unwrap();
    assert!(c
        .execute(
            "INSERT INTO api_tokens (id, name, admin_id, role, secret_hash, created_at, expires_at)
             VALUES ('new', 'n', 'ghost', 'owner', 'h', 1, 2)",
            [],
        )
        .is_err());
}

#[tokio::test]
async fn version_4_database_gets_the_people_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let c = Connection::open(&path).unwrap();
        for sql in [CORE, LINKS, ADMINS, PASSWORD_SET_AT] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 4).unwrap();
        c.execute_batch(
            "INSERT INTO devices (udid, status, topic, enrolled_at, last_seen_at)
                 VALUES ('DEV1', 'enrolled', 't', 1, 1);
             INSERT INTO admins (id, name, role, password_hash, must_change_password,
                 created_at, password_set_at)
                 VALUES ('a1', 'alice', 'owner', 'h', 0, 1, 1);",
        )
        .unwrap();
    }
    let s = SqliteStore::open(&path).await.unwrap();
    let dev = DeviceKey::parse("DEV1").unwrap();
    assert!(s.device(&dev).await.unwrap().is_some(), "devices are kept");
    assert_eq!(s.device_person(&dev).await.unwrap(), None);
    assert!(s
        .admin(&AdminId::parse("a1").unwrap())
        .await
        .unwrap()
        .is_some());
    assert_eq!(s.count_people().await.unwrap(), 0);
    s.close().await;
    assert_eq!(user_version(&path), LATEST);
    let c = Connection::open(&path).unwrap();
    for table in ["people", "person_keys", "people_tombstones"] {
        let n: i64 = c
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }
    let admin_person: Option<String> = c
        .query_row("SELECT person_id FROM admins WHERE id = 'a1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(admin_person, None);
    // The new columns reference people.
    c.pragma_update(None, "foreign_keys", "ON").unwrap();
    assert!(c
        .execute(
            "UPDATE devices SET person_id = 'ghost' WHERE udid = 'DEV1'",
            []
        )
        .is_err());
    assert!(c
        .execute("UPDATE admins SET person_id = 'ghost' WHERE id = 'a1'", [])
        .is_err());
}
