//! Audit streaming: every audit record also goes to the configured sinks —
//! syslog (RFC 5424 over TCP or TLS) and HMAC-signed webhooks — in the
//! background, never on the request path. Each sink has a delivery cursor
//! in the store (the sequence number of the last record it acknowledged);
//! a sink that is down is retried with backoff and resumes after its
//! cursor, so it loses nothing. Delivery is at least once: a batch that
//! was received but not acknowledged is sent again, and receivers
//! deduplicate by sequence number.
//!
//! Alerts are audit records (`alert.*`, outcome `alert`), so they reach the
//! sinks like everything else, with their severity (syslog severity 1 for
//! high).

pub mod format;
mod transport;

use mamori_ports::{SinkState, Store};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use zeroize::Zeroizing;

pub use transport::tls_roots;

/// Where a sink sends.
#[derive(Clone)]
pub enum Target {
    /// POST batches as JSON to this URL, signed with the secret.
    Webhook {
        /// The URL.
        url: url::Url,
        /// HMAC-SHA256 key.
        secret: Arc<Zeroizing<Vec<u8>>>,
    },
    /// RFC 5424 messages over TCP, with TLS (RFC 5425) or without.
    Syslog {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
        /// Whether to use TLS.
        tls: bool,
    },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Target {
    /// The kind, for status listings.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Webhook { .. } => "webhook",
            Self::Syslog { tls: true, .. } => "syslog+tls",
            Self::Syslog { tls: false, .. } => "syslog+tcp",
        }
    }

    /// Where it sends, without credentials or query strings (safe to show
    /// and to log).
    pub fn describe(&self) -> String {
        match self {
            Self::Webhook { url, .. } => {
                let host = url.host_str().unwrap_or("");
                match url.port() {
                    Some(p) => format!("{}://{host}:{p}{}", url.scheme(), url.path()),
                    None => format!("{}://{host}{}", url.scheme(), url.path()),
                }
            }
            Self::Syslog { host, port, tls } => {
                format!(
                    "syslog+{}://{host}:{port}",
                    if *tls { "tls" } else { "tcp" }
                )
            }
        }
    }
}

/// A configured sink: `NAME=URL`.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    /// Name (the cursor's key): lowercase letters, digits, `-`, `_`.
    pub name: String,
    /// What `URL` said: `https://...` (webhook), `syslog+tls://host:port`,
    /// or — to a loopback address only, e.g. a local forwarder —
    /// `http://...` and `syslog+tcp://host:port`.
    pub url: url::Url,
}

/// Why a sink definition was refused.
#[derive(Debug, thiserror::Error)]
#[error("audit sink {0}")]
pub struct SpecError(String);

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

impl SinkSpec {
    /// Parses a comma-separated list of `NAME=URL`.
    pub fn parse_list(list: &str) -> Result<Vec<Self>, SpecError> {
        let mut out: Vec<Self> = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let spec = Self::parse(item)?;
            if out.iter().any(|s| s.name == spec.name) {
                return Err(SpecError(format!("{:?} is defined twice", spec.name)));
            }
            out.push(spec);
        }
        Ok(out)
    }

    /// Parses one `NAME=URL`.
    pub fn parse(item: &str) -> Result<Self, SpecError> {
        let (name, url) = item
            .split_once('=')
            .ok_or_else(|| SpecError(format!("{item:?}: expected NAME=URL")))?;
        let name = name.trim();
        if name.is_empty()
            || name.len() > 32
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(SpecError(format!(
                "{name:?}: names are 1-32 lowercase letters, digits, '-' or '_'"
            )));
        }
        let url = url::Url::parse(url.trim())
            .map_err(|e| SpecError(format!("{name}: not a URL ({e})")))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(SpecError(format!("{name}: the URL has no host")));
        }
        match url.scheme() {
            "https" | "syslog+tls" => {}
            "http" | "syslog+tcp" if is_loopback(&url) => {}
            "http" | "syslog+tcp" => {
                return Err(SpecError(format!(
                    "{name}: unencrypted {} is allowed only to a loopback address (a local \
                     forwarder); use {}",
                    url.scheme(),
                    if url.scheme() == "http" {
                        "https"
                    } else {
                        "syslog+tls"
                    }
                )))
            }
            other => {
                return Err(SpecError(format!(
                    "{name}: unknown scheme {other:?} (https, syslog+tls, or to loopback http, \
                     syslog+tcp)"
                )))
            }
        }
        if url.scheme().starts_with("syslog") && url.port().is_none() {
            return Err(SpecError(format!(
                "{name}: a syslog URL needs a port (6514 for syslog over TLS)"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            url,
        })
    }

    /// Whether the sink signs with a secret (webhooks).
    pub fn needs_secret(&self) -> bool {
        matches!(self.url.scheme(), "http" | "https")
    }

    /// The target, with the webhook secret.
    pub fn target(&self, secret: Option<Arc<Zeroizing<Vec<u8>>>>) -> Result<Target, SpecError> {
        match self.url.scheme() {
            "http" | "https" => Ok(Target::Webhook {
                url: self.url.clone(),
                secret: secret.ok_or_else(|| {
                    SpecError(format!("{}: the webhook has no secret", self.name))
                })?,
            }),
            scheme => Ok(Target::Syslog {
                host: self.url.host_str().unwrap_or_default().to_owned(),
                port: self.url.port().unwrap_or(6514),
                tls: scheme == "syslog+tls",
            }),
        }
    }
}

