//! `mamori backup create` and `mamori backup restore --verify`.
//!
//! A backup file is a consistent snapshot of the database without any
//! person's data key (see `mamori_store::SqliteStore::snapshot_for_backup`),
//! encrypted as a whole: a random file key encrypts it (AES-256-GCM in the
//! STREAM construction, `mamori_crypto::stream`) and is stored in the
//! header wrapped by the master key (`KeyProvider`). Layout:
//!
//! ```text
//! "MAMORI-BACKUP-1\n"  u16 key-id length, key id   u32 wrapped-key length,
//! wrapped key   i64 creation time (Unix s, big-endian)   stream (nonce prefix, chunks)
//! ```
//!
//! Everything before the stream is bound to every chunk as associated data.
//! The header does not say which backend the snapshot came from: on
//! PostgreSQL (`postgres.rs`) the database is first copied, from one
//! snapshot, into a SQLite database, so every backup holds a SQLite
//! database, and `Created` (what `backup create` prints) names the source.

mod postgres;

pub use postgres::{create_from_snapshot, create_on_postgres};

use anyhow::{bail, Context};
use mamori_core::people::Readability;
use mamori_core::Services;
use mamori_domain::PersonId;
use mamori_ports::PeopleStore;
use mamori_store::{LiveDataKey, SqliteStore};
use serde::Serialize;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use zeroize::Zeroizing;

const MAGIC: &[u8] = b"MAMORI-BACKUP-1\n";
const FILE_KEY_AAD: &[u8] = b"mamori/backup-file-key/v1";

/// The database a backup was taken of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The embedded SQLite database, copied whole.
    Sqlite,
    /// PostgreSQL, copied from one snapshot into the SQLite format.
    Postgres,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Sqlite => "SQLite",
            Source::Postgres => "PostgreSQL",
        })
    }
}

/// What `backup create` did.
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    /// The database the backup was taken of.
    pub source: Source,
    /// Rows copied out of PostgreSQL's snapshot (0 from SQLite, whose file
    /// is copied whole).
    pub rows: u64,
    /// Bytes of the database snapshot.
    pub snapshot_bytes: u64,
    /// Bytes of the backup file.
    pub file_bytes: u64,
    /// Master key that wraps the file key.
    pub key_id: String,
}

/// What `backup restore --verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    /// When the backup was made (Unix seconds).
    pub created_at: i64,
    /// Schema version of the snapshot.
    pub schema_version: i64,
    /// Devices in it.
    pub devices: u64,
    /// Administrator accounts in it.
    pub admins: u64,
    /// Audit records in it.
    pub audit_records: u64,
    /// Data keys in it (always 0: backups carry none).
    pub data_keys: u64,
    /// People in it.
    pub people: usize,
    /// Of those, readable with today's data keys.
    pub readable: usize,
    /// Purged since the backup: unreadable for good.
    pub purged: usize,
    /// Unknown to the live directory: unreadable.
    pub no_key: usize,
    /// A live key that does not open the backup's fields.
    pub mismatch: usize,
}

fn header(key_id: &str, wrapped: &[u8], created_at: i64) -> anyhow::Result<Vec<u8>> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&u16::try_from(key_id.len())?.to_be_bytes());
    h.extend_from_slice(key_id.as_bytes());
    h.extend_from_slice(&u32::try_from(wrapped.len())?.to_be_bytes());
    h.extend_from_slice(wrapped);
    h.extend_from_slice(&created_at.to_be_bytes());
    Ok(h)
}

fn read_exact(r: &mut impl Read, n: usize, what: &str) -> anyhow::Result<Vec<u8>> {
    let mut b = vec![0u8; n];
    r.read_exact(&mut b)
        .with_context(|| format!("not a Mamori backup (truncated {what})"))?;
    Ok(b)
}

/// Parses the header; returns (key id, wrapped key, creation time, the
/// header bytes).
fn read_header(r: &mut impl Read) -> anyhow::Result<(String, Vec<u8>, i64, Vec<u8>)> {
    let magic = read_exact(r, MAGIC.len(), "header")?;
    if magic != MAGIC {
        bail!("not a Mamori backup file");
    }
    let n = u16::from_be_bytes(
        read_exact(r, 2, "header")?
            .try_into()
            .map_err(|_| anyhow::anyhow!("header"))?,
    );
    anyhow::ensure!(n <= 256, "not a Mamori backup (bad key id)");
    let key_id = String::from_utf8(read_exact(r, usize::from(n), "key id")?)
        .context("not a Mamori backup (bad key id)")?;
    let n = u32::from_be_bytes(
        read_exact(r, 4, "header")?
            .try_into()
            .map_err(|_| anyhow::anyhow!("header"))?,
    );
    anyhow::ensure!(n <= 4096, "not a Mamori backup (bad wrapped key)");
    let wrapped = read_exact(r, usize::try_from(n)?, "wrapped key")?;
    let created = i64::from_be_bytes(
        read_exact(r, 8, "header")?
            .try_into()
            .map_err(|_| anyhow::anyhow!("header"))?,
    );
    let h = header(&key_id, &wrapped, created)?;
    Ok((key_id, wrapped, created, h))
}

