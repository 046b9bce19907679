//! `mamori migrate`: moves an installation from the embedded SQLite
//! database to PostgreSQL while no server runs. Every table is copied
//! through the backends' copy port (`mamori_ports::CopyStore`) in one
//! PostgreSQL transaction, cell for cell (sealed data stays sealed, byte
//! for byte); then each table's rows are counted and compared on both
//! sides, and the destination is opened with the ordinary services, which
//! check the master key against it and verify the audit chain. The keys
//! stay in the data directory: afterwards `MAMORI_DATABASE_URL=… mamori
//! serve --data-dir` the same directory runs on PostgreSQL.

mod copy;

pub use copy::{Fingerprint, TableReport};

use crate::app;
use crate::config::{Config, Database, ServeArgs};
use anyhow::Context;
use mamori_ports::{CopyStore, COPY_TABLES};
use mamori_store_pg::PgStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a migration did and found.
#[derive(Debug)]
pub struct Report {
    /// The data directory moved (its keys stay there).
    pub data_dir: PathBuf,
    /// Where it went, without credentials.
    pub destination: String,
    /// Each table, in the order copied.
    pub tables: Vec<TableReport>,
    /// The audit chain, verified on the destination.
    pub audit: mamori_core::audit::Verification,
}

impl Report {
    /// Whether the destination holds exactly what the source held and its
    /// audit chain verifies.
    pub fn is_faithful(&self) -> bool {
        self.tables.iter().all(TableReport::is_identical) && self.audit.fault.is_none()
    }
}

/// The data directory `--from` names: `sqlite:DIR` (the data directory)
/// or `sqlite:DIR/mamori.db`.
pub fn source_dir(from: &str) -> anyhow::Result<PathBuf> {
    let Some(path) = from.strip_prefix("sqlite:").filter(|p| !p.is_empty()) else {
        anyhow::bail!(
            "--from must be sqlite:PATH, PATH the data directory of the installation \
             (or its mamori.db)"
        );
    };
    let path = PathBuf::from(path);
    let dir = if path.is_dir() {
        path
    } else if path.file_name().is_some_and(|n| n == "mamori.db") && path.is_file() {
        path.parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."))
    } else {
        anyhow::bail!(
            "{} is not a data directory nor its mamori.db",
            path.display()
        );
    };
    require_installation(&dir)?;
    Ok(dir)
}

/// Refuses a directory without an installation on SQLite (nothing is
/// created in it).
fn require_installation(dir: &Path) -> anyhow::Result<()> {
    if !app::db_path(dir).is_file() || !dir.join("device-ca.pem").is_file() {
        anyhow::bail!(
            "no Mamori installation on SQLite at {} (it needs mamori.db and the keys, device-ca.pem \
             among them)",
            dir.display()
        );
    }
    Ok(())
}

/// Moves the installation in `data_dir` (see [`source_dir`]) into the
/// empty PostgreSQL database at `url`, then checks it. Refused, with
/// nothing written, while a server runs on the data directory, when the
/// destination already holds rows, or when the two schemas differ.
pub async fn migrate(data_dir: &Path, url: &str) -> anyhow::Result<Report> {
    let database = Database::parse(Some(url.to_owned()))?;
    let Database::Postgres(_) = &database else {
        anyhow::bail!("the destination must be a postgres:// URL");
    };
    let destination = database.describe();
    require_installation(data_dir)?;
    let _lock = app::lock_data_dir(data_dir).context(
        "mamori migrate moves the installation while no server runs: stop the server first",
    )?;
    let source = app::open_store(data_dir).await?;
    let target = PgStore::connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open {destination}: {e}"))?;
    let copied = copy_checked(&source, "the SQLite database", &target, &destination).await;
    source.close().await;
    target.close();
    let tables = copied?;
    let audit = verify_destination(data_dir, url).await?;
    Ok(Report {
        data_dir: data_dir.to_path_buf(),
        destination,
        tables,
        audit,
    })
}

/// The schemas compared, the destination found empty, every table copied
/// and compared (also how `backup create` copies PostgreSQL into SQLite).
pub(crate) async fn copy_checked(
    source: &dyn CopyStore,
    source_name: &str,
    target: &dyn CopyStore,
    destination: &str,
) -> anyhow::Result<Vec<TableReport>> {
    for (side, store) in [(source_name, source), (destination, target)] {
        let tables = store
            .schema_tables()
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        let unknown: Vec<&String> = tables
            .iter()
            .filter(|t| !COPY_TABLES.iter().any(|c| c.name == t.as_str()))
            .collect();
        let missing: Vec<&str> = COPY_TABLES
            .iter()
            .map(|c| c.name)
            .filter(|c| !tables.iter().any(|t| t == c))
            .collect();
        if !unknown.is_empty() || !missing.is_empty() {
            anyhow::bail!(
                "{side} has tables this build does not copy ({unknown:?}) or lacks some \
                 ({missing:?}): migrate with the build that made it"
            );
        }
    }
    for table in COPY_TABLES {
        let rows = target
            .count_rows(*table)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        if rows > 0 {
            anyhow::bail!("{}", not_empty(destination, table.name));
        }
    }
    copy::copy_all(source, target, destination).await
}

/// The refusal of a destination that already holds rows.
fn not_empty(destination: &str, table: &str) -> String {
    format!(
        "{destination} is not empty (its table {table} has rows): mamori migrate copies only \
         into an empty database, so that nothing is copied twice or mixed with other data"
    )
}

/// Opens the destination with the ordinary services over the data
/// directory's keys (which checks the master key against its sealed
/// secrets) and verifies the audit chain.
async fn verify_destination(
    data_dir: &Path,
    url: &str,
) -> anyhow::Result<mamori_core::audit::Verification> {
    let config = Config::resolve(&ServeArgs {
        data_dir: Some(data_dir.to_path_buf()),
        database_url: Some(url.to_owned()),
        ..ServeArgs::from_env()?
    })?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| "https://localhost:8443".into());
    let admin_url = config
        .admin_url
        .clone()
        .unwrap_or_else(|| format!("https://localhost:{}", config.admin_addr.port()));
    let pusher = Arc::new(mamori_push::ApnsPusher::new(&config.apns_url, Vec::new())?);
    let (services, _, _) =
        app::build_services(&config, &public_url, &admin_url, pusher, false).await?;
    services
        .verify_audit()
        .await
        .map_err(|e| anyhow::anyhow!("verifying the audit chain on the destination: {e}"))
}
