//! Configuration: defaults, then a TOML file, then environment variables,
//! then command-line flags (clap reads the `MAMORI_*` variables for each flag).

mod sources;

pub use sources::ServeArgs;

use anyhow::Context;
use sources::{read_file_config, FileConfig};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Where the database is.
    pub database: Database,
    /// Device listener address.
    pub device_addr: SocketAddr,
    /// Admin listener address.
    pub admin_addr: SocketAddr,
    /// Public URL (None: derived from the device listener's port).
    pub public_url: Option<String>,
    /// Operator-supplied TLS certificate and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// APNs base URL.
    pub apns_url: String,
    /// Extra APNs root.
    pub apns_ca: Option<PathBuf>,
    /// Fallback push topic.
    pub push_topic: Option<String>,
    /// Organisation.
    pub organization: String,
    /// The organisation's time zone (IANA name).
    pub time_zone: String,
    /// Accept single DES.
    pub allow_single_des: bool,
    /// Device certificate validity.
    pub device_cert_days: u32,
    /// Log format.
    pub log_format: String,
    /// Admin URL (None: derived from the admin listener's port).
    pub admin_url: Option<String>,
    /// Networks allowed on the admin listener (None: any).
    pub admin_allow: Option<Vec<ipnet::IpNet>>,
    /// Load balancers whose connections start with a PROXY protocol v2
    /// header (None: no connection may carry one).
    pub proxy_protocol_from: Option<Vec<ipnet::IpNet>>,
    /// Administrator authentication policy (admin_url filled in at start).
    pub auth: mamori_core::admin::AuthPolicy,
    /// Days after departure at which a person is purged.
    pub people_retention_days: u32,
    /// What offboarding does to devices.
    pub offboard_action: mamori_core::people::offboard::OffboardAction,
    /// Bulk personal-data read alert threshold (people per minute).
    pub bulk_read_threshold: usize,
    /// Where the audit log is streamed.
    pub audit_sinks: Vec<mamori_sinks::SinkSpec>,
    /// Extra trust anchors for TLS sinks.
    pub audit_sink_ca: Option<PathBuf>,
    /// How often an idle sink looks for new records (1 s; tests shorten it).
    pub audit_sink_poll: std::time::Duration,
    /// Longest retry delay of a failing sink (60 s; tests shorten it).
    pub audit_sink_max_backoff: std::time::Duration,
    /// Audit retention in days (None: forever).
    pub audit_retention_days: Option<u32>,
    /// Erases of more devices than this need a second administrator.
    pub erase_approval_threshold: usize,
    /// Erases queued by everyone without a second administrator in any
    /// 24 hours, at most.
    pub erase_budget_per_day: u64,
    /// Anomaly rules on the audit stream.
    pub anomaly: mamori_core::audit::anomaly::AnomalyPolicy,
    /// How often each device's inventory is refreshed (None: never
    /// automatically).
    pub inventory_refresh: Option<time::Duration>,
    /// How often policy profiles are reconciled (60 s; tests change it).
    pub reconcile_every: std::time::Duration,
    /// Connection caps and timeouts of the device listener.
    pub device_limits: mamori_http::conn::Limits,
    /// Connection caps and timeouts of the admin listener.
    pub admin_limits: mamori_http::conn::Limits,
}

/// Where the database is: the embedded SQLite file in the data directory
/// (the default), or a PostgreSQL server.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// `DATA_DIR/mamori.db`.
    Embedded,
    /// A `postgres://` URL (it may hold a password: never logged).
    Postgres(String),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Embedded => f.write_str("Embedded"),
            Database::Postgres(_) => f.write_str("Postgres(…)"),
        }
    }
}