#[cfg(unix)]
fn private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Writes an encrypted backup of the data directory's database to `file`
/// (consistent while the server runs; `file` must not exist).
pub async fn create(
    services: &Services,
    store: &SqliteStore,
    data_dir: &Path,
    file: &Path,
) -> anyhow::Result<Created> {
    anyhow::ensure!(
        !file.exists(),
        "{} exists; choose a new file",
        file.display()
    );
    let scratch = tempfile::tempdir_in(data_dir).context("cannot make a scratch directory")?;
    let snapshot = scratch.path().join("snapshot.db");
    store
        .snapshot_for_backup(&snapshot)
        .await
        .map_err(|e| anyhow::anyhow!("snapshot failed: {e}"))?;
    let file_key = Zeroizing::new(mamori_crypto::try_random_bytes(32)?);
    let (key_id, wrapped) = services
        .vault
        .wrap(&file_key, FILE_KEY_AAD)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let created = services.clock.now().unix_timestamp();
    let h = header(&key_id, &wrapped, created)?;
    let key: [u8; 32] = file_key
        .as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("file key"))?;
    let key = Zeroizing::new(key);
    let tmp = file.with_extension("partial");
    let _ = std::fs::remove_file(&tmp);
    let out = private_file(&tmp)?;
    let result = (|| -> anyhow::Result<u64> {
        let mut w = BufWriter::new(out);
        w.write_all(&h)?;
        let mut r = BufReader::new(std::fs::File::open(&snapshot)?);
        let n = mamori_crypto::stream::encrypt_stream(&key, &h, &mut r, &mut w)?;
        let f = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
        f.sync_all()?;
        Ok(n)
    })();
    let snapshot_bytes = match result {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.context("cannot write the backup"));
        }
    };
    std::fs::rename(&tmp, file).with_context(|| format!("cannot create {}", file.display()))?;
    let file_bytes = std::fs::metadata(file)?.len();
    tracing::info!(file = %file.display(), bytes = file_bytes, "backup written");
    Ok(Created {
        source: Source::Sqlite,
        rows: 0,
        snapshot_bytes,
        file_bytes,
        key_id,
    })
}

/// Decrypts backup `file` into `dest` (created readable by the owner
/// only); returns when the backup was made.
fn decrypt_into(services: &Services, file: &Path, dest: &Path) -> anyhow::Result<i64> {
    let mut r = BufReader::new(
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
    );
    let (key_id, wrapped, created_at, h) = read_header(&mut r)?;
    if !services.vault.has(&key_id) {
        bail!("this backup's key is wrapped by master key {key_id}, which is not loaded");
    }
    let file_key = services
        .vault
        .unwrap(&key_id, &wrapped, FILE_KEY_AAD)
        .map_err(|_| anyhow::anyhow!("the backup's key does not open: the header was altered"))?;
    let key: [u8; 32] = file_key
        .as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("the backup's key has the wrong length"))?;
    let key = Zeroizing::new(key);
    let mut w = BufWriter::new(private_file(dest)?);
    mamori_crypto::stream::decrypt_stream(&key, &h, &mut r, &mut w).map_err(|_| {
        anyhow::anyhow!("the backup is damaged or was altered (a chunk does not authenticate)")
    })?;
    w.flush()?;
    Ok(created_at)
}

/// Restores `file` into a scratch directory (removed afterwards), checks
/// its integrity and schema, and checks which people in it are readable
/// with the data keys the live directory holds now.
pub async fn verify(services: &Services, data_dir: &Path, file: &Path) -> anyhow::Result<Verified> {
    Ok(check(services, data_dir, file).await?.0)
}

