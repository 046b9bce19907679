//! The check-in messages, one method each.

use super::*;
use mamori_ports::IdentityChange;

impl Services {
    /// `Authenticate`: the device (or user enrollment) presents itself
    /// with the identity it just obtained.
    pub(super) async fn checkin_authenticate(
        &self,
        cert: &DeviceCertificate,
        source: Option<IpAddr>,
        mut rec: AuthenticateRecord,
    ) -> CoreResult<DeviceReply> {
        Self::authorize_device(cert, &rec.device, true)?;
        self.observe_device_source(&rec.device, source).await?;
        rec.fields.device_name = rec
            .fields
            .device_name
            .take()
            .map(|n| self.seal_device_text(&rec.device, "device_name", &n))
            .transpose()?;
        self.authenticate(cert, rec, source).await?;
        Ok(DeviceReply::default())
    }

    /// `TokenUpdate`: the device's (or user channel's) push token, magic
    /// and unlock token; held for a re-enrollment waiting for approval.
    pub(super) async fn token_update(
        &self,
        cert: &DeviceCertificate,
        now: OffsetDateTime,
        ident: Ident,
        topic: String,
        push: PendingPush,
        unlock_token: Option<Vec<u8>>,
    ) -> CoreResult<DeviceReply> {
        let key = device_key(&ident)?;
        let held = match ident.user_id {
            None => self.held_for(cert, &key).await?,
            Some(_) => None,
        };
        if held.is_none() {
            Self::authorize_device(cert, &key, false)?;
        }
        let sealed_unlock = match &unlock_token {
            Some(tok) => Some(
                self.pki
                    .secret_box
                    .seal(tok, Some(key.as_str().as_bytes()))
                    .map_err(|e| CoreError::Internal(e.into()))?,
            ),
            None => None,
        };
        let push = PendingPush {
            sealed_unlock_token: sealed_unlock,
            ..push
        };
        if held.is_some() {
            self.held_token_update(cert, push).await?;
            return Ok(DeviceReply::default());
        }
        let rec = TokenUpdateRecord {
            device: key.clone(),
            user_id: ident.user_id.clone(),
            push_token: push.token,
            push_magic: push.magic,
            topic,
            sealed_unlock_token: push.sealed_unlock_token,
            now,
        };
        if !self.ports.device.token_update(&rec).await? {
            if rec.user_id.is_some() {
                tracing::warn!(device = %key, "user-channel TokenUpdate refused: device not enrolled, or it has {} user channels already", mamori_ports::MAX_USER_CHANNELS);
                return Err(CoreError::Forbidden(
                    "device is not enrolled, or has too many user channels".into(),
                ));
            }
            tracing::warn!(device = %key, "TokenUpdate for a device that is not enrolled");
            return Err(CoreError::Forbidden("device is not enrolled".into()));
        }
        tracing::info!(device = %key, user_channel = ident.user_id.is_some(), "token update");
        Ok(DeviceReply::default())
    }

    /// `CheckOut`: the MDM profile was removed; the device's identity ends.
    pub(super) async fn checked_out(
        &self,
        cert: &DeviceCertificate,
        source: Option<IpAddr>,
        now: OffsetDateTime,
        ident: &Ident,
    ) -> CoreResult<DeviceReply> {
        let key = device_key(ident)?;
        if let Some(held) = self.held_for(cert, &key).await? {
            self.held_checked_out(&held).await?;
            tracing::info!(device = %key, "held identity checked out");
            return Ok(DeviceReply::default());
        }
        Self::authorize_device(cert, &key, false)?;
        if ident.user_id.is_some() {
            tracing::info!(device = %key, "user channel checked out");
            return Ok(DeviceReply::default());
        }
        self.audit(self.device_event(&key, source, AuditAction::DeviceCheckout, None))
            .await?;
        self.ports.device.check_out(&key, now).await?;
        self.ports
            .device
            .delete_secret(&bootstrap_name(&key))
            .await?;
        let revoked = self
            .ports
            .device
            .revoke_device_certificates(&key, now)
            .await?;
        self.identity_changed(IdentityChange::Device(key.clone()))
            .await;
        tracing::info!(device = %key, revoked, "device checked out");
        Ok(DeviceReply::default())
    }

    /// `SetBootstrapToken`: the token escrowed, sealed (or cleared).
    pub(super) async fn escrow_bootstrap_token(
        &self,
        cert: &DeviceCertificate,
        source: Option<IpAddr>,
        now: OffsetDateTime,
        ident: &Ident,
        token: Option<Vec<u8>>,
    ) -> CoreResult<DeviceReply> {
        let key = device_key(ident)?;
        Self::authorize_device(cert, &key, false)?;
        self.require_enrolled(&key).await?;
        self.audit(
            self.device_event(
                &key,
                source,
                AuditAction::DeviceBootstrapToken,
                Some(
                    if token.is_none() {
                        "cleared"
                    } else {
                        "escrowed"
                    }
                    .into(),
                ),
            ),
        )
        .await?;
        let sealed = self
            .pki
            .secret_box
            .seal(
                token.as_deref().unwrap_or_default(),
                Some(bootstrap_name(&key).as_bytes()),
            )
            .map_err(|e| CoreError::Internal(e.into()))?;
        self.ports
            .device
            .put_secret(&bootstrap_name(&key), &sealed, now)
            .await?;
        tracing::info!(device = %key, cleared = token.is_none(), "bootstrap token escrowed");
        Ok(DeviceReply::default())
    }

    /// `GetBootstrapToken`: the escrowed token, if any.
    pub(super) async fn bootstrap_token_of(
        &self,
        cert: &DeviceCertificate,
        source: Option<IpAddr>,
        ident: &Ident,
    ) -> CoreResult<DeviceReply> {
        let key = device_key(ident)?;
        Self::authorize_device(cert, &key, false)?;
        self.require_enrolled(&key).await?;
        self.audit(self.device_event(
            &key,
            source,
            AuditAction::DeviceBootstrapToken,
            Some("requested".into()),
        ))
        .await?;
        let name = bootstrap_name(&key);
        let token = match self.ports.device.secret(&name).await? {
            Some(sealed) => self
                .pki
                .secret_box
                .open(&sealed, Some(name.as_bytes()))
                .map_err(|e| CoreError::Internal(e.into()))?
                .to_vec(),
            None => Vec::new(),
        };
        tracing::info!(device = %key, found = !token.is_empty(), "bootstrap token requested");
        if token.is_empty() {
            return Ok(DeviceReply::default());
        }
        Ok(DeviceReply {
            body: mamori_protocol::reply::bootstrap_token(token),
        })
    }
}
