//! The MDM push certificate: installed through the API or CLI, kept sealed in
//! the database, loaded at start and followed while the server runs (one
//! installed or renewed through another server is loaded within seconds).

use crate::access::permit::SettingsWrite;
use crate::access::{Authorized, ClientContext};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AuditAction, Outcome};
use zeroize::Zeroizing;

const SECRET_NAME: &str = "push-certificate";

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredPushCert {
    cert_pem: String,
    key_pem: String,
}

/// A certificate signing request made here that waits for its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingPush {
    /// Its PEM, to copy or download again.
    Request(String),
    /// Made by an older build, which kept only the key.
    KeyOnly,
    /// Kept, but it cannot be opened (sealed under another data key): a
    /// new request replaces it.
    Unreadable,
}

/// A request made here waiting for its certificate: the key (it never
/// leaves the server) and the request, to show again.
#[derive(serde::Serialize, serde::Deserialize)]
struct PendingRequest {
    key_pem: String,
    csr_pem: String,
}

impl Drop for PendingRequest {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key_pem);
    }
}

/// What a server last loaded of the stored push certificate, to follow it
/// when another server installs or renews one.
#[derive(Debug, Default)]
pub struct PushFollower {
    /// The digest of the sealed certificate last seen.
    seen: Option<[u8; 32]>,
}

