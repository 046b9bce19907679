//! TLS to the database: libpq's `sslmode` and `sslrootcert` in the URL,
//! carried out by rustls (aws-lc-rs) through `tokio-postgres-rustls`. The
//! pool and the identity watch connect with the same [`Tls`].
//!
//! Over TCP, by `sslmode`:
//!
//! - `verify-full`: TLS; the certificate's chain up to a trusted CA and its
//!   host name are checked;
//! - `verify-ca`: TLS; the chain is checked, the name is not;
//! - `require`: TLS, the certificate unchecked: it keeps out a passive
//!   eavesdropper only, not someone in the middle. With `sslrootcert`
//!   it checks the chain, as `verify-ca` (libpq does the same);
//! - `disable`: plaintext, asked for on purpose;
//! - `prefer`, `allow`: refused. Both fall back to plaintext when the
//!   server (or someone in the middle) offers no TLS, unseen;
//! - none: `verify-full`, except to a loopback host (`localhost`,
//!   127.0.0.0/8, `::1`) with no `sslrootcert`, where the bytes never
//!   leave the machine: plaintext, as before TLS was supported.
//!
//! Trusted CAs: the PEM file `sslrootcert` names, or the system's
//! (`sslrootcert=system`, or none given). A Unix socket carries no TLS
//! (the server offers none there); as libpq does, `sslmode` is ignored on
//! one.

mod params;
mod verify;

use mamori_ports::{StoreError, StoreResult};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, ClientConfig, RootCertStore};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

/// What a connection does about TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// No TLS.
    Plain,
    /// TLS, any certificate.
    Encrypt,
    /// TLS, the chain checked.
    VerifyCa,
    /// TLS, the chain and the host name checked.
    VerifyFull,
}

impl Mode {
    /// The `sslmode` that means this.
    fn sslmode(self) -> &'static str {
        match self {
            Mode::Plain => "disable",
            Mode::Encrypt => "require",
            Mode::VerifyCa => "verify-ca",
            Mode::VerifyFull => "verify-full",
        }
    }
}

/// How a store's connections reach the server.
pub(crate) struct Tls {
    mode: Mode,
    /// Where the trusted CAs come from, for messages.
    roots: String,
    /// The TCP hosts' names, for messages.
    hosts: String,
    connector: MakeRustlsConnect,
}

impl Tls {
    /// Reads `url`: its connection settings (tokio-postgres's `sslmode`
    /// set to match) and the TLS to connect with.
    pub(crate) fn from_url(url: &str) -> StoreResult<(tokio_postgres::Config, Self)> {
        let (rest, asked) = params::take_tls_params(url)?;
        let mut config = tokio_postgres::Config::from_str(&rest).map_err(crate::db)?;
        let mode = decide(&asked, &config)?;
        config.ssl_mode(match mode {
            Mode::Plain => SslMode::Disable,
            _ => SslMode::Require,
        });
        let (client, roots) = client_config(mode, asked.sslrootcert.as_deref())?;
        let hosts: Vec<&str> = config
            .get_hosts()
            .iter()
            .filter_map(|h| match h {
                Host::Tcp(name) => Some(name.as_str()),
                Host::Unix(_) => None,
            })
            .collect();
        if mode == Mode::Plain && !hosts.is_empty() && !is_loopback(&config) {
            tracing::warn!("the connection to PostgreSQL is not encrypted (sslmode=disable)");
        }
        let tls = Self {
            mode,
            roots,
            hosts: hosts.join(", "),
            connector: MakeRustlsConnect::new(client),
        };
        Ok((config, tls))
    }

    /// The connector to hand tokio-postgres.
    pub(crate) fn connector(&self) -> MakeRustlsConnect {
        self.connector.clone()
    }

    /// A failure to connect, said as what to fix. Its text holds no part
    /// of the URL but host names and the `sslrootcert` path.
    pub(crate) fn connect_error(&self, e: tokio_postgres::Error) -> StoreError {
        let said = with_causes(&e);
        let text = match rustls_error(&e) {
            Some(rustls::Error::InvalidCertificate(c)) => self.refused_certificate(c),
            Some(other) => format!(
                "TLS with PostgreSQL failed ({other}): check sslmode and the server's TLS settings"
            ),
            None if said.contains("server does not support TLS") => format!(
                "PostgreSQL offers no TLS (sslmode={}): turn ssl on in the server's \
                 postgresql.conf, or write sslmode=disable for plaintext",
                self.mode.sslmode()
            ),
            None => match e.as_db_error() {
                Some(d)
                    if self.mode == Mode::Plain
                        && *d.code() == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
                {
                    format!(
                        "PostgreSQL {}: {}; if the server takes only TLS connections, write \
                         sslmode=verify-full (and sslrootcert=… when its CA is private)",
                        d.code().code(),
                        d.message()
                    )
                }
                Some(_) => return crate::db(e),
                // tokio-postgres's own text leaves the cause out
                // ("error connecting to server").
                None => said,
            },
        };
        StoreError::with_cause(text, e)
    }

