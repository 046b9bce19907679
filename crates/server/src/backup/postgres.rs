//! `mamori backup create` on PostgreSQL. The database is read in one
//! snapshot (`PgStore::snapshot`: one REPEATABLE READ, READ ONLY
//! transaction, while servers go on writing) through the copy port, table
//! by table, into a fresh SQLite database in a scratch directory — the copy
//! `mamori migrate` makes, the other way round — and that database becomes
//! a backup exactly as the embedded one does ([`super::create`]: data keys
//! stripped, encrypted). So a backup file has one format whatever the
//! backend, and `restore --verify` and `restore --into` read it alike;
//! restored, it is an installation on SQLite, which `mamori migrate` moves
//! back to PostgreSQL.
//!
//! The snapshot withholds the people's data keys: they are never read, so
//! no scratch file ever holds one (a removed file's blocks keep what was in
//! them), and a purge's rewrite of the key table never waits for a backup.
//! A purge that commits while the snapshot is open cannot remove its key's
//! old row version (the snapshot may still see it); once the snapshot
//! ends, the backup asks the database to forget what was deleted.

use super::{Created, Source};
use crate::migrate::{copy_checked, TableReport};
use anyhow::Context;
use mamori_core::Services;
use mamori_ports::{copy_table, CopyStore, CopyTable, PeopleStore};
use mamori_store_pg::{PgSnapshot, PgStore};
use std::path::Path;

/// The table of people's data keys, never read into a backup.
fn data_keys() -> anyhow::Result<CopyTable> {
    copy_table("person_keys").context("the copy list has no table of data keys")
}

/// The table that gains a row with every purge.
fn tombstones() -> anyhow::Result<CopyTable> {
    copy_table("people_tombstones").context("the copy list has no table of purged people")
}

/// Writes an encrypted backup of the PostgreSQL database `live` to `file`
/// (which must not exist), from one snapshot taken now.
pub async fn create_on_postgres(
    services: &Services,
    live: &PgStore,
    data_dir: &Path,
    file: &Path,
) -> anyhow::Result<Created> {
    let snapshot = live
        .snapshot()
        .await
        .map_err(|e| anyhow::anyhow!("cannot take a snapshot of the database: {e}"))?;
    create_from_snapshot(services, live, snapshot, data_dir, file).await
}

/// [`create_on_postgres`] from `snapshot`, a snapshot of `live` already
/// taken (ended here, whatever happens).
pub async fn create_from_snapshot(
    services: &Services,
    live: &PgStore,
    snapshot: PgSnapshot,
    data_dir: &Path,
    file: &Path,
) -> anyhow::Result<Created> {
    anyhow::ensure!(
        !file.exists(),
        "{} exists; choose a new file",
        file.display()
    );
    let snapshot = snapshot.withholding(data_keys()?);
    let purged_then = snapshot.count_rows(tombstones()?).await;
    let scratch = tempfile::tempdir_in(data_dir).context("cannot make a scratch directory")?;
    let copy = crate::app::open_store(scratch.path()).await?;
    let copied = match &purged_then {
        Ok(_) => copy_checked(
            &snapshot,
            "the PostgreSQL snapshot",
            &copy,
            "the backup's SQLite copy",
        )
        .await
        .and_then(|tables| faithful(&tables)),
        Err(e) => Err(anyhow::anyhow!("cannot read the snapshot: {e}")),
    };
    if let Err(e) = snapshot.finish().await {
        tracing::warn!(error = %e, "ending the backup's snapshot");
    }
    let created = match copied {
        Ok(rows) => super::create(services, &copy, data_dir, file)
            .await
            .map(|c| (c, rows)),
        Err(e) => Err(e),
    };
    copy.close().await;
    drop(scratch);
    let forgot = match purged_then {
        Ok(then) => forget_purged_since(live, then).await,
        Err(_) => Ok(()),
    };
    match (created, forgot) {
        (Ok((created, rows)), Ok(())) => Ok(Created {
            source: Source::Postgres,
            rows,
            ..created
        }),
        (Ok(_), Err(e)) => Err(e.context(format!(
            "the backup is written to {}, but a purge's deleted key may linger in the database",
            file.display()
        ))),
        (Err(e), forgot) => {
            if let Err(f) = forgot {
                tracing::warn!(error = %f, "forgetting what a purge deleted");
            }
            Err(e)
        }
    }
}

/// Has the database forget what was deleted when people were purged since
/// the snapshot (`then` purged people in it): those purges' rewrites of the
/// key table had to keep the old row versions the snapshot could see.
async fn forget_purged_since(live: &PgStore, then: u64) -> anyhow::Result<()> {
    let now = live
        .count_rows(tombstones()?)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if now > then {
        live.forget_deleted()
            .await
            .map_err(|e| anyhow::anyhow!("forgetting what a purge deleted: {e}"))?;
    }
    Ok(())
}

/// The rows copied, when every table came through cell for cell.
fn faithful(tables: &[TableReport]) -> anyhow::Result<u64> {
    if let Some(t) = tables.iter().find(|t| !t.is_identical()) {
        anyhow::bail!(
            "the copy of the table {} differs from the snapshot ({} rows read, {} written)",
            t.name,
            t.source_rows,
            t.destination_rows
        );
    }
    Ok(tables.iter().map(|t| t.destination_rows).sum())
}
