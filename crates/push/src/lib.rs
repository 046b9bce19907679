//! APNs delivery of MDM push notifications.
//!
//! [`ApnsPusher`] implements the [`Pusher`] port over the APNs HTTP/2
//! provider API with certificate authentication: for each target it sends
//! `POST /3/device/<hex token>` with `apns-topic`, `apns-push-type: mdm`,
//! `apns-priority: 10` and the body `{"mdm":"<PushMagic>"}`. No
//! `apns-expiration` is sent, so APNs keeps the notification for a device
//! that is offline (a later push replaces it).
//!
//! The push certificate ([`PushCredentials`]) can be installed or replaced
//! at any time; until one is installed, pushes are dropped.

mod credentials;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use mamori_ports::{PushTarget, Pusher};
use rustls_pki_types::CertificateDer;

pub use credentials::{PushCredentials, MDM_TOPIC_PREFIX};

/// Apple's production APNs endpoint (MDM has no sandbox).
pub const DEFAULT_BASE_URL: &str = "https://api.push.apple.com";

/// How many requests are in flight at once by default.
pub const DEFAULT_CONCURRENCY: usize = 64;

/// Timeout of one APNs request by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a push certificate or the pusher could not be set up. The text is
/// safe to show an administrator: it never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The certificate PEM holds no certificate.
    #[error("no certificate found in the certificate PEM")]
    NoCertificate,
    /// The certificate does not parse.
    #[error("certificate unreadable: {0}")]
    BadCertificate(String),
    /// The key does not parse or is of an unsupported type.
    #[error("private key unreadable: {0}")]
    BadKey(String),
    /// The key is not the certificate's.
    #[error("the private key does not match the certificate")]
    KeyMismatch,
    /// The certificate subject has no UID attribute.
    #[error("the certificate subject has no UID (APNs topic); is it an MDM push certificate?")]
    NoTopic,
    /// The UID is not an MDM topic.
    #[error("the certificate topic {0:?} is not an MDM topic (com.apple.mgmt.…)")]
    NotMdmTopic(String),
    /// The base URL is not a usable https URL.
    #[error("bad APNs base URL: {0}")]
    BadUrl(String),
    /// No trusted root certificates are available.
    #[error("no trusted root certificates (none given, none in the system store)")]
    NoRoots,
    /// The TLS or HTTP client could not be built.
    #[error("TLS client: {0}")]
    Tls(String),
}

/// What a push needs once credentials are installed.
struct Active {
    client: reqwest::Client,
    topic: String,
    not_after: time::OffsetDateTime,
}

/// The APNs [`Pusher`].
pub struct ApnsPusher {
    base_url: String,
    extra_roots: Vec<CertificateDer<'static>>,
    concurrency: usize,
    timeout: Duration,
    active: RwLock<Option<Arc<Active>>>,
    warned_unconfigured: AtomicBool,
}

impl std::fmt::Debug for ApnsPusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApnsPusher")
            .field("base_url", &self.base_url)
            .field("extra_roots", &self.extra_roots.len())
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .field("topic", &self.topic())
            .finish()
    }
}

impl ApnsPusher {
    /// A pusher for `base_url` (e.g. [`DEFAULT_BASE_URL`]), without
    /// credentials. The APNs server is authenticated against `extra_roots`,
    /// or against the operating system's trust store when that is empty.
    pub fn new(
        base_url: &str,
        extra_roots: Vec<CertificateDer<'static>>,
    ) -> Result<Self, PushError> {
        let url = reqwest::Url::parse(base_url).map_err(|e| PushError::BadUrl(e.to_string()))?;
        if url.scheme() != "https" || url.host_str().is_none() {
            return Err(PushError::BadUrl("must be an https URL with a host".into()));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(PushError::BadUrl(
                "must not have a query or fragment".into(),
            ));
        }
        Ok(Self {
            base_url: url.as_str().trim_end_matches('/').to_owned(),
            extra_roots,
            concurrency: DEFAULT_CONCURRENCY,
            timeout: DEFAULT_TIMEOUT,
            active: RwLock::new(None),
            warned_unconfigured: AtomicBool::new(false),
        })
    }

