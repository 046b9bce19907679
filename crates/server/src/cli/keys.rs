//! `mamori keys`: the keys that protect personal data (rotation).

use super::{offline_services_with_ring, DataDir};
use clap::Subcommand;
use mamori::keys::{KeySource, RingAt};

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Rotate the people key (people.key) without downtime: a new key is
    /// prepared, made current once every running server has loaded it,
    /// every data key is re-wrapped under it, and the old one moves to a
    /// retired-keys file (backups made before the rotation need it). With
    /// several servers on one database, run it with --prepare first, copy
    /// people.key to every server's data directory, then run it again.
    Rotate {
        #[command(flatten)]
        dir: DataDir,
        /// Only prepare the new key (add it to people.key and the
        /// database), to copy people.key to the other servers before the
        /// rotation
        #[arg(long)]
        prepare: bool,
        /// With MAMORI_PEOPLE_KEY: the ID of the new key, already added to
        /// the variable on every server
        #[arg(long, value_name = "KEY_ID")]
        next: Option<String>,
        /// Seconds to wait at most for the running servers to load the
        /// new key, and then to wrap with it
        #[arg(long, default_value_t = 10)]
        settle_secs: u64,
    },
}

/// Runs one `mamori keys` command.
pub async fn run(cmd: KeysCmd) -> anyhow::Result<()> {
    let KeysCmd::Rotate {
        dir,
        prepare,
        next,
        settle_secs,
    } = cmd;
    let (s, ring) = offline_services_with_ring(&dir.data_dir, None).await?;
    let at = RingAt {
        ring: &ring.ring,
        source: ring.source,
        dir: &dir.data_dir,
    };
    let key_file = dir.data_dir.join(mamori::keys::PEOPLE_KEY_FILE);
    anyhow::ensure!(
        next.is_none() || ring.source == KeySource::Environment,
        "--next names a key of MAMORI_PEOPLE_KEY; with {} the rotation makes the new key itself",
        key_file.display()
    );
    if prepare {
        anyhow::ensure!(
            ring.source == KeySource::File,
            "the people keys come from MAMORI_PEOPLE_KEY: add the new key to it on every server \
             instead, then run `mamori keys rotate --next <its ID>`"
        );
        let p = mamori::keys::prepare_people_key(&s, at).await?;
        println!("people key {} prepared in {}", p.next, key_file.display());
        if p.lacking.is_empty() {
            println!("Every running server has loaded it. Run `mamori keys rotate` to finish.");
        } else {
            println!(
                "Copy {} to the data directory of every other server on this database (not yet \
                 loaded by: {}), then run `mamori keys rotate`.",
                key_file.display(),
                p.lacking.join(", ")
            );
        }
        return Ok(());
    }
    let r = mamori::keys::rotate_people_key(
        &s,
        at,
        next.as_deref(),
        std::time::Duration::from_secs(settle_secs),
    )
    .await?;
    println!(
        "people key rotated: current {}, retired {}; {} data keys re-wrapped",
        r.current,
        if r.retired.is_empty() {
            "none".to_owned()
        } else {
            r.retired.join(",")
        },
        r.rewrapped
    );
    match (&r.retired_file, ring.source) {
        (Some(f), _) => println!(
            "The retired key is in {} (mode 0600): backups made before now need it. Archive it \
             offline, or delete it to make those backups unreadable.",
            f.display()
        ),
        (None, KeySource::Environment) if !r.retired.is_empty() => println!(
            "Remove {} from MAMORI_PEOPLE_KEY on every server (keep a copy offline for backups \
             made before now).",
            r.retired.join(",")
        ),
        _ => {}
    }
    if ring.source == KeySource::File && !r.servers.is_empty() {
        println!(
            "Copy {} to the data directory of every other server on this database ({}): their \
             copies still hold the retired key, which no longer wraps anything.",
            key_file.display(),
            r.servers.join(", ")
        );
    }
    Ok(())
}
