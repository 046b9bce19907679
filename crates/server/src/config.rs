//! Configuration: defaults, then a TOML file, then environment variables,
//! then command-line flags (clap reads the `MAMORI_*` variables for each flag).

use anyhow::Context;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Flags shared by `serve` (all optional: unset means "next layer down").
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file [default: DATA_DIR/mamori.toml when present]
    #[arg(long, env = "MAMORI_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (database, keys, certificates) [default: ./mamori-data]
    #[arg(long, env = "MAMORI_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Device listener (SCEP, check-in, connect) [default: 0.0.0.0:8443]
    #[arg(long, env = "MAMORI_DEVICE_ADDR")]
    pub device_addr: Option<SocketAddr>,
    /// Admin listener (REST API); keep it on an internal interface [default: 127.0.0.1:8444]
    #[arg(long, env = "MAMORI_ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,
    /// URL devices are told to use, e.g. https://mdm.example.com:8443 [default: https://localhost:PORT]
    #[arg(long, env = "MAMORI_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// TLS certificate chain (PEM) to use instead of the generated one
    #[arg(long, env = "MAMORI_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM, PKCS#8 RSA) for --tls-cert
    #[arg(long, env = "MAMORI_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// APNs base URL [default: https://api.push.apple.com]
    #[arg(long, env = "MAMORI_APNS_URL")]
    pub apns_url: Option<String>,
    /// Extra root certificate (PEM) trusted for the APNs connection (tests, proxies)
    #[arg(long, env = "MAMORI_APNS_CA")]
    pub apns_ca: Option<PathBuf>,
    /// APNs topic written to profiles until a push certificate is installed
    #[arg(long, env = "MAMORI_PUSH_TOPIC")]
    pub push_topic: Option<String>,
    /// Organisation name shown in enrollment profiles [default: Mamori]
    #[arg(long, env = "MAMORI_ORGANIZATION")]
    pub organization: Option<String>,
    /// Refuse SCEP requests encrypted with single DES [default: accepted]
    #[arg(long, env = "MAMORI_DISABLE_SINGLE_DES")]
    pub disable_single_des: Option<bool>,
    /// Validity of device identity certificates in days [default: 365]
    #[arg(long, env = "MAMORI_DEVICE_CERT_DAYS")]
    pub device_cert_days: Option<u32>,
    /// Log format: text or json [default: text]
    #[arg(long, env = "MAMORI_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// URL administrators use for the admin listener; its host is the WebAuthn relying party [default: https://localhost:ADMIN_PORT]
    #[arg(long, env = "MAMORI_ADMIN_URL")]
    pub admin_url: Option<String>,
    /// Source networks allowed on the admin listener, comma-separated CIDRs [default: any]
    #[arg(long, env = "MAMORI_ADMIN_ALLOW")]
    pub admin_allow: Option<String>,
    /// Minutes of inactivity after which an admin session ends [default: 15]
    #[arg(long, env = "MAMORI_SESSION_IDLE_MINUTES")]
    pub session_idle_minutes: Option<u32>,
    /// Hours after login at which an admin session ends regardless [default: 8]
    #[arg(long, env = "MAMORI_SESSION_HOURS")]
    pub session_hours: Option<u32>,
    /// Consecutive failed logins that lock an admin account [default: 10]
    #[arg(long, env = "MAMORI_LOCKOUT_THRESHOLD")]
    pub lockout_threshold: Option<u32>,
    /// Days without login after which an admin account is stale [default: 30]
    #[arg(long, env = "MAMORI_STALE_ADMIN_DAYS")]
    pub stale_admin_days: Option<u32>,
    /// Disable stale admin accounts automatically [default: true]
    #[arg(long, env = "MAMORI_DISABLE_STALE_ADMINS")]
    pub disable_stale_admins: Option<bool>,
    /// Roles that must log in with WebAuthn, comma-separated [default: owner,security_officer]
    #[arg(long, env = "MAMORI_WEBAUTHN_ROLES")]
    pub webauthn_roles: Option<String>,
    /// Days after departure at which a person's data is purged (0: at once) [default: 30]
    #[arg(long, env = "MAMORI_PEOPLE_RETENTION_DAYS")]
    pub people_retention_days: Option<u32>,
    /// What offboarding does to devices: remove_management, or erase (after a second administrator approves) [default: remove_management]
    #[arg(long, env = "MAMORI_OFFBOARD_ACTION")]
    pub offboard_action: Option<String>,
    /// People one account (all its sessions and tokens), or one source network (IPv4 /24, IPv6 /64), may read in plaintext within a minute; the read of one more is refused, fires an alert and suspends the account until another administrator reinstates it [default: 300]
    #[arg(long, env = "MAMORI_BULK_READ_THRESHOLD")]
    pub bulk_read_threshold: Option<u32>,
    /// Audit sinks, comma-separated NAME=URL: https://... (HMAC-signed webhook; the key is DATA_DIR/audit-sink-NAME.key), syslog+tls://HOST:PORT (RFC 5424 over TLS); to loopback only also http://... and syslog+tcp://HOST:PORT [default: none]
    #[arg(long, env = "MAMORI_AUDIT_SINKS")]
    pub audit_sinks: Option<String>,
    /// Extra CA certificates (PEM) trusted for TLS audit sinks, besides the system's
    #[arg(long, env = "MAMORI_AUDIT_SINK_CA")]
    pub audit_sink_ca: Option<PathBuf>,
    /// Remove audit records older than this many days (hourly, behind a signed "truncated up to" mark; never records a sink has not delivered) [default: keep forever]
    #[arg(long, env = "MAMORI_AUDIT_RETENTION_DAYS")]
    pub audit_retention_days: Option<u32>,
    /// An EraseDevice for more devices than this waits for a second administrator's approval [default: 1]
    #[arg(long, env = "MAMORI_ERASE_APPROVAL_THRESHOLD")]
    pub erase_approval_threshold: Option<u32>,
    /// Alert when an administrator or token acts from a network (/24, /64) it never used before [default: true]
    #[arg(long, env = "MAMORI_ALERT_NEW_NETWORK")]
    pub alert_new_network: Option<bool>,
    /// Alert when an administrator logs in at an hour they never log in at [default: true]
    #[arg(long, env = "MAMORI_ALERT_OFF_HOURS")]
    pub alert_off_hours: Option<bool>,
    /// Alert when one actor locks, erases or unenrolls this many devices within 10 minutes; 0 turns the rule off [default: 20]
    #[arg(long, env = "MAMORI_ALERT_MASS_COMMAND_DEVICES")]
    pub alert_mass_command_devices: Option<u32>,
    /// Suspend the actor (revoke its sessions and tokens) when the mass-command alert fires [default: false]
    #[arg(long, env = "MAMORI_SUSPEND_ON_MASS_COMMAND")]
    pub suspend_on_mass_command: Option<bool>,
    /// Alert when an actor's personal-data reads in a day exceed this many times its own daily average (and 100); 0 turns the rule off [default: 5]
    #[arg(long, env = "MAMORI_ALERT_READ_BASELINE_FACTOR")]
    pub alert_read_baseline_factor: Option<u32>,
    /// Connections the device listener holds at once; more are closed before TLS [default: 4096]
    #[arg(long, env = "MAMORI_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Connections the device listener holds at once from one source address (IPv4 address or IPv6 /64; devices behind one NAT share it) [default: 256]
    #[arg(long, env = "MAMORI_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Connections the admin listener holds at once [default: 256]
    #[arg(long, env = "MAMORI_ADMIN_MAX_CONNECTIONS")]
    pub admin_max_connections: Option<usize>,
    /// Connections the admin listener holds at once from one source address [default: 64]
    #[arg(long, env = "MAMORI_ADMIN_MAX_CONNECTIONS_PER_IP")]
    pub admin_max_connections_per_ip: Option<usize>,
    /// Seconds a connection with no request in flight stays open (both listeners, HTTP/1.1 and HTTP/2) [default: 30]
    #[arg(long, env = "MAMORI_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Seconds a client has for a request's headers, and for its body beyond 1 s per 16 KiB received (both listeners) [default: 30]
    #[arg(long, env = "MAMORI_REQUEST_TIMEOUT_SECS")]
    pub request_timeout_secs: Option<u64>,
}