/// As [`verify`], handing back the scratch directory with the checked
/// database (`restored.db`) in it, and the people the backup holds.
async fn check(
    services: &Services,
    data_dir: &Path,
    file: &Path,
) -> anyhow::Result<(Verified, tempfile::TempDir, Vec<PersonId>)> {
    let scratch = tempfile::tempdir_in(data_dir).context("cannot make a scratch directory")?;
    let restored = scratch.path().join("restored.db");
    let created_at = decrypt_into(services, file, &restored)?;
    let path = restored.clone();
    let summary = tokio::task::spawn_blocking(move || mamori_store::read_snapshot(&path))
        .await?
        .map_err(|e| anyhow::anyhow!("the restored database does not open: {e}"))?;
    anyhow::ensure!(
        summary.integrity == "ok",
        "the restored database fails its integrity check: {}",
        summary.integrity
    );
    anyhow::ensure!(
        summary.schema_version <= mamori_store::schema_version(),
        "the backup comes from a newer Mamori (schema {})",
        summary.schema_version
    );
    let mut v = Verified {
        created_at,
        schema_version: summary.schema_version,
        devices: summary.devices,
        admins: summary.admins,
        audit_records: summary.audit_records,
        data_keys: summary.data_keys,
        people: summary.people.len(),
        readable: 0,
        purged: 0,
        no_key: 0,
        mismatch: 0,
    };
    for (id, sealed) in &summary.people {
        match services
            .backup_readability(id, sealed)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
        {
            Readability::Readable => v.readable += 1,
            Readability::Purged => v.purged += 1,
            Readability::NoKey => v.no_key += 1,
            Readability::Mismatch => v.mismatch += 1,
        }
    }
    let people = summary.people.into_iter().map(|(id, _)| id).collect();
    Ok((v, scratch, people))
}

/// What `backup restore --into` did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    /// The new data directory.
    pub into: std::path::PathBuf,
    /// People restored and readable (their data keys came from the live
    /// database).
    pub people: u64,
    /// People removed: purged since the backup (or unknown), unreadable.
    pub removed: u64,
    /// Key and certificate files copied from the live data directory.
    pub files_copied: usize,
}

/// Restores `file` into a new data directory `into` (absent or empty): the
/// database from the backup (SQLite, whatever the live backend), the key
/// and certificate files from the live data directory, and the people's
/// data keys from the live database, read through the services' ports —
/// people purged since the backup stay gone. Start a server on `into` to
/// use it (or move it to PostgreSQL with `mamori migrate`).
pub async fn restore_into(
    services: &Services,
    data_dir: &Path,
    file: &Path,
    into: &Path,
) -> anyhow::Result<Restored> {
    let (checked, scratch, restored) = check(services, data_dir, file).await?;
    anyhow::ensure!(
        !into.exists() || std::fs::read_dir(into)?.next().is_none(),
        "{} is not empty; restore into a new directory",
        into.display()
    );
    crate::keys::ensure_dir(into)?;
    let mut files_copied = 0;
    for entry in std::fs::read_dir(data_dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let wanted =
            (name.ends_with(".key") || name.ends_with(".pem")) && entry.file_type()?.is_file();
        if wanted {
            let to = into.join(&name);
            std::fs::copy(entry.path(), &to).with_context(|| format!("cannot copy {name}"))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(entry.path())?.permissions().mode() & 0o777;
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))?;
            }
            files_copied += 1;
        }
    }
    let db = crate::app::db_path(into);
    // The database just checked (owner-only, like its scratch copy).
    std::fs::copy(scratch.path().join("restored.db"), &db)
        .context("cannot write the restored database")?;
    drop(scratch);
    // Bring the schema up to date, then give people their live keys.
    let store = SqliteStore::open(&db)
        .await
        .map_err(|e| anyhow::anyhow!("the restored database does not open: {e}"))?;
    store.close().await;
    let live = live_data_keys(&*services.store, restored)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the live data keys: {e}"))?;
    let (people, removed) =
        tokio::task::spawn_blocking(move || mamori_store::adopt_data_keys(&db, &live))
            .await?
            .map_err(|e| anyhow::anyhow!("cannot attach the live data keys: {e}"))?;
    tracing::info!(into = %into.display(), people, removed, devices = checked.devices, "backup restored");
    Ok(Restored {
        into: into.to_path_buf(),
        people,
        removed,
        files_copied,
    })
}

/// The data keys the live directory holds for `people` (those it holds no
/// key for are left out), read a page of people at a time.
async fn live_data_keys(
    live: &dyn PeopleStore,
    people: Vec<PersonId>,
) -> mamori_ports::StoreResult<Vec<LiveDataKey>> {
    let wanted: std::collections::HashSet<PersonId> = people.into_iter().collect();
    let mut keys = Vec::new();
    let mut after: Option<PersonId> = None;
    loop {
        let page = live.list_people(after.as_ref(), 1000).await?;
        let Some(last) = page.last() else {
            return Ok(keys);
        };
        after = Some(last.id.clone());
        for p in page {
            if wanted.contains(&p.id) {
                keys.push((p.id, p.key_id, p.wrapped_key));
            }
        }
    }
}
