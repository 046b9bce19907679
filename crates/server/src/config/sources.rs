//! The configuration's sources: the `serve` flags (which clap also reads
//! from the `MAMORI_*` environment variables) and the TOML file.

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
    /// PostgreSQL database, postgres://USER@HOST/NAME (prefer the variable:
    /// a flag is visible to every local user) [default: SQLite in DATA_DIR]
    #[arg(long = "database", env = "MAMORI_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
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
    /// The organisation's time zone (IANA name) for the times the console shows [default: Asia/Tokyo]
    #[arg(long, env = "MAMORI_TIME_ZONE")]
    pub time_zone: Option<String>,
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
    /// Load balancers passing TCP through, comma-separated networks (CIDR) or addresses: their connections, on both listeners, must start with a PROXY protocol v2 header and count as the client it names (for the allow-list, connection caps, sign-in throttles, the bulk-read network window and the audit log) [default: none; no connection may carry one]
    #[arg(long, env = "MAMORI_PROXY_PROTOCOL_FROM")]
    pub proxy_protocol_from: Option<String>,
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
    /// An EraseDevice for more devices than this waits for a second administrator's approval; 0: every erase does [default: 1]
    #[arg(long, env = "MAMORI_ERASE_APPROVAL_THRESHOLD")]
    pub erase_approval_threshold: Option<u32>,
    /// EraseDevice commands all administrators together may queue in any 24 hours without a second administrator (one person with several accounts gets no more); past it, each erase waits for an approval; 0: every erase does [default: 5]
    #[arg(long, env = "MAMORI_ERASE_BUDGET_PER_DAY")]
    pub erase_budget_per_day: Option<u32>,
    /// Hours between inventory refreshes of one device (DeviceInformation, SecurityInfo, InstalledApplicationList, ProfileList); a device is first asked within minutes of enrolling; 0 turns the automatic refresh off [default: 24]
    #[arg(long, env = "MAMORI_INVENTORY_REFRESH_HOURS")]
    pub inventory_refresh_hours: Option<u32>,
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

/// The TOML file's shape: the same keys as the flags, in snake_case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) data_dir: Option<PathBuf>,
    pub(super) database_url: Option<String>,
    pub(super) device_addr: Option<SocketAddr>,
    pub(super) admin_addr: Option<SocketAddr>,
    pub(super) public_url: Option<String>,
    pub(super) tls_cert: Option<PathBuf>,
    pub(super) tls_key: Option<PathBuf>,
    pub(super) apns_url: Option<String>,
    pub(super) apns_ca: Option<PathBuf>,
    pub(super) push_topic: Option<String>,
    pub(super) organization: Option<String>,
    pub(super) time_zone: Option<String>,
    pub(super) disable_single_des: Option<bool>,
    pub(super) device_cert_days: Option<u32>,
    pub(super) log_format: Option<String>,
    pub(super) admin_url: Option<String>,
    pub(super) admin_allow: Option<String>,
    pub(super) proxy_protocol_from: Option<String>,
    pub(super) session_idle_minutes: Option<u32>,
    pub(super) session_hours: Option<u32>,
    pub(super) lockout_threshold: Option<u32>,
    pub(super) stale_admin_days: Option<u32>,
    pub(super) disable_stale_admins: Option<bool>,
    pub(super) webauthn_roles: Option<String>,
    pub(super) people_retention_days: Option<u32>,
    pub(super) offboard_action: Option<String>,
    pub(super) bulk_read_threshold: Option<u32>,
    pub(super) audit_sinks: Option<String>,
    pub(super) audit_sink_ca: Option<PathBuf>,
    pub(super) audit_retention_days: Option<u32>,
    pub(super) erase_approval_threshold: Option<u32>,
    pub(super) erase_budget_per_day: Option<u32>,
    pub(super) inventory_refresh_hours: Option<u32>,
    pub(super) alert_new_network: Option<bool>,
    pub(super) alert_off_hours: Option<bool>,
    pub(super) alert_mass_command_devices: Option<u32>,
    pub(super) suspend_on_mass_command: Option<bool>,
    pub(super) alert_read_baseline_factor: Option<u32>,
    pub(super) max_connections: Option<usize>,
    pub(super) max_connections_per_ip: Option<usize>,
    pub(super) admin_max_connections: Option<usize>,
    pub(super) admin_max_connections_per_ip: Option<usize>,
    pub(super) idle_timeout_secs: Option<u64>,
    pub(super) request_timeout_secs: Option<u64>,
}

pub(super) fn read_file_config(p: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(p)
        .with_context(|| format!("cannot read configuration file {}", p.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid configuration file {}", p.display()))
}
