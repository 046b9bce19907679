//! `mamori backup`: encrypted backups (create; restore or verify).

use super::{offline_services, DataDir};
use clap::Subcommand;
use mamori::app;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum BackupCmd {
    /// Write an encrypted, consistent backup (safe while the server runs;
    /// on PostgreSQL, from one snapshot of the database, in the same
    /// format). It holds no person's data key: restored, personal data
    /// opens only with the keys the live server still has.
    Create {
        #[command(flatten)]
        dir: DataDir,
        /// The backup file to write (must not exist)
        file: PathBuf,
    },
    /// Check a backup (--verify: restored into a scratch location that is
    /// removed: integrity, schema, which people are still readable), or
    /// restore it into a new data directory (--into DIR) with the live
    /// installation's keys; people purged since the backup stay gone. The
    /// restored installation is on SQLite (`mamori migrate` moves it to
    /// PostgreSQL).
    Restore {
        #[command(flatten)]
        dir: DataDir,
        /// The backup file
        file: PathBuf,
        /// Check only
        #[arg(long, conflicts_with = "into", required_unless_present = "into")]
        verify: bool,
        /// Restore into this new (absent or empty) data directory
        #[arg(long)]
        into: Option<PathBuf>,
    },
}

/// Runs one `mamori backup` command.
pub async fn run(cmd: BackupCmd) -> anyhow::Result<()> {
    match cmd {
        BackupCmd::Create { dir, file } => create(&dir, &file).await?,
        BackupCmd::Restore {
            dir,
            file,
            into: Some(into),
            ..
        } => {
            let config = super::offline_config(&dir.data_dir, None)?;
            let s = offline_services(&dir.data_dir, None).await?;
            let r = mamori::backup::restore_into(&s, &dir.data_dir, &file, &into).await?;
            println!(
                "backup {} restored into {}: {} people readable, {} purged since (removed), {} key and certificate files copied",
                file.display(),
                r.into.display(),
                r.people,
                r.removed,
                r.files_copied
            );
            if let mamori::config::Database::Postgres(_) = config.database {
                println!(
                    "The restored installation is on SQLite. Move it into a new, empty PostgreSQL \
                     database with: MAMORI_DATABASE_URL=<new database> mamori migrate --from \
                     sqlite:{0}; then serve it with: MAMORI_DATABASE_URL=<new database> mamori \
                     serve --data-dir {0}",
                    r.into.display()
                );
            } else {
                println!(
                    "Start it with: mamori serve --data-dir {}",
                    r.into.display()
                );
            }
        }
        BackupCmd::Restore { dir, file, .. } => {
            let s = offline_services(&dir.data_dir, None).await?;
            let v = mamori::backup::verify(&s, &dir.data_dir, &file).await?;
            println!(
                "backup {} verified: integrity ok, schema {}",
                file.display(),
                v.schema_version
            );
            println!(
                "  devices {}, administrators {}, audit records {}",
                v.devices, v.admins, v.audit_records
            );
            println!(
                "  people {}: readable with today's keys {}, purged since (unreadable) {}, unknown (unreadable) {}, key mismatch {}",
                v.people, v.readable, v.purged, v.no_key, v.mismatch
            );
        }
    }
    Ok(())
}

/// `mamori backup create`, on whichever database the installation is.
async fn create(dir: &DataDir, file: &std::path::Path) -> anyhow::Result<()> {
    let config = super::offline_config(&dir.data_dir, None)?;
    let s = offline_services(&dir.data_dir, None).await?;
    let db = app::Db::open(&config).await?;
    let created = match &db {
        app::Db::Postgres(pg) => {
            mamori::backup::create_on_postgres(&s, pg, &dir.data_dir, file).await
        }
        app::Db::Sqlite(store) => mamori::backup::create(&s, store, &dir.data_dir, file).await,
    };
    db.close().await;
    let c = created?;
    println!(
        "backup of {} written to {} ({} bytes; database snapshot {} bytes, no data keys; file key wrapped by master key {})",
        config.database.describe(),
        file.display(),
        c.file_bytes,
        c.snapshot_bytes,
        c.key_id
    );
    if c.source == mamori::backup::Source::Postgres {
        println!(
            "  {} rows read from one snapshot of PostgreSQL, stored in the SQLite format",
            c.rows
        );
    }
    Ok(())
}
