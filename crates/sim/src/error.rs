//! The simulator's error type.

/// Everything that can go wrong while simulating a device.
///
/// Server refusals carry the HTTP status ([`SimError::status`]) so tests can
/// assert on e.g. `Some(401)` without matching on message text.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The enrollment profile (or an `InstallProfile` payload) is unusable.
    #[error("invalid profile: {0}")]
    Profile(String),
    /// No TLS trust anchor: the profile has no `com.apple.security.root`
    /// payload and none was given explicitly, but a URL is `https`.
    #[error("no TLS CA: the profile has no root certificate payload and none was given")]
    NoTlsCa,
    /// A TLS CA certificate (PEM or DER) could not be parsed.
    #[error("invalid TLS CA certificate: {0}")]
    TlsCa(String),
    /// The rustls / reqwest client could not be configured.
    #[error("TLS client configuration: {0}")]
    TlsConfig(String),
    /// Connection, TLS handshake, timeout or body transfer failure.
    #[error("{op}: transport error: {source}")]
    Transport {
        /// What the simulator was doing (e.g. `"SCEP GetCACert"`, `"connect"`).
        op: &'static str,
        /// The underlying reqwest error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an unexpected HTTP status.
    #[error("{op}: server answered HTTP {status}")]
    Http {
        /// What the simulator was doing.
        op: &'static str,
        /// HTTP status code.
        status: u16,
        /// Response body (lossy UTF-8, truncated to 1 KiB).
        body: String,
    },
    /// A SCEP exchange failed (bad CA certificates, malformed CertRep...).
    #[error("SCEP: {0}")]
    Scep(String),
    /// The SCEP server answered `PENDING`.
    #[error("SCEP request is pending")]
    ScepPending,
    /// The SCEP server answered `FAILURE` with the given failInfo.
    #[error("SCEP request rejected: {0}")]
    ScepFailure(String),
    /// A CMS / SCEP / CSR building block of `mamori-protocol` failed.
    #[error(transparent)]
    Pki(#[from] mamori_protocol::cms::PkiError),
    /// A key or certificate operation of `mamori-crypto` failed.
    #[error(transparent)]
    Crypto(#[from] mamori_crypto::CryptoError),
    /// A plist could not be encoded or decoded.
    #[error("plist: {0}")]
    Plist(String),
    /// The server's answer was not what the MDM protocol prescribes.
    #[error("invalid server response: {0}")]
    BadResponse(String),
    /// The operation needs an identity certificate: call `enroll` first.
    #[error("device is not enrolled")]
    NotEnrolled,
    /// The device acknowledged `EraseDevice` and no longer talks to the server.
    #[error("device has been erased")]
    Erased,
    /// The server kept sending commands beyond `SimOptions::max_commands`.
    #[error("server sent more than {0} commands in one session")]
    TooManyCommands(usize),
}

impl SimError {
    /// The HTTP status of a server refusal, if this error is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            SimError::Http { status, .. } => Some(*status),
            SimError::Transport { source, .. } => source.status().map(|s| s.as_u16()),
            _ => None,
        }
    }

    pub(crate) fn transport(op: &'static str) -> impl FnOnce(reqwest::Error) -> SimError {
        move |source| SimError::Transport { op, source }
    }

    pub(crate) fn http(op: &'static str, status: u16, body: &[u8]) -> SimError {
        let cut = body.len().min(1024);
        SimError::Http {
            op,
            status,
            body: String::from_utf8_lossy(body.get(..cut).unwrap_or_default()).into_owned(),
        }
    }
}

impl From<plist::Error> for SimError {
    fn from(e: plist::Error) -> Self {
        SimError::Plist(e.to_string())
    }
}

/// Result alias with [`SimError`].
pub type Result<T> = std::result::Result<T, SimError>;
