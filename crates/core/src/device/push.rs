//! The MDM push certificate: installed through the API or CLI, kept sealed in
//! the database, reloaded at start.

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

impl Services {
    /// Validates and installs a push certificate; returns its APNs topic.
    pub async fn set_push_certificate(
        &self,
        by: &Authorized<SettingsWrite>,
        ctx: &ClientContext,
        cert_pem: &str,
        key_pem: &str,
    ) -> CoreResult<String> {
        let topic = self.pusher.configure(cert_pem, key_pem).map_err(|e| {
            tracing::warn!(reason = %e, "push certificate refused");
            CoreError::BadRequest(format!("push certificate refused: {e}"))
        })?;
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

    /// Loads the stored push certificate into the pusher, if there is one.
    pub async fn load_push_certificate(&self) -> CoreResult<Option<String>> {
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
        let topic = self
            .pusher
            .configure(&stored.cert_pem, &key)
            .map_err(|e| CoreError::Internal(e.into()))?;
        Ok(Some(topic))
    }
}
