//! The database behind the ports: the embedded SQLite file in the data
//! directory (the default), or PostgreSQL (`MAMORI_DATABASE_URL`). Above
//! this module nothing knows which: the services hold an `Arc<dyn Store>`.

use crate::config::{Config, Database};
use mamori_ports::Store;
use mamori_store::SqliteStore;
use mamori_store_pg::PgStore;
use std::sync::Arc;

/// An open database.
#[derive(Debug, Clone)]
pub enum Db {
    /// `DATA_DIR/mamori.db`.
    Sqlite(SqliteStore),
    /// A PostgreSQL database.
    Postgres(PgStore),
}

impl Db {
    /// Opens the configured database, creating the embedded one (or the
    /// PostgreSQL schema) when it is new and applying migrations.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        match &config.database {
            Database::Embedded => Ok(Db::Sqlite(super::open_store(&config.data_dir).await?)),
            Database::Postgres(url) => PgStore::connect(url).await.map(Db::Postgres).map_err(|e| {
                // The cause (refused, authentication, TLS) without the URL.
                anyhow::anyhow!("cannot open {}: {e}", config.database.describe())
            }),
        }
    }

    /// The ports.
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Db::Sqlite(s) => Arc::new(s.clone()),
            Db::Postgres(s) => Arc::new(s.clone()),
        }
    }

    /// The SQLite store, for what only the embedded database does (its
    /// file-level backup).
    pub fn sqlite(&self) -> Option<&SqliteStore> {
        match self {
            Db::Sqlite(s) => Some(s),
            Db::Postgres(_) => None,
        }
    }

    /// Closes the database (SQLite checkpoints its WAL).
    pub async fn close(&self) {
        match self {
            Db::Sqlite(s) => s.close().await,
            Db::Postgres(s) => s.close(),
        }
    }
}
