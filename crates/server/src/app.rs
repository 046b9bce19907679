//! Wiring: open the store, load keys, build the services, start both
//! listeners. Used by `mamori serve` and by the integration tests.

mod database;
pub mod leases;
mod start;
mod tasks;

pub use database::Db;

pub use start::start;
pub use tasks::{JOBS, KEY_POLL, RECONCILE_BATCH};

use crate::config::Config;
use crate::keys;
use anyhow::Context;
use mamori_core::{CoreConfig, Services};
use mamori_ports::{Clock, Pusher, Store, SystemClock};
use mamori_store::SqliteStore;
use rustls_pki_types::CertificateDer;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// A running server.
pub struct Running {
    /// Where the device listener is bound.
    pub device_addr: SocketAddr,
    /// Where the admin listener is bound.
    pub admin_addr: SocketAddr,
    /// The services (tests reach into the store through them).
    pub services: Services,
    /// SHA-256 fingerprint of the device CA.
    pub ca_fingerprint: String,
    /// The TLS CA written to the data directory, when self-generated.
    pub tls_ca_path: Option<PathBuf>,
    /// The public URL devices are told to use.
    pub public_url: String,
    listeners: Vec<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
    leases: leases::Leases,
    stop: tokio::sync::watch::Sender<bool>,
    store: Db,
    _lock: std::fs::File,
}

impl Running {
    /// This server's holder identity in the jobs' leases.
    pub fn job_holder(&self) -> &str {
        self.leases.holder()
    }

    /// Stops both listeners and every background task at once (the jobs'
    /// leases are not released: they run out).
    pub fn shutdown(self) {
        self.leases.abort();
        for t in self.listeners.into_iter().chain(self.tasks) {
            t.abort();
        }
    }

    /// Stops gracefully: the leased jobs stop and their leases are
    /// released (another server takes them over at once), both listeners
    /// stop accepting, every connection is asked to close once its
    /// requests in flight are answered (each has its listener's close
    /// grace, 10 s), and after at most `bound` the other background tasks
    /// stop and the database is closed, which checkpoints the WAL into
    /// `mamori.db`.
    pub async fn stop(mut self, bound: std::time::Duration) {
        let _ = self.stop.send(true);
        let holder = self.leases.holder().to_owned();
        self.leases.stop().await;
        let drained = tokio::time::timeout(bound, async {
            for l in &mut self.listeners {
                let _ = l.await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                seconds = bound.as_secs(),
                "connections still open at the end of the shutdown bound; closing them"
            );
        }
        for t in self.listeners.iter().chain(&self.tasks) {
            t.abort();
        }
        // A rotation of the people key no longer waits for this server.
        let _ = self.services.store.withdraw_people_keys(&holder).await;
        self.store.close().await;
    }
}

/// The lock `mamori serve` holds on its data directory while it runs.
pub const LOCK_FILE: &str = "mamori.lock";

/// Takes the data directory's exclusive lock (held until the file is
/// dropped, released by the kernel however the process ends): two servers
/// on one database would each run the hourly jobs, the reconciler and the
/// audit chain as if alone. `mamori migrate` holds it too, so that no
/// server runs while the installation moves.
pub fn lock_data_dir(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::io::Write;
    let path = dir.join(LOCK_FILE);
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another mamori server is already running on the data directory {} (it holds {})",
            dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
    // The holder's process id, for the operator.
    file.set_len(0)?;
    writeln!(file, "{}", std::process::id())?;
    Ok(file)
}

/// The database file inside a data directory.
pub fn db_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("mamori.db")
}

/// Opens the data directory's database (creating it and running migrations).
pub async fn open_store(data_dir: &std::path::Path) -> anyhow::Result<SqliteStore> {
    keys::ensure_dir(data_dir)?;
    let db = db_path(data_dir);
    private_database(&db)?;
    SqliteStore::open(&db)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open database: {e}"))
}