impl Database {
    /// The setting as given: unset or empty means the embedded database.
    pub fn parse(url: Option<String>) -> anyhow::Result<Self> {
        let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
            return Ok(Database::Embedded);
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Database::Postgres(url))
        } else {
            anyhow::bail!(
                "the database must be a postgres:// URL (MAMORI_DATABASE_URL, --database), \
                 or unset for the embedded SQLite database in the data directory"
            )
        }
    }

    /// For messages: which database, without credentials.
    pub fn describe(&self) -> String {
        match self {
            Database::Embedded => "the embedded SQLite database".into(),
            Database::Postgres(url) => {
                let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
                let rest = rest.split('?').next().unwrap_or(rest);
                format!("PostgreSQL at {rest}")
            }
        }
    }
}

impl Config {
    /// Resolves the layers.
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let default_dir = PathBuf::from("mamori-data");
        let file = file_config(args, &default_dir)?;
        // The checks run in this order, so the first bad setting named is
        // always the same one.
        let (device_limits, admin_limits) = listener_limits(args, &file)?;
        let tls = tls_files(args, &file)?;
        let days = device_cert_days(args, &file)?;
        let auth = auth_policy(args, &file)?;
        let admin_allow = admin_allow(args, &file)?;
        let proxy_protocol_from = proxy_protocol_from(args, &file)?;
        let people = people_settings(args, &file)?;
        let audit = audit_settings(args, &file)?;
        let anomaly = anomaly_policy(args, &file);
        let database = Database::parse(args.database_url.clone().or(file.database_url.clone()))?;
        Ok(Self {
            database,
            device_limits,
            admin_limits,
            reconcile_every: std::time::Duration::from_secs(60),
            inventory_refresh: inventory_refresh(args, &file)?,
            anomaly,
            erase_approval_threshold: audit.erase_approval_threshold as usize,
            erase_budget_per_day: u64::from(audit.erase_budget_per_day),
            audit_retention_days: audit.retention_days,
            audit_sinks: audit.sinks,
            audit_sink_ca: args.audit_sink_ca.clone().or(file.audit_sink_ca),
            audit_sink_poll: std::time::Duration::from_secs(1),
            audit_sink_max_backoff: std::time::Duration::from_secs(60),
            bulk_read_threshold: people.bulk_read_threshold as usize,
            offboard_action: people.offboard_action,
            people_retention_days: people.retention_days,
            admin_url: args.admin_url.clone().or(file.admin_url),
            admin_allow,
            proxy_protocol_from,
            auth,
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or(default_dir),
            device_addr: args
                .device_addr
                .or(file.device_addr)
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 8443))),
            admin_addr: args
                .admin_addr
                .or(file.admin_addr)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8444))),
            public_url: args.public_url.clone().or(file.public_url),
            tls,
            apns_url: args
                .apns_url
                .clone()
                .or(file.apns_url)
                .unwrap_or_else(|| "https://api.push.apple.com".into()),
            apns_ca: args.apns_ca.clone().or(file.apns_ca),
            push_topic: args.push_topic.clone().or(file.push_topic),
            organization: args
                .organization
                .clone()
                .or(file.organization)
                .unwrap_or_else(|| "Mamori".into()),
            time_zone: time_zone(args.time_zone.clone().or(file.time_zone))?,
            allow_single_des: !args
                .disable_single_des
                .or(file.disable_single_des)
                .unwrap_or(false),
            device_cert_days: days,
            log_format: args
                .log_format
                .clone()
                .or(file.log_format)
                .unwrap_or_else(|| "text".into()),
        })
    }
}