/// How a sink runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How often an idle sink looks for new records.
    pub poll: Duration,
    /// Records per delivery.
    pub batch: u32,
    /// First retry delay after a failure (doubles up to `max_backoff`).
    pub backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Network timeout per delivery.
    pub timeout: Duration,
    /// HOSTNAME in syslog messages.
    pub hostname: String,
    /// Trust anchors for TLS sinks.
    pub roots: Arc<rustls::RootCertStore>,
}

/// Delivers the audit log to one sink forever (spawn it).
pub async fn run(store: Arc<dyn Store>, name: String, target: Target, opts: RunOptions) {
    let mut transport = transport::Transport::new(&name, &target, &opts);
    let describe = target.describe();
    let mut state = loop {
        match store.sink_state(&name).await {
            Ok(s) => {
                break s.unwrap_or(SinkState {
                    name: name.clone(),
                    delivered_seq: 0,
                    delivered_at: None,
                    failing_since: None,
                    last_error: None,
                })
            }
            Err(e) => {
                tracing::error!(sink = %name, error = %e, "cannot read the sink's cursor");
                tokio::time::sleep(opts.max_backoff).await;
            }
        }
    };
    tracing::info!(sink = %name, target = %describe, after = state.delivered_seq, "audit sink started");
    let mut backoff = opts.backoff;
    loop {
        let records = match store.list_audit(state.delivered_seq, opts.batch).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(sink = %name, error = %e, "cannot read the audit log");
                tokio::time::sleep(opts.poll.max(opts.backoff)).await;
                continue;
            }
        };
        let Some(last) = records.last().map(|r| r.seq) else {
            tokio::time::sleep(opts.poll).await;
            continue;
        };
        let result = transport.send(&records).await;
        let now = OffsetDateTime::now_utc();
        let delay = match result {
            Ok(()) => {
                if state.failing_since.is_some() {
                    tracing::info!(sink = %name, "audit sink delivering again");
                }
                state.delivered_seq = last;
                state.delivered_at = Some(now);
                state.failing_since = None;
                state.last_error = None;
                backoff = opts.backoff;
                None
            }
            Err(e) => {
                if state.failing_since.is_none() {
                    tracing::warn!(sink = %name, target = %describe, error = %e,
                        "audit sink unreachable; records are kept and will be delivered when it is back");
                    state.failing_since = Some(now);
                }
                state.last_error = Some(e);
                let d = backoff;
                backoff = (backoff * 2).min(opts.max_backoff);
                Some(d)
            }
        };
        if let Err(e) = store.save_sink_state(&state).await {
            tracing::error!(sink = %name, error = %e, "cannot store the sink's cursor");
        }
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sink_definitions_are_checked() {
        let l = SinkSpec::parse_list(
            "siem=https://siem.example.com/hook?token=x, log=syslog+tls://logs.example.com:6514,\
             local=http://127.0.0.1:9000/in",
        )
        .unwrap();
        assert_eq!(l.len(), 3);
        assert!(l[0].needs_secret() && !l[1].needs_secret());
        let t = l[0]
            .target(Some(Arc::new(Zeroizing::new(vec![1]))))
            .unwrap();
        assert_eq!(t.describe(), "https://siem.example.com/hook", "no query");
        assert_eq!(t.kind(), "webhook");
        let t = l[1].target(None).unwrap();
        assert_eq!(t.describe(), "syslog+tls://logs.example.com:6514");
        for (bad, why) in [
            ("nourl", "NAME=URL"),
            ("Bad=https://x", "lowercase"),
            ("a=http://siem.example.com/x", "loopback"),
            ("a=syslog+tcp://10.0.0.1:514", "loopback"),
            ("a=syslog+tls://logs.example.com", "port"),
            ("a=ftp://x", "scheme"),
            ("a=https://x,a=https://y", "twice"),
        ] {
            let e = SinkSpec::parse_list(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(SinkSpec::parse("a=syslog+tcp://localhost:514").is_ok());
    }
}
