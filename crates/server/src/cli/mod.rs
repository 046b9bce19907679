//! The command line's sub-commands, one module per family (`serve`,
//! `admin`, `token`, `people`, `backup`, `keys`, `audit`, `profile`,
//! `push-cert`, `migrate`), and what the administration commands share: the data
//! directory flag, the offline services over it, the local client context.

pub mod admin;
pub mod audit;
pub mod backup;
pub mod keys;
pub mod migrate;
pub mod people;
pub mod profile;
pub mod push_cert;
pub mod serve;
pub mod token;

use mamori::app;
use mamori::config::{Config, ServeArgs};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct DataDir {
    /// Data directory of the server
    #[arg(long, env = "MAMORI_DATA_DIR", default_value = "mamori-data")]
    pub data_dir: PathBuf,
}

pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Administration commands work on an existing installation only: `serve`
/// is the one command that creates one, so that a mistyped `--data-dir`
/// fails instead of showing (or filling) a new, empty database.
///
/// With PostgreSQL the data directory still holds the keys (the device CA
/// among them), so it must hold `device-ca.pem`.
pub fn require_installation(config: &Config) -> anyhow::Result<()> {
    let data_dir = &config.data_dir;
    if let mamori::config::Database::Postgres(_) = config.database {
        if !data_dir.join("device-ca.pem").is_file() {
            anyhow::bail!(
                "no Mamori installation at {} (there is no device-ca.pem): check --data-dir / \
                 MAMORI_DATA_DIR; only `mamori serve` creates a new installation",
                data_dir.display()
            );
        }
        return Ok(());
    }
    if !app::db_path(data_dir).is_file() {
        anyhow::bail!(
            "no Mamori installation at {} (there is no mamori.db): check --data-dir / \
             MAMORI_DATA_DIR; only `mamori serve` creates a new installation",
            data_dir.display()
        );
    }
    Ok(())
}

/// Services and the people key ring over the data directory.
pub async fn offline_services_with_ring(
    data_dir: &std::path::Path,
    public_url: Option<String>,
) -> anyhow::Result<(mamori_core::Services, app::Keyring)> {
    let config = offline_config(data_dir, public_url)?;
    require_installation(&config)?;
    let url = config
        .public_url
        .clone()
        .unwrap_or_else(|| "https://localhost:8443".into());
    let pusher = std::sync::Arc::new(mamori_push::ApnsPusher::new(&config.apns_url, Vec::new())?);
    let admin_url = config
        .admin_url
        .clone()
        .unwrap_or_else(|| format!("https://localhost:{}", config.admin_addr.port()));
    let (s, _, ring) = app::build_services(&config, &url, &admin_url, pusher, false).await?;
    Ok((s, ring))
}

/// The configuration of an administration command: the same layers as
/// `serve` (environment, then the data directory's mamori.toml, then
/// defaults), the command's own flags on top.
pub fn offline_config(
    data_dir: &std::path::Path,
    public_url: Option<String>,
) -> anyhow::Result<Config> {
    let env = ServeArgs::from_env()?;
    Config::resolve(&ServeArgs {
        data_dir: Some(data_dir.to_path_buf()),
        public_url: public_url.or_else(|| env.public_url.clone()),
        ..env
    })
}

/// Services over the data directory for CLI commands (no listeners).
pub async fn offline_services(
    data_dir: &std::path::Path,
    public_url: Option<String>,
) -> anyhow::Result<mamori_core::Services> {
    Ok(offline_services_with_ring(data_dir, public_url).await?.0)
}

pub fn cli_context() -> mamori_core::access::ClientContext {
    mamori_core::access::ClientContext {
        source: "local".into(),
        user_agent: None,
        request_id: None,
    }
}

pub fn fmt_time(t: Option<time::OffsetDateTime>) -> String {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_else(|| "-".into())
}