/// The database, its WAL and its shared-memory file are readable by the
/// owner only, like the keys: a new database file is created 0600 before
/// SQLite opens it (SQLite gives `-wal` and `-shm` the database file's
/// mode), and files of an older installation are narrowed to 0600.
#[cfg(unix)]
fn private_database(db: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(db)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", db.display())),
    }
    let mut files = vec![db.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    for f in files {
        if let Ok(m) = std::fs::metadata(&f) {
            if m.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("cannot set permissions on {}", f.display()))?;
            }
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn private_database(_: &std::path::Path) -> anyhow::Result<()> {
    Ok(())
}

fn public_host(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or("");
    if let Some(end) = authority.strip_prefix('[').and_then(|a| a.split_once(']')) {
        return end.0.to_owned();
    }
    authority.split(':').next().unwrap_or("").to_owned()
}

/// `https://localhost:PORT` for a wildcard bind, else the bound address.
fn default_public_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("https://localhost:{}", addr.port())
    } else {
        format!("https://{addr}")
    }
}

/// Builds the services on a data directory (no listeners).
/// `manage_tls` is false for CLI commands, which must not reissue the TLS
/// certificate of a running server.
pub async fn build_services(
    config: &Config,
    public_url: &str,
    admin_url: &str,
    pusher: Arc<dyn Pusher>,
    manage_tls: bool,
) -> anyhow::Result<(Services, keys::TlsMaterial, Keyring)> {
    let (services, tls, keyring, _) =
        build_services_with_store(config, public_url, admin_url, pusher, manage_tls).await?;
    Ok((services, tls, keyring))
}