/// Serialises installs of a push certificate in this process.
static INSTALLING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Services {
    /// Validates and installs a push certificate; returns its APNs topic.
    pub async fn set_push_certificate(
        &self,
        by: &Authorized<SettingsWrite>,
        ctx: &ClientContext,
        cert_pem: &str,
        key_pem: &str,
    ) -> CoreResult<String> {
        let refused = |e: String| {
            tracing::warn!(reason = %e, "push certificate refused");
            CoreError::BadRequest(format!("push certificate refused: {e}"))
        };
        // One install at a time: the topic check and the install are one step.
        let _one = INSTALLING.lock().await;
        let (topic, ends) = self.pusher.check(cert_pem, key_pem).map_err(refused)?;
        if ends <= self.clock.now() {
            return Err(refused("it has expired".into()));
        }
        // Devices are bound to the topic they enrolled with: a certificate
        // for another topic would cut every one of them off. The installed
        // one is the stored one (another server, or the command line, may
        // have installed it since this one loaded its own).
        let current = match self.push_topic_at_rest().await? {
            Some(t) => Some(t),
            None => self.pusher.topic(),
        };
        if let Some(current) = current.filter(|t| *t != topic) {
            return Err(refused(format!(
                "it is for topic {topic}, but the devices enrolled with {current}: renew the \
                 installed certificate (Apple Push Certificates Portal, Renew, with the same \
                 Apple ID) instead of making a new one"
            )));
        }
        let topic = self.pusher.configure(cert_pem, key_pem).map_err(refused)?;
        let plain = Zeroizing::new(
            serde_json::to_vec(&StoredPushCert {
                cert_pem: cert_pem.to_owned(),
                key_pem: key_pem.to_owned(),
            })
            .map_err(|e| CoreError::Internal(e.into()))?,
        );
        let sealed = self
            .pki
            .secret_box
            .seal(&plain, Some(SECRET_NAME.as_bytes()))
            .map_err(|e| CoreError::Internal(e.into()))?;
        self.ports
            .device
            .put_secret(SECRET_NAME, &sealed, self.clock.now())
            .await?;
        tracing::info!(topic = %topic, "push certificate installed");
        self.audit(
            self.audit_record(
                &by.label(),
                ctx,
                AuditAction::SettingsPushCertificate,
                Outcome::Success,
            )
            .target(&topic),
        )
        .await?;
        Ok(topic)
    }

    /// The APNs topic of the installed push certificate; None without one
    /// (then no device is woken: commands wait for its own check-in).
    pub fn push_topic(&self) -> Option<String> {
        self.pusher.topic()
    }

    /// When the installed push certificate expires (None without one).
    pub fn push_expires_at(&self) -> Option<time::OffsetDateTime> {
        self.pusher.expires_at()
    }

    /// The topic of the stored push certificate, without installing it.
    async fn push_topic_at_rest(&self) -> CoreResult<Option<String>> {
        let Some(sealed) = self.ports.device.secret(SECRET_NAME).await? else {
            return Ok(None);
        };
        let plain = Zeroizing::new(
            self.pki
                .secret_box
                .open(&sealed, Some(SECRET_NAME.as_bytes()))
                .map_err(|e| CoreError::internal("push certificate unreadable", e))?,
        );
        let stored: StoredPushCert =
            serde_json::from_slice(&plain).map_err(|e| CoreError::Internal(e.into()))?;
        let key = Zeroizing::new(stored.key_pem);
        Ok(self
            .pusher
            .check(&stored.cert_pem, &key)
            .ok()
            .map(|(topic, _)| topic))
    }

    /// Loads the stored push certificate into the pusher (at start, with a
    /// new follower) if it changed since `follower` last saw it (installed or renewed through another
    /// server on the database, or the command line): its topic when it
    /// loaded one. A stored certificate that cannot be loaded is an error
    /// once, not again until it changes.
    pub async fn follow_push_certificate(
        &self,
        follower: &mut PushFollower,
    ) -> CoreResult<Option<String>> {
        let Some(sealed) = self.ports.device.secret(SECRET_NAME).await? else {
            return Ok(None);
        };
        let seen = mamori_crypto::sha256(&sealed);
        if follower.seen == Some(seen) {
            return Ok(None);
        }
        follower.seen = Some(seen);
        let plain = Zeroizing::new(
            self.pki
                .secret_box
                .open(&sealed, Some(SECRET_NAME.as_bytes()))
                .map_err(|e| CoreError::internal("push certificate unreadable", e))?,
        );
        let stored: StoredPushCert =
            serde_json::from_slice(&plain).map_err(|e| CoreError::Internal(e.into()))?;
        let key = Zeroizing::new(stored.key_pem);
        let topic = self
            .pusher
            .configure(&stored.cert_pem, &key)
            .map_err(|e| CoreError::Internal(e.into()))?;
        Ok(Some(topic))
    }

    /// Starts a push certificate (or its renewal) from this server: a new
    /// RSA-2048 key, kept here sealed (it never leaves the server), and
    /// its certificate signing request (PEM) to have signed for Apple's
    /// Push Certificates Portal. A new request replaces one still pending.
    pub async fn push_certificate_request(
        &self,
        by: &Authorized<SettingsWrite>,
        ctx: &ClientContext,
    ) -> CoreResult<String> {
        let key = tokio::task::spawn_blocking(mamori_crypto::RsaPrivateKey::generate_2048)
            .await
            .map_err(|e| CoreError::internal("key generation", e))?
            .map_err(|e| CoreError::internal("key generation", e))?;
        let der = mamori_protocol::csr::build_csr(&key, "Mamori MDM push certificate", None)
            .map_err(|e| CoreError::internal("push certificate request", e))?;
        let csr_pem = mamori_protocol::csr::csr_to_pem(&der);
        // Written into a buffer large enough from the start: a growing one
        // would leave copies of the key in memory it freed.
        let mut pending = Zeroizing::new(Vec::with_capacity(16 * 1024));
        serde_json::to_writer(
            &mut *pending,
            &PendingRequest {
                key_pem: key.to_pkcs8_pem().to_string(),
                csr_pem: csr_pem.clone(),
            },
        )
        .map_err(|e| CoreError::Internal(e.into()))?;
        let sealed = self
            .pki
            .secret_box
            .seal(&pending, Some(PENDING_NAME.as_bytes()))
            .map_err(|e| CoreError::Internal(e.into()))?;
        self.audit(
            self.audit_record(
                &by.label(),
                ctx,
                AuditAction::SettingsPushCertificate,
                Outcome::Success,
            )
            .detail("certificate signing request made; its key kept sealed here"),
        )
        .await?;
        self.ports
            .device
            .put_secret(PENDING_NAME, &sealed, self.clock.now())
            .await?;
        Ok(csr_pem)
    }

    /// The certificate signing request made here that waits for its
    /// certificate, if one does.
    pub async fn push_request_pending(
        &self,
        _by: &Authorized<SettingsWrite>,
    ) -> CoreResult<Option<PendingPush>> {
        let pending = match self.pending_request().await {
            Ok(p) => p,
            // Sealed under another data key (a restore elsewhere, say): the
            // page must still load, and a new request replace it.
            Err(CoreError::Internal(e)) => {
                tracing::warn!(cause = %e, "the pending push certificate request cannot be read");
                return Ok(Some(PendingPush::Unreadable));
            }
            Err(e) => return Err(e),
        };
        Ok(pending.map(|mut p| match std::mem::take(&mut p.csr_pem) {
            csr if csr.is_empty() => PendingPush::KeyOnly,
            csr => PendingPush::Request(csr),
        }))
    }

    /// The pending request's key and CSR, opened.
    async fn pending_request(&self) -> CoreResult<Option<PendingRequest>> {
        let Some(sealed) = self.ports.device.secret(PENDING_NAME).await? else {
            return Ok(None);
        };
        let plain = Zeroizing::new(
            self.pki
                .secret_box
                .open(&sealed, Some(PENDING_NAME.as_bytes()))
                .map_err(|e| CoreError::internal("pending push key unreadable", e))?,
        );
        if let Ok(p) = serde_json::from_slice::<PendingRequest>(&plain) {
            return Ok(Some(p));
        }
        // An older build kept the key's PEM alone.
        let key_pem = String::from_utf8(plain.to_vec())
            .map_err(|e| CoreError::internal("pending push key", e))?;
        Ok(Some(PendingRequest {
            key_pem,
            csr_pem: String::new(),
        }))
    }

    /// Installs the certificate Apple issued for the request made here,
    /// with the key kept for it (see [`Self::set_push_certificate`] for the
    /// checks, the topic rule included). The pending key is then forgotten.
    pub async fn install_requested_push_certificate(
        &self,
        by: &Authorized<SettingsWrite>,
        ctx: &ClientContext,
        cert_pem: &str,
    ) -> CoreResult<String> {
        let Some(pending) = self.pending_request().await? else {
            return Err(CoreError::Conflict(
                "no certificate signing request made here waits for its certificate; make one \
                 first, or upload the certificate with its private key"
                    .into(),
            ));
        };
        let mut pending = pending;
        let key_pem = Zeroizing::new(std::mem::take(&mut pending.key_pem));
        let topic = self
            .set_push_certificate(by, ctx, cert_pem, &key_pem)
            .await?;
        self.ports.device.delete_secret(PENDING_NAME).await?;
        Ok(topic)
    }
}

/// Where a key made for a push certificate request waits for its
/// certificate.
const PENDING_NAME: &str = "push-certificate-request";
