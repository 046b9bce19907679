//! The backends a store test runs on, and `on_both_backends!`, which runs
//! each test once per backend: on SQLite (`sqlite::…`) and on PostgreSQL
//! (`postgres::…`, in a throwaway cluster the test binary starts, a fresh
//! database per test). A test file says `mod backends;`, writes its tests
//! as `async fn name(b: Backend)` and lists them in `on_both_backends!`.
#![allow(dead_code, unused_macros)]

use mamori_ports::Store;
use mamori_store::SqliteStore;
use mamori_store_pg::PgStore;
use rusqlite::Connection;
use std::sync::Arc;

/// A backend the suite runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What a test keeps while it runs: the database, and a way to reach it
/// beneath the ports (to break a stored row on purpose, or to check what
/// is stored).
pub enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Backend {
    /// A new, empty store.
    pub async fn open(self) -> (Arc<dyn Store>, Db) {
        match self {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
                (Arc::new(store), Db::Sqlite(dir))
            }
            Backend::Postgres => {
                let url = mamori_testkit::pg::shared().fresh_database();
                let store = PgStore::connect(&url).await.unwrap();
                (Arc::new(store), Db::Postgres(url))
            }
        }
    }
}

impl Db {
    /// Another handle on the same database: another server's, for the
    /// rules that must hold across servers.
    pub async fn another(&self) -> Arc<dyn Store> {
        match self {
            Db::Sqlite(dir) => Arc::new(SqliteStore::open(&dir.path().join("t.db")).await.unwrap()),
            Db::Postgres(url) => Arc::new(PgStore::connect(url).await.unwrap()),
        }
    }

    /// Runs `sql` beneath the ports; the error's text when it fails.
    pub fn raw(&self, sql: &str) -> Result<(), String> {
        match self {
            Db::Sqlite(dir) => Connection::open(dir.path().join("t.db"))
                .unwrap()
                .execute_batch(sql)
                .map_err(|e| e.to_string()),
            Db::Postgres(url) => {
                let name = mamori_testkit::pg::Cluster::database_of(url);
                mamori_testkit::pg::shared().psql(name, sql).map(drop)
            }
        }
    }

    /// The one integer `sql` selects, read beneath the ports.
    pub fn raw_i64(&self, sql: &str) -> i64 {
        match self {
            Db::Sqlite(dir) => Connection::open(dir.path().join("t.db"))
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap(),
            Db::Postgres(url) => {
                let name = mamori_testkit::pg::Cluster::database_of(url);
                mamori_testkit::pg::shared()
                    .psql(name, sql)
                    .unwrap()
                    .parse()
                    .unwrap()
            }
        }
    }
}

/// Each contract test once per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::backends::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::backends::Backend::Postgres).await;
                }
            )*
        }
    };
}