/// The TOML file's shape: the same keys as the flags, in snake_case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    device_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    public_url: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    apns_url: Option<String>,
    apns_ca: Option<PathBuf>,
    push_topic: Option<String>,
    organization: Option<String>,
    disable_single_des: Option<bool>,
    device_cert_days: Option<u32>,
    log_format: Option<String>,
    admin_url: Option<String>,
    admin_allow: Option<String>,
    session_idle_minutes: Option<u32>,
    session_hours: Option<u32>,
    lockout_threshold: Option<u32>,
    stale_admin_days: Option<u32>,
    disable_stale_admins: Option<bool>,
    webauthn_roles: Option<String>,
    people_retention_days: Option<u32>,
    offboard_action: Option<String>,
    bulk_read_threshold: Option<u32>,
    audit_sinks: Option<String>,
    audit_sink_ca: Option<PathBuf>,
    audit_retention_days: Option<u32>,
    erase_approval_threshold: Option<u32>,
    alert_new_network: Option<bool>,
    alert_off_hours: Option<bool>,
    alert_mass_command_devices: Option<u32>,
    suspend_on_mass_command: Option<bool>,
    alert_read_baseline_factor: Option<u32>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    admin_max_connections: Option<usize>,
    admin_max_connections_per_ip: Option<usize>,
    idle_timeout_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data directory.
    pub data_dir: PathBuf,
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
    /// Administrator authentication policy (admin_url filled in at start).
    pub auth: mamori_core::auth::AuthPolicy,
    /// Days after departure at which a person is purged.
    pub people_retention_days: u32,
    /// What offboarding does to devices.
    pub offboard_action: mamori_core::offboard::OffboardAction,
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
    /// Anomaly rules on the audit stream.
    pub anomaly: mamori_core::anomaly::AnomalyPolicy,
    /// How often policy profiles are reconciled (60 s; tests change it).
    pub reconcile_every: std::time::Duration,
    /// Connection caps and timeouts of the device listener.
    pub device_limits: mamori_http::conn::Limits,
    /// Connection caps and timeouts of the admin listener.
    pub admin_limits: mamori_http::conn::Limits,
}