/// [`build_services`], also handing back the database (to close it).
async fn build_services_with_store(
    config: &Config,
    public_url: &str,
    admin_url: &str,
    pusher: Arc<dyn Pusher>,
    manage_tls: bool,
) -> anyhow::Result<(Services, keys::TlsMaterial, Keyring, Db)> {
    keys::ensure_dir(&config.data_dir)?;
    let host = public_host(public_url);
    let (pki, tls) = keys::bootstrap(
        &config.data_dir,
        manage_tls.then_some(host.as_str()),
        config.tls.as_ref(),
    )?;
    let db = Db::open(config).await?;
    let store: Arc<dyn Store> = db.store();
    let holds_personal_data = store
        .secret(mamori_core::people::INDEX_KEY)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .is_some();
    let (people_keys, source) = keys::load_people_keys(&config.data_dir, holds_personal_data)?;
    let ring = Arc::new(
        mamori_core::people::vault::LocalKeyring::new(&people_keys)
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let core = core_config(config, public_url, admin_url)?;
    let auth = Arc::new(mamori_core::admin::AuthState::new(
        admin_url,
        &config.organization,
    ));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // The services are wired over the concrete backend (each context
    // sees it through its own ports).
    macro_rules! wired {
        ($store:expr) => {
            Services::new(mamori_core::Parts {
                store: Arc::new($store.clone()),
                pki: Arc::new(pki),
                config: Arc::new(core),
                pusher,
                clock,
                auth,
                vault: Arc::clone(&ring) as Arc<dyn mamori_core::people::vault::KeyProvider>,
            })
        };
    }
    let services = match &db {
        Db::Sqlite(s) => wired!(s),
        Db::Postgres(s) => wired!(s),
    };
    services.check_master_key().await.map_err(|e| match e {
        // At start-up the operator needs the cause itself.
        mamori_core::CoreError::Internal(cause) => anyhow::anyhow!(cause),
        other => anyhow::anyhow!("{other}"),
    })?;
    // The device CA, SCEP RA and audit key every server on the database
    // shares.
    services
        .check_installation_keys()
        .await
        .map_err(|e| match e {
            mamori_core::CoreError::Internal(cause) => anyhow::anyhow!(cause),
            other => anyhow::anyhow!("{other}"),
        })?;
    // The CSRF key every server on the database shares.
    services.load_auth_keys().await.map_err(|e| match e {
        mamori_core::CoreError::Internal(cause) => anyhow::anyhow!(cause),
        other => anyhow::anyhow!("{other}"),
    })?;
    // New data keys are wrapped with the people key the database names.
    keys::ring::follow_choice(&*services.store, &ring).await?;
    Ok((services, tls, Keyring { ring, source }, db))
}

/// The services' settings from the server's configuration.
fn core_config(config: &Config, public_url: &str, admin_url: &str) -> anyhow::Result<CoreConfig> {
    Ok(CoreConfig {
        public_url: public_url.to_owned(),
        push_topic: config
            .push_topic
            .clone()
            .unwrap_or_else(|| CoreConfig::default().push_topic),
        organization: config.organization.clone(),
        time_zone: config.time_zone.clone(),
        allow_single_des: config.allow_single_des,
        device_cert_days: config.device_cert_days,
        token_ttl_days: 90,
        auth: mamori_core::admin::AuthPolicy {
            admin_url: admin_url.to_owned(),
            ..config.auth.clone()
        },
        people_retention_days: config.people_retention_days,
        offboard_action: config.offboard_action,
        detection: mamori_core::audit::detect::DetectionPolicy {
            bulk_read_threshold: config.bulk_read_threshold,
            ..Default::default()
        },
        erase_approval_threshold: config.erase_approval_threshold,
        erase_budget_per_day: config.erase_budget_per_day,
        vulnerable_os: Arc::new(vulnerable_os_list(&config.data_dir)?),
        anomaly: config.anomaly.clone(),
        audit_sinks: sink_targets(config)?
            .into_iter()
            .map(|(name, t)| mamori_core::audit::SinkInfo {
                name,
                kind: t.kind().to_owned(),
                target: t.describe(),
            })
            .collect(),
    })
}

/// The vulnerable-OS list: `DATA_DIR/vulnerable-os.json` when the operator
/// put one there (a newer list), else the one shipped with this build.
fn vulnerable_os_list(
    dir: &std::path::Path,
) -> anyhow::Result<mamori_core::fleet::compliance::VulnerableOs> {
    let p = dir.join("vulnerable-os.json");
    if !p.exists() {
        return Ok(mamori_core::fleet::compliance::VulnerableOs::shipped());
    }
    let text =
        std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
    let list = mamori_core::fleet::compliance::VulnerableOs::parse(&text)
        .map_err(|e| anyhow::anyhow!("{} is invalid: {e}", p.display()))?;
    tracing::info!(updated = %list.updated, entries = list.entries.len(), "vulnerable-OS list loaded from the data directory");
    Ok(list)
}

/// The configured audit sinks with their targets (webhook keys loaded or
/// created in the data directory).
fn sink_targets(config: &Config) -> anyhow::Result<Vec<(String, mamori_sinks::Target)>> {
    config
        .audit_sinks
        .iter()
        .map(|spec| {
            let secret = if spec.needs_secret() {
                Some(Arc::new(keys::load_or_create_sink_secret(
                    &config.data_dir,
                    &spec.name,
                )?))
            } else {
                None
            };
            Ok((spec.name.clone(), spec.target(secret)?))
        })
        .collect()
}

/// How audit sinks run (tests shorten the delays).
pub fn sink_options(config: &Config, public_url: &str) -> anyhow::Result<mamori_sinks::RunOptions> {
    let mut extra = Vec::new();
    if let Some(p) = &config.audit_sink_ca {
        let pem =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        for der in keys::pem_certs(&pem)? {
            extra.push(CertificateDer::from(der));
        }
    }
    let host = public_host(public_url);
    Ok(mamori_sinks::RunOptions {
        poll: config.audit_sink_poll,
        batch: 500,
        backoff: config
            .audit_sink_poll
            .min(std::time::Duration::from_secs(1)),
        max_backoff: config.audit_sink_max_backoff.max(config.audit_sink_poll),
        timeout: std::time::Duration::from_secs(10),
        hostname: if host.is_empty() {
            "mamori".into()
        } else {
            host
        },
        roots: Arc::new(mamori_sinks::tls_roots(extra)),
    })
}

/// The people key ring in use and where it came from.
pub struct Keyring {
    /// The keys (shared with the services).
    pub ring: Arc<mamori_core::people::vault::LocalKeyring>,
    /// File or environment.
    pub source: keys::KeySource,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").finish_non_exhaustive()
    }
}