    /// Sets how many requests may be in flight at once (at least 1).
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Sets the timeout of one request (connect, send and response).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The base URL requests go to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Installs (or replaces) the push certificate. Pushes already under
    /// way finish with the previous one.
    pub fn set_credentials(&self, credentials: PushCredentials) -> Result<(), PushError> {
        let config = credentials::client_config(&credentials, self.roots()?)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .http2_prior_knowledge()
            .https_only(true)
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| PushError::Tls(e.to_string()))?;
        let active = Arc::new(Active {
            client,
            topic: credentials.topic().to_owned(),
            not_after: credentials.not_after(),
        });
        *self.active.write().unwrap_or_else(PoisonError::into_inner) = Some(active);
        self.warned_unconfigured.store(false, Ordering::Relaxed);
        tracing::info!(
            topic = %credentials.topic(),
            not_after = %credentials.not_after(),
            "APNs push certificate installed"
        );
        Ok(())
    }

    /// Removes the push certificate; pushes are dropped until a new one is
    /// installed.
    pub fn clear_credentials(&self) {
        *self.active.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The topic of the installed push certificate, if any.
    pub fn topic(&self) -> Option<String> {
        self.current().map(|a| a.topic.clone())
    }

    /// When the installed push certificate expires, if one is installed.
    pub fn not_after(&self) -> Option<time::OffsetDateTime> {
        self.current().map(|a| a.not_after)
    }

    fn current(&self) -> Option<Arc<Active>> {
        self.active
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn roots(&self) -> Result<rustls::RootCertStore, PushError> {
        let mut roots = rustls::RootCertStore::empty();
        if self.extra_roots.is_empty() {
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::debug!(error = %e, "system trust store");
            }
            let (added, ignored) = roots.add_parsable_certificates(native.certs);
            if ignored > 0 {
                tracing::debug!(added, ignored, "system trust store certificates");
            }
        } else {
            let (_, ignored) = roots.add_parsable_certificates(self.extra_roots.iter().cloned());
            if ignored > 0 {
                tracing::warn!(ignored, "unusable APNs root certificates ignored");
            }
        }
        if roots.is_empty() {
            return Err(PushError::NoRoots);
        }
        Ok(roots)
    }

    /// Sends one notification; true when APNs accepted it.
    async fn push_one(&self, active: &Active, target: &PushTarget) -> bool {
        let token = hex::encode(&target.token);
        let token_prefix = token.get(..8).unwrap_or(&token);
        if target.token.is_empty() || target.push_magic.is_empty() {
            tracing::warn!(device = %target.device, "push skipped: no token or PushMagic");
            return false;
        }
        // The topic is the certificate's; a device enrolled under another
        // certificate cannot be reached with this one.
        if !target.topic.is_empty() && target.topic != active.topic {
            tracing::warn!(
                device = %target.device,
                device_topic = %target.topic,
                topic = %active.topic,
                "push skipped: device enrolled under another push topic"
            );
            return false;
        }
        let url = format!("{}/3/device/{token}", self.base_url);
        let result = active
            .client
            .post(url)
            .header("apns-topic", active.topic.as_str())
            .header("apns-push-type", "mdm")
            .header("apns-priority", "10")
            .json(&serde_json::json!({ "mdm": target.push_magic }))
            .send()
            .await;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                // The URL holds the full token: keep it out of the log.
                tracing::warn!(
                    device = %target.device,
                    token = %token_prefix,
                    error = %error_chain(&e.without_url()),
                    "APNs request failed"
                );
                return false;
            }
        };
        let status = response.status();
        if status == reqwest::StatusCode::OK {
            tracing::debug!(device = %target.device, token = %token_prefix, "APNs accepted push");
            return true;
        }
        let apns_id = response
            .headers()
            .get("apns-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let reason = match response.bytes().await {
            Ok(body) => serde_json::from_slice::<ApnsErrorBody>(&body)
                .map(|b| b.reason)
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        tracing::warn!(
            device = %target.device,
            token = %token_prefix,
            status = status.as_u16(),
            reason = %reason,
            apns_id = %apns_id,
            "APNs refused push"
        );
        false
    }
}

/// The error and its causes, `: `-separated.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[derive(serde::Deserialize)]
struct ApnsErrorBody {
    #[serde(default)]
    reason: String,
}

#[async_trait]
impl Pusher for ApnsPusher {
    async fn push(&self, targets: &[PushTarget]) -> usize {
        if targets.is_empty() {
            return 0;
        }
        let Some(active) = self.current() else {
            if !self.warned_unconfigured.swap(true, Ordering::Relaxed) {
                tracing::warn!("no APNs push certificate installed: pushes are dropped");
            } else {
                tracing::debug!(count = targets.len(), "pushes dropped: no push certificate");
            }
            return 0;
        };
        let active = &*active;
        // Built up front: a lazily mapped stream trips rust-lang/rust#102211
        // (higher-ranked lifetimes) inside the `Send` future async_trait needs.
        let sends: Vec<_> = targets.iter().map(|t| self.push_one(active, t)).collect();
        let accepted = futures::stream::iter(sends)
            .buffer_unordered(self.concurrency)
            .fold(0usize, |n, ok| std::future::ready(n + usize::from(ok)))
            .await;
        tracing::debug!(accepted, total = targets.len(), "APNs push round done");
        accepted
    }

    fn configure(&self, cert_pem: &str, key_pem: &str) -> Result<String, String> {
        let credentials = PushCredentials::parse(cert_pem, key_pem).map_err(|e| e.to_string())?;
        let topic = credentials.topic().to_owned();
        self.set_credentials(credentials)
            .map_err(|e| e.to_string())?;
        Ok(topic)
    }

    fn topic(&self) -> Option<String> {
        ApnsPusher::topic(self)
    }

    fn check(
        &self,
        cert_pem: &str,
        key_pem: &str,
    ) -> Result<(String, time::OffsetDateTime), String> {
        PushCredentials::parse(cert_pem, key_pem)
            .map(|c| (c.topic().to_owned(), c.not_after()))
            .map_err(|e| e.to_string())
    }

    fn expires_at(&self) -> Option<time::OffsetDateTime> {
        self.not_after()
    }
}
