//! Schema migrations: the SQL files under `migrations/postgres/`, embedded
//! and applied in order. PostgreSQL's DDL is transactional, so every
//! pending migration and its record in `mamori_schema` commit together or
//! not at all; an advisory lock makes servers starting at once migrate one
//! after another.

use crate::{col, db, exec, query_all, StoreError, StoreResult};
use deadpool_postgres::Object;

/// Every migration, by version, in order.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_schema.sql")),
    (
        2,
        include_str!("../migrations/postgres/0002_job_leases.sql"),
    ),
    (3, include_str!("../migrations/postgres/0003_ephemeral.sql")),
    (
        4,
        include_str!("../migrations/postgres/0004_read_windows.sql"),
    ),
    (
        5,
        include_str!("../migrations/postgres/0005_people_key_ring.sql"),
    ),
    (
        6,
        include_str!("../migrations/postgres/0006_key_statistics.sql"),
    ),
    (
        7,
        include_str!("../migrations/postgres/0007_queue_budget.sql"),
    ),
    (
        8,
        include_str!("../migrations/postgres/0008_audit_append.sql"),
    ),
];

/// The advisory lock held while migrating (outside the areas' key space
/// used by `crate::lock`).
const MIGRATION_LOCK: i64 = 0x6d61_6d6f_0000_0000 | 0xffff;

/// The newest schema version this build knows.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Applies every pending migration; refuses a database migrated by a newer
/// build.
pub(crate) async fn migrate(c: &mut Object) -> StoreResult<()> {
    let tx = c.transaction().await.map_err(db)?;
    exec(&tx, "SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS mamori_schema (
             version    BIGINT PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(db)?;
    let applied: Vec<i64> = query_all(&tx, "SELECT version FROM mamori_schema", &[])
        .await?
        .iter()
        .map(|r| col(r, "version"))
        .collect::<StoreResult<_>>()?;
    if let Some(v) = applied.iter().find(|v| **v > latest()) {
        return Err(StoreError::new(format!(
            "the database has schema version {v}, newer than this build's {}: \
             run the newer build",
            latest()
        )));
    }
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await.map_err(db)?;
        exec(
            &tx,
            "INSERT INTO mamori_schema (version) VALUES ($1)",
            &[version],
        )
        .await?;
        tracing::info!(version, "PostgreSQL schema migrated");
    }
    tx.commit().await.map_err(db)
}
