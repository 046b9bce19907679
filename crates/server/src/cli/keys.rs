//! `mamori keys`: the keys that protect personal data (rotation).

use super::{offline_services_with_ring, DataDir};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Rotate the people key (people.key) without downtime: every data key
    /// is re-wrapped under a new key; the old one moves to a retired-keys
    /// file (backups made before the rotation need it).
    Rotate {
        #[command(flatten)]
        dir: DataDir,
        /// Seconds to wait for running servers to load the new key
        #[arg(long, default_value_t = 6)]
        settle_secs: u64,
    },
}

/// Runs one `mamori keys` command.
pub async fn run(cmd: KeysCmd) -> anyhow::Result<()> {
    let KeysCmd::Rotate { dir, settle_secs } = cmd;
    let (s, ring) = offline_services_with_ring(&dir.data_dir, None).await?;
    anyhow::ensure!(
        ring.source == mamori::keys::KeySource::File,
        "the people key comes from MAMORI_PEOPLE_KEY: rotate it there (new key first, then the old one, comma-separated), re-run with both, then drop the old one"
    );
    let r = mamori::keys::rotate_people_key(
        &s,
        &ring.ring,
        &dir.data_dir,
        std::time::Duration::from_secs(settle_secs),
    )
    .await?;
    println!(
        "people key rotated: current {}, retired {}; {} data keys re-wrapped",
        r.current,
        r.retired.join(","),
        r.rewrapped
    );
    println!(
        "The retired key is in {} (mode 0600): backups made before now need it. Archive it offline, or delete it to make those backups unreadable.",
        r.retired_file.display()
    );
    Ok(())
}
