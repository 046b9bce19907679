//! The network side of the sinks: webhook POSTs (reqwest over rustls) and
//! syslog streams (TCP, optionally TLS, one connection kept open).

use crate::{format, RunOptions, Target};
use mamori_domain::AuditRecord;
use rustls_pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The system's trust anchors plus the operator's extra ones (PEM or DER
/// certificates already parsed).
pub fn tls_roots(extra: Vec<CertificateDer<'static>>) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "system trust store");
    }
    roots.add_parsable_certificates(native.certs);
    let (_, ignored) = roots.add_parsable_certificates(extra);
    if ignored > 0 {
        tracing::warn!(ignored, "unusable audit sink CA certificates ignored");
    }
    roots
}

fn client_config(roots: &Arc<rustls::RootCertStore>) -> Result<rustls::ClientConfig, String> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(Arc::clone(roots))
    .with_no_client_auth();
    Ok(config)
}

pub(crate) trait Stream: AsyncWrite + Unpin + Send {}
impl<T: AsyncWrite + Unpin + Send> Stream for T {}

pub(crate) enum Transport {
    Webhook {
        name: String,
        client: Result<reqwest::Client, String>,
        url: url::Url,
        secret: Arc<zeroize::Zeroizing<Vec<u8>>>,
    },
    Syslog {
        host: String,
        port: u16,
        tls: Option<tokio_rustls::TlsConnector>,
        tls_error: Option<String>,
        hostname: String,
        timeout: std::time::Duration,
        conn: Option<Box<dyn Stream>>,
    },
}

impl Transport {
    pub(crate) fn new(name: &str, target: &Target, opts: &RunOptions) -> Self {
        match target {
            Target::Webhook { url, secret } => Self::Webhook {
                name: name.to_owned(),
                client: client_config(&opts.roots).and_then(|tls| {
                    reqwest::Client::builder()
                        .use_preconfigured_tls(tls)
                        .timeout(opts.timeout)
                        .connect_timeout(opts.timeout)
                        .redirect(reqwest::redirect::Policy::none())
                        .build()
                        .map_err(|e| e.to_string())
                }),
                url: url.clone(),
                secret: Arc::clone(secret),
            },
            Target::Syslog { host, port, tls } => {
                let (connector, tls_error) = if *tls {
                    match client_config(&opts.roots) {
                        Ok(c) => (Some(tokio_rustls::TlsConnector::from(Arc::new(c))), None),
                        Err(e) => (None, Some(e)),
                    }
                } else {
                    (None, None)
                };
                Self::Syslog {
                    host: host.clone(),
                    port: *port,
                    tls: connector,
                    tls_error,
                    hostname: opts.hostname.clone(),
                    timeout: opts.timeout,
                    conn: None,
                }
            }
        }
    }

    /// Delivers a batch; Err holds a short reason for administrators.
    pub(crate) async fn send(&mut self, records: &[AuditRecord]) -> Result<(), String> {
        match self {
            Self::Webhook {
                name,
                client,
                url,
                secret,
            } => {
                let client = client.as_ref().map_err(Clone::clone)?;
                let body = format::webhook_body(name, records);
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let signature = format::webhook_signature(secret, now, &body);
                let first = records.first().map_or(0, |r| r.seq);
                let last = records.last().map_or(0, |r| r.seq);
                let resp = client
                    .post(url.clone())
                    .header("content-type", "application/json")
                    .header("x-mamori-sink", name.as_str())
                    .header("x-mamori-signature", signature)
                    .header("x-mamori-records", format!("{first}-{last}"))
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| describe_http_error(&e))?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("HTTP {}", resp.status().as_u16()))
                }
            }
            Self::Syslog {
                host,
                port,
                tls,
                tls_error,
                hostname,
                timeout,
                conn,
            } => {
                if let Some(e) = tls_error {
                    return Err(e.clone());
                }
                let mut buf = Vec::with_capacity(records.len() * 256);
                for r in records {
                    buf.extend_from_slice(&format::syslog_frame(hostname, r));
                }
                if conn.is_none() {
                    *conn = Some(connect(host, *port, tls.as_ref(), *timeout).await?);
                }
                let Some(stream) = conn.as_mut() else {
                    return Err("not connected".into());
                };
                let write = async {
                    stream.write_all(&buf).await?;
                    stream.flush().await
                };
                match tokio::time::timeout(*timeout, write).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => {
                        *conn = None;
                        Err(format!("write failed: {}", e.kind()))
                    }
                    Err(_) => {
                        *conn = None;
                        Err("write timed out".into())
                    }
                }
            }
        }
    }
}

async fn connect(
    host: &str,
    port: u16,
    tls: Option<&tokio_rustls::TlsConnector>,
    timeout: std::time::Duration,
) -> Result<Box<dyn Stream>, String> {
    let tcp = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| "connection timed out".to_owned())?
        .map_err(|e| format!("cannot connect: {}", e.kind()))?;
    let _ = tcp.set_nodelay(true);
    let Some(connector) = tls else {
        return Ok(Box::new(tcp));
    };
    let name = ServerName::try_from(host.to_owned()).map_err(|_| "bad host name".to_owned())?;
    let stream = tokio::time::timeout(timeout, connector.connect(name, tcp))
        .await
        .map_err(|_| "TLS handshake timed out".to_owned())?
        .map_err(|e| format!("TLS handshake failed: {e}"))?;
    Ok(Box::new(stream))
}

fn describe_http_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        // Without the URL: it may carry a credential.
        let mut s = e.to_string();
        if let Some(u) = e.url() {
            s = s.replace(u.as_str(), "<url>");
        }
        s
    }
}