/// The operator's TLS certificate and key: both or neither.
fn tls_files(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<Option<(PathBuf, PathBuf)>> {
    match (
        args.tls_cert.clone().or_else(|| file.tls_cert.clone()),
        args.tls_key.clone().or_else(|| file.tls_key.clone()),
    ) {
        (Some(c), Some(k)) => Ok(Some((c, k))),
        (None, None) => Ok(None),
        _ => anyhow::bail!("tls_cert and tls_key must be given together"),
    }
}

/// Validity of device identity certificates, days.
fn device_cert_days(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<u32> {
    let days = args
        .device_cert_days
        .or(file.device_cert_days)
        .unwrap_or(365);
    anyhow::ensure!(
        (1..=3650).contains(&days),
        "device_cert_days must be 1-3650"
    );
    Ok(days)
}

/// The administrator authentication policy: sessions, lockout, stale
/// accounts, the roles that need WebAuthn.
fn auth_policy(
    args: &ServeArgs,
    file: &FileConfig,
) -> anyhow::Result<mamori_core::admin::AuthPolicy> {
    let mut auth = mamori_core::admin::AuthPolicy::default();
    if let Some(m) = args.session_idle_minutes.or(file.session_idle_minutes) {
        anyhow::ensure!(
            (1..=1440).contains(&m),
            "session_idle_minutes must be 1-1440"
        );
        auth.session_idle = time::Duration::minutes(i64::from(m));
    }
    if let Some(h) = args.session_hours.or(file.session_hours) {
        anyhow::ensure!((1..=168).contains(&h), "session_hours must be 1-168");
        auth.session_absolute = time::Duration::hours(i64::from(h));
    }
    if let Some(n) = args.lockout_threshold.or(file.lockout_threshold) {
        anyhow::ensure!((3..=1000).contains(&n), "lockout_threshold must be 3-1000");
        auth.lock_after = n;
    }
    if let Some(d) = args.stale_admin_days.or(file.stale_admin_days) {
        anyhow::ensure!((1..=3650).contains(&d), "stale_admin_days must be 1-3650");
        auth.stale_after_days = d;
    }
    if let Some(b) = args.disable_stale_admins.or(file.disable_stale_admins) {
        auth.disable_stale = b;
    }
    if let Some(list) = args
        .webauthn_roles
        .clone()
        .or_else(|| file.webauthn_roles.clone())
    {
        auth.webauthn_roles = list
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty() && *r != "none")
            .map(|r| {
                mamori_domain::Role::parse(r)
                    .with_context(|| format!("webauthn_roles: unknown role {r:?}"))
            })
            .collect::<anyhow::Result<_>>()?;
    }
    Ok(auth)
}

/// Networks allowed on the admin listener (None: any).
fn admin_allow(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<Option<Vec<ipnet::IpNet>>> {
    let list = args
        .admin_allow
        .clone()
        .or_else(|| file.admin_allow.clone());
    networks("admin_allow", list)
}

/// `proxy_protocol_from`: the load balancers that send PROXY headers.
fn proxy_protocol_from(
    args: &ServeArgs,
    file: &FileConfig,
) -> anyhow::Result<Option<Vec<ipnet::IpNet>>> {
    let list = args
        .proxy_protocol_from
        .clone()
        .or_else(|| file.proxy_protocol_from.clone());
    let nets = networks("proxy_protocol_from", list)?;
    Ok(nets.filter(|n| !n.is_empty()))
}

/// A comma-separated list of networks (CIDR) or addresses.
fn networks(setting: &str, list: Option<String>) -> anyhow::Result<Option<Vec<ipnet::IpNet>>> {
    let Some(list) = list else {
        return Ok(None);
    };
    let nets = list
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| {
            n.parse::<ipnet::IpNet>()
                .or_else(|_| n.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .with_context(|| format!("{setting}: {n:?} is not a network (CIDR) or address"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(nets))
}

/// The TOML file: `--config`, else `DATA_DIR/mamori.toml` if it exists.
fn file_config(args: &ServeArgs, default_dir: &std::path::Path) -> anyhow::Result<FileConfig> {
    let file_path = args.config.clone().or_else(|| {
        let dir = args
            .data_dir
            .clone()
            .unwrap_or_else(|| default_dir.to_path_buf());
        let p = dir.join("mamori.toml");
        p.exists().then_some(p)
    });
    match &file_path {
        Some(p) => read_file_config(p),
        None => Ok(FileConfig::default()),
    }
}

/// `inventory_refresh_hours`: 0 is off, at most 30 days.
fn inventory_refresh(
    args: &ServeArgs,
    file: &FileConfig,
) -> anyhow::Result<Option<time::Duration>> {
    let hours = args
        .inventory_refresh_hours
        .or(file.inventory_refresh_hours)
        .unwrap_or(24);
    anyhow::ensure!(hours <= 720, "inventory_refresh_hours must be 0-720");
    Ok((hours > 0).then(|| time::Duration::hours(i64::from(hours))))
}

/// The people directory's settings.
struct PeopleSettings {
    retention_days: u32,
    offboard_action: mamori_core::people::offboard::OffboardAction,
    bulk_read_threshold: u32,
}

/// Retention of departed people, what offboarding does, the bulk-read
/// threshold.
fn people_settings(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<PeopleSettings> {
    let retention_days = args
        .people_retention_days
        .or(file.people_retention_days)
        .unwrap_or(30);
    anyhow::ensure!(
        retention_days <= 3650,
        "people_retention_days must be 0-3650"
    );
    let offboard_action = match args
        .offboard_action
        .clone()
        .or_else(|| file.offboard_action.clone())
    {
        None => mamori_core::people::offboard::OffboardAction::RemoveManagement,
        Some(a) => {
            mamori_core::people::offboard::OffboardAction::parse(a.trim()).with_context(|| {
                format!("offboard_action must be remove_management or erase, not {a:?}")
            })?
        }
    };
    let bulk_read_threshold = args
        .bulk_read_threshold
        .or(file.bulk_read_threshold)
        .unwrap_or(300);
    anyhow::ensure!(
        (2..=1_000_000).contains(&bulk_read_threshold),
        "bulk_read_threshold must be 2-1000000"
    );
    Ok(PeopleSettings {
        retention_days,
        offboard_action,
        bulk_read_threshold,
    })
}

/// The audit log's settings, and the approval threshold of erases.
struct AuditSettings {
    sinks: Vec<mamori_sinks::SinkSpec>,
    retention_days: Option<u32>,
    erase_approval_threshold: u32,
    erase_budget_per_day: u32,
}

/// Audit sinks and retention, and when an erase needs a second
/// administrator.
fn audit_settings(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<AuditSettings> {
    let sinks = match args
        .audit_sinks
        .clone()
        .or_else(|| file.audit_sinks.clone())
    {
        None => Vec::new(),
        Some(list) => mamori_sinks::SinkSpec::parse_list(&list)?,
    };
    let retention_days = args.audit_retention_days.or(file.audit_retention_days);
    if let Some(d) = retention_days {
        anyhow::ensure!(
            (1..=36_500).contains(&d),
            "audit_retention_days must be 1-36500"
        );
    }
    let erase_approval_threshold = args
        .erase_approval_threshold
        .or(file.erase_approval_threshold)
        .unwrap_or(1);
    anyhow::ensure!(
        erase_approval_threshold <= 50_000,
        "erase_approval_threshold must be 0-50000"
    );
    let erase_budget_per_day = args
        .erase_budget_per_day
        .or(file.erase_budget_per_day)
        .unwrap_or(5);
    anyhow::ensure!(
        erase_budget_per_day <= 50_000,
        "erase_budget_per_day must be 0-50000"
    );
    Ok(AuditSettings {
        sinks,
        retention_days,
        erase_approval_threshold,
        erase_budget_per_day,
    })
}

/// The anomaly rules on the audit stream.
fn anomaly_policy(
    args: &ServeArgs,
    file: &FileConfig,
) -> mamori_core::audit::anomaly::AnomalyPolicy {
    let mut anomaly = mamori_core::audit::anomaly::AnomalyPolicy::default();
    if let Some(b) = args.alert_new_network.or(file.alert_new_network) {
        anomaly.new_network = b;
    }
    if let Some(b) = args.alert_off_hours.or(file.alert_off_hours) {
        anomaly.off_hours = b;
    }
    if let Some(n) = args
        .alert_mass_command_devices
        .or(file.alert_mass_command_devices)
    {
        anomaly.mass_command_devices = n as usize;
    }
    if let Some(b) = args
        .suspend_on_mass_command
        .or(file.suspend_on_mass_command)
    {
        anomaly.suspend_on_mass_command = b;
    }
    if let Some(n) = args
        .alert_read_baseline_factor
        .or(file.alert_read_baseline_factor)
    {
        anomaly.read_baseline_factor = n;
    }
    anomaly
}

/// The device and admin listeners' connection limits.
fn listener_limits(
    args: &ServeArgs,
    file: &FileConfig,
) -> anyhow::Result<(mamori_http::conn::Limits, mamori_http::conn::Limits)> {
    use mamori_http::conn::Limits;
    use std::time::Duration;
    let cap = |flag: Option<usize>, file: Option<usize>, name: &str, default: usize| {
        let n = flag.or(file).unwrap_or(default);
        anyhow::ensure!((1..=1_000_000).contains(&n), "{name} must be 1-1000000");
        Ok(n)
    };
    let secs = |flag: Option<u64>, file: Option<u64>, name: &str| {
        let n = flag.or(file).unwrap_or(30);
        anyhow::ensure!((1..=3600).contains(&n), "{name} must be 1-3600");
        Ok(Duration::from_secs(n))
    };
    let idle = secs(
        args.idle_timeout_secs,
        file.idle_timeout_secs,
        "idle_timeout_secs",
    )?;
    let request = secs(
        args.request_timeout_secs,
        file.request_timeout_secs,
        "request_timeout_secs",
    )?;
    let (d, a) = (Limits::device(), Limits::admin());
    let device = Limits {
        max_connections: cap(
            args.max_connections,
            file.max_connections,
            "max_connections",
            d.max_connections,
        )?,
        max_connections_per_ip: cap(
            args.max_connections_per_ip,
            file.max_connections_per_ip,
            "max_connections_per_ip",
            d.max_connections_per_ip,
        )?,
        idle_timeout: idle,
        header_timeout: request,
        body_timeout: request,
        ..d
    };
    let admin = Limits {
        max_connections: cap(
            args.admin_max_connections,
            file.admin_max_connections,
            "admin_max_connections",
            a.max_connections,
        )?,
        max_connections_per_ip: cap(
            args.admin_max_connections_per_ip,
            file.admin_max_connections_per_ip,
            "admin_max_connections_per_ip",
            a.max_connections_per_ip,
        )?,
        idle_timeout: idle,
        header_timeout: request,
        body_timeout: request,
        ..a
    };
    Ok((device, admin))
}

/// The environment variables the `serve` flags read, from their clap
/// definitions (so this list cannot drift from the flags).
pub fn known_env() -> Vec<String> {
    #[derive(clap::Parser)]
    struct Probe {
        #[command(flatten)]
        serve: ServeArgs,
    }
    <Probe as clap::CommandFactory>::command()
        .get_arguments()
        .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
        // Read by the key bootstrap, never a flag (a flag would show in `ps`).
        .chain([
            crate::keys::MASTER_KEY_ENV.to_owned(),
            crate::keys::PEOPLE_KEY_ENV.to_owned(),
        ])
        .collect()
}

/// Warns about `MAMORI_*` variables nobody reads (typos).
pub fn warn_unknown_env() {
    let known = known_env();
    for (k, _) in std::env::vars() {
        if k.starts_with("MAMORI_") && !known.contains(&k) {
            tracing::warn!(variable = %k, "unknown MAMORI_ environment variable ignored");
        }
    }
}

/// The organisation's time zone: the one given, checked, or Asia/Tokyo.
fn time_zone(given: Option<String>) -> anyhow::Result<String> {
    let zone = given.unwrap_or_else(|| "Asia/Tokyo".into());
    mamori_http::console::check_time_zone(&zone).map_err(anyhow::Error::msg)?;
    Ok(zone)
}

#[cfg(test)]
mod tests;