    fn refused_certificate(&self, c: &CertificateError) -> String {
        use CertificateError as C;
        match c {
            C::NotValidForName | C::NotValidForNameContext { .. } => format!(
                "PostgreSQL's TLS certificate is not valid for the host name {}: connect by a \
                 name the certificate holds, or write sslmode=verify-ca to check its CA only",
                self.hosts
            ),
            C::UnknownIssuer | C::BadSignature => format!(
                "PostgreSQL's TLS certificate is not signed by a CA in {}: set sslrootcert to \
                 the file of the CA that signed it",
                self.roots
            ),
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => {
                "PostgreSQL's TLS certificate has expired or is not valid yet: renew it on the \
                 server (or check this machine's clock)"
                    .to_owned()
            }
            other => format!(
                "PostgreSQL's TLS certificate was refused ({other:?}): check the server's \
                 certificate and sslrootcert"
            ),
        }
    }
}

/// An error's text followed by its causes'.
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text = format!("{text}: {cause}");
        next = cause.source();
    }
    text
}

/// The rustls error behind a failed connection, if TLS failed. tokio-rustls
/// wraps it in an `io::Error`, whose `source` skips it, so each
/// `io::Error` on the chain is opened too.
fn rustls_error(e: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|i| i.downcast_ref::<rustls::Error>());
        if inner.is_some() {
            return inner;
        }
        next = err.source();
    }
    None
}

/// The mode for `config`'s hosts, from what the URL asked.
fn decide(asked: &params::TlsParams, config: &tokio_postgres::Config) -> StoreResult<Mode> {
    let sslmode = asked.sslmode.as_deref();
    if let Some(other) = sslmode.filter(|m| {
        !matches!(
            *m,
            "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full"
        )
    }) {
        return Err(StoreError::new(format!(
            "sslmode must be verify-full, verify-ca, require or disable, not {other:?}"
        )));
    }
    let hosts = config.get_hosts();
    let by_address = !config.get_hostaddrs().is_empty();
    let over_tcp = by_address || hosts.iter().any(|h| matches!(h, Host::Tcp(_)));
    if !over_tcp {
        return Ok(Mode::Plain);
    }
    let rootcert = asked.sslrootcert.is_some();
    let mode = match sslmode {
        None if is_loopback(config) && !rootcert => Mode::Plain,
        None | Some("verify-full") => Mode::VerifyFull,
        Some("disable") => Mode::Plain,
        Some("require") if !rootcert => Mode::Encrypt,
        Some("require" | "verify-ca") => Mode::VerifyCa,
        Some(m) => {
            return Err(StoreError::new(format!(
                "sslmode={m} falls back to plaintext when the server offers no TLS, which \
                 Mamori does not do: write sslmode=verify-full (or verify-ca, or require), \
                 or sslmode=disable for plaintext on purpose"
            )))
        }
    };
    let socket_too = !by_address && hosts.iter().any(|h| matches!(h, Host::Unix(_)));
    if mode != Mode::Plain && socket_too {
        return Err(StoreError::new(
            "a database URL that asks for TLS cannot also list a Unix socket, which carries \
             no TLS: list TCP hosts only",
        ));
    }
    Ok(mode)
}

/// Whether every host the connection may reach is this machine.
fn is_loopback(config: &tokio_postgres::Config) -> bool {
    let addresses = config.get_hostaddrs();
    if !addresses.is_empty() {
        return addresses.iter().all(IpAddr::is_loopback);
    }
    config.get_hosts().iter().all(|h| match h {
        Host::Tcp(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        Host::Unix(_) => true,
    })
}

/// rustls's client settings for `mode`, and where its trusted CAs come
/// from (for messages).
fn client_config(mode: Mode, rootcert: Option<&str>) -> StoreResult<(ClientConfig, String)> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(StoreError::from_cause)?;
    let (builder, roots) = match mode {
        // Never used (tokio-postgres starts no TLS then); trusting no CA,
        // it could accept no certificate.
        Mode::Plain => (
            builder.with_root_certificates(RootCertStore::empty()),
            "no CA".to_owned(),
        ),
        Mode::Encrypt => (
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verify::AnyCertificate(provider))),
            "no CA (sslmode=require checks none)".to_owned(),
        ),
        Mode::VerifyCa | Mode::VerifyFull => {
            let (store, roots) = trusted_roots(rootcert)?;
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
                .build()
                .map_err(StoreError::from_cause)?;
            let builder = if mode == Mode::VerifyFull {
                builder.with_webpki_verifier(webpki)
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verify::ChainOnly(webpki)))
            };
            (builder, roots)
        }
    };
    let mut client = builder.with_no_client_auth();
    // What libpq offers since PostgreSQL 17 (direct TLS needs it; an older
    // server ignores it).
    client.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok((client, roots))
}

/// The CAs `sslrootcert` names (a PEM file), or the system's.
fn trusted_roots(rootcert: Option<&str>) -> StoreResult<(RootCertStore, String)> {
    let mut store = RootCertStore::empty();
    let Some(path) = rootcert.filter(|p| *p != "system") else {
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = store.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(StoreError::new(
                "no trusted CA was found on this machine: set sslrootcert to the file of the \
                 CA that signed PostgreSQL's certificate",
            ));
        }
        return Ok((store, "the system's trusted CAs".to_owned()));
    };
    let unreadable = |e: rustls::pki_types::pem::Error| {
        StoreError::new(format!("cannot read sslrootcert {path}: {e}"))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(unreadable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    if certs.is_empty() {
        return Err(StoreError::new(format!(
            "sslrootcert {path} holds no PEM certificate"
        )));
    }
    for cert in certs {
        store
            .add(cert)
            .map_err(|e| StoreError::new(format!("sslrootcert {path}: {e}")))?;
    }
    Ok((store, format!("sslrootcert {path}")))
}

#[cfg(test)]
mod tests;