impl Config {
    /// Resolves the layers.
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let default_dir = PathBuf::from("mamori-data");
        let file_path = args.config.clone().or_else(|| {
            let dir = args.data_dir.clone().unwrap_or_else(|| default_dir.clone());
            let p = dir.join("mamori.toml");
            p.exists().then_some(p)
        });
        let file = match &file_path {
            Some(p) => read_file_config(p)?,
            None => FileConfig::default(),
        };
        let (device_limits, admin_limits) = listener_limits(args, &file)?;
        let tls = match (
            args.tls_cert.clone().or(file.tls_cert),
            args.tls_key.clone().or(file.tls_key),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => anyhow::bail!("tls_cert and tls_key must be given together"),
        };
        let days = args
            .device_cert_days
            .or(file.device_cert_days)
            .unwrap_or(365);
        anyhow::ensure!(
            (1..=3650).contains(&days),
            "device_cert_days must be 1-3650"
        );
        let mut auth = mamori_core::auth::AuthPolicy::default();
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
        if let Some(list) = args.webauthn_roles.clone().or(file.webauthn_roles) {
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
        let admin_allow = match args.admin_allow.clone().or(file.admin_allow) {
            None => None,
            Some(list) => Some(
                list.split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(|n| {
                        n.parse::<ipnet::IpNet>()
                            .or_else(|_| n.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                            .with_context(|| {
                                format!("admin_allow: {n:?} is not a network (CIDR) or address")
                            })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?,
            ),
        };
        let people_retention_days = args
            .people_retention_days
            .or(file.people_retention_days)
            .unwrap_or(30);
        anyhow::ensure!(
            people_retention_days <= 3650,
            "people_retention_days must be 0-3650"
        );
        let offboard_action = match args.offboard_action.clone().or(file.offboard_action) {
            None => mamori_core::offboard::OffboardAction::RemoveManagement,
            Some(a) => {
                mamori_core::offboard::OffboardAction::parse(a.trim()).with_context(|| {
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
        let audit_sinks = match args.audit_sinks.clone().or(file.audit_sinks) {
            None => Vec::new(),
            Some(list) => mamori_sinks::SinkSpec::parse_list(&list)?,
        };
        let audit_retention_days = args.audit_retention_days.or(file.audit_retention_days);
        if let Some(d) = audit_retention_days {
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
            (1..=50_000).contains(&erase_approval_threshold),
            "erase_approval_threshold must be 1-50000"
        );
        let mut anomaly = mamori_core::anomaly::AnomalyPolicy::default();
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
        Ok(Self {
            device_limits,
            admin_limits,
            reconcile_every: std::time::Duration::from_secs(60),
            anomaly,
            erase_approval_threshold: erase_approval_threshold as usize,
            audit_retention_days,
            audit_sinks,
            audit_sink_ca: args.audit_sink_ca.clone().or(file.audit_sink_ca),
            audit_sink_poll: std::time::Duration::from_secs(1),
            audit_sink_max_backoff: std::time::Duration::from_secs(60),
            bulk_read_threshold: bulk_read_threshold as usize,
            offboard_action,
            people_retention_days,
            admin_url: args.admin_url.clone().or(file.admin_url),
            admin_allow,
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

fn read_file_config(p: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(p)
        .with_context(|| format!("cannot read configuration file {}", p.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid configuration file {}", p.display()))
}

impl ServeArgs {
    /// The settings the `MAMORI_*` environment variables give (what `serve`
    /// would read with no flags), for the administration commands.
    pub fn from_env() -> anyhow::Result<Self> {
        #[derive(clap::Parser)]
        struct Probe {
            #[command(flatten)]
            serve: ServeArgs,
        }
        <Probe as clap::Parser>::try_parse_from(["mamori"])
            .map(|p| p.serve)
            .map_err(|e| anyhow::anyhow!("invalid MAMORI_* environment variable: {e}"))
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mamori.toml"),
            "admin_addr = \"127.0.0.1:9444\"\npublic_url = \"https://file.example\"\norganization = \"Acme\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            data_dir: Some(dir.path().to_path_buf()),
            public_url: Some("https://flag.example".into()),
            ..ServeArgs::default()
        };
        let c = Config::resolve(&args).unwrap();
        assert_eq!(c.admin_addr, "127.0.0.1:9444".parse().unwrap());
        assert_eq!(c.public_url.as_deref(), Some("https://flag.example"));
        assert_eq!(c.organization, "Acme");
        assert_eq!(c.device_addr, "0.0.0.0:8443".parse().unwrap());
        assert!(c.allow_single_des);
    }

    #[test]
    fn unknown_keys_and_half_tls_settings_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, "admin_adr = \"127.0.0.1:1\"\n").unwrap();
        let args = ServeArgs {
            config: Some(p.clone()),
            ..ServeArgs::default()
        };
        let err = Config::resolve(&args).unwrap_err();
        assert!(format!("{err:#}").contains("admin_adr"), "{err:#}");
        std::fs::write(&p, "tls_cert = \"/x.pem\"\n").unwrap();
        assert!(Config::resolve(&args).is_err());
    }

    #[test]
    fn environment_variables_feed_the_flags() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        // clap reads MAMORI_* for each flag; the flag itself wins.
        let cli = Cli::try_parse_from(["mamori", "--admin-addr", "127.0.0.1:7000"]).unwrap();
        assert_eq!(
            cli.serve.admin_addr,
            Some("127.0.0.1:7000".parse().unwrap())
        );
        let envs = known_env();
        for v in [
            "MAMORI_DATA_DIR",
            "MAMORI_DEVICE_ADDR",
            "MAMORI_ADMIN_ADDR",
            "MAMORI_PUBLIC_URL",
        ] {
            assert!(envs.iter().any(|e| e == v), "{v}");
        }
    }
}
