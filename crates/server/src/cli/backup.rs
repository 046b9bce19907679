//! `mamori backup`: encrypted backups (create; restore or verify).

use super::{offline_services, DataDir};
use clap::Subcommand;
use mamori::app;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum BackupCmd {
    /// Write an encrypted, consistent backup (safe while the server runs).
    /// It holds no person's data key: restored, personal data opens only
    /// with the keys the live server still has.
    Create {
        #[command(flatten)]
        dir: DataDir,
        /// The backup file to write (must not exist)
        file: PathBuf,
    },
    /// Check a backup (--verify: restored into a scratch location that is
    /// removed: integrity, schema, which people are still readable), or
    /// restore it into a new data directory (--into DIR) with the live
    /// installation's keys; people purged since the backup stay gone.
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
        BackupCmd::Create { dir, file } => {
            let config = super::offline_config(&dir.data_dir, None)?;
            if let mamori::config::Database::Postgres(_) = config.database {
                anyhow::bail!(
                    "`mamori backup create` copies the embedded SQLite database; this \
                     installation is on {}: back the database up with pg_dump and the data \
                     directory's keys with your file backups",
                    config.database.describe()
                );
            }
            let s = offline_services(&dir.data_dir, None).await?;
            let store = app::open_store(&dir.data_dir).await?;
            let c = mamori::backup::create(&s, &store, &dir.data_dir, &file).await?;
            println!(
                "backup written to {} ({} bytes; database snapshot {} bytes, no data keys; file key wrapped by master key {})",
                file.display(),
                c.file_bytes,
                c.snapshot_bytes,
                c.key_id
            );
        }
        BackupCmd::Restore {
            dir,
            file,
            into: Some(into),
            ..
        } => {
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
            println!(
                "Start it with: mamori serve --data-dir {}",
                r.into.display()
            );
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
