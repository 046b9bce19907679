//! The check-in and connect endpoints' use-cases.

mod messages;

use crate::device::identity::Evidence;
use crate::{CoreError, CoreResult, Services};
use mamori_domain::AuditAction;
use mamori_domain::{
    log_safe, CommandState, CommandUuid, DeviceCertificate, DeviceKey, EnrollmentStatus,
};
use mamori_ports::IdentityChange;
use mamori_ports::{
    AuthenticateRecord, ClearedAssignment, InventoryFields, InventoryKind, PendingPush,
    ResultOutcome, TokenUpdateRecord,
};
use mamori_protocol::checkin::{CheckinMessage, Ident};
use mamori_protocol::connect::{CommandStatus, ConnectRequest};
use mamori_protocol::results::{self, InventoryResult};
use std::net::IpAddr;
use time::OffsetDateTime;

/// An answer to a device: HTTP 200 with this body (empty means "nothing").
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DeviceReply {
    /// Response body (an XML plist, or empty).
    pub body: Vec<u8>,
}

/// Whether an error means the device's request was refused (rather than
/// the server failing).
fn is_rejection(e: &CoreError) -> bool {
    matches!(
        e,
        CoreError::Unauthorized
            | CoreError::Forbidden(_)
            | CoreError::BadRequest(_)
            | CoreError::NotFound(_)
    )
}

impl Services {
    /// Handles one check-in message; a refused one is audited.
    pub async fn checkin(&self, ev: Evidence<'_>, body: &[u8]) -> CoreResult<DeviceReply> {
        let source = ev.source;
        let r = self.checkin_inner(ev, body).await;
        self.note_refusal(source, "checkin", r).await
    }

    // Length: the dispatch over every check-in message type, one short arm
    // each after the one authentication that precedes them all.
    async fn checkin_inner(&self, ev: Evidence<'_>, body: &[u8]) -> CoreResult<DeviceReply> {
        let source = ev.source;
        // Authenticate the raw bytes before decoding them: a client that
        // holds no certificate of ours never reaches the plist decoder.
        let (cert, _) = self.device_certificate(ev, body).await?;
        let msg = mamori_protocol::checkin::parse_checkin(body).map_err(|e| {
            tracing::warn!(reason = %log_safe(&e.to_string()), fingerprint = %cert.fingerprint, "check-in message refused");
            CoreError::BadRequest(format!("invalid check-in message: {e}"))
        })?;
        let now = self.clock.now();
        match msg {
            CheckinMessage::Authenticate {
                udid,
                enrollment_id,
                topic,
                serial_number,
                model,
                model_name,
                device_name,
                os_version,
                build_version,
                product_name,
                ..
            } => {
                // The device name is sealed once the identity is checked.
                let rec = AuthenticateRecord {
                    device: device_key_of(udid.as_deref(), enrollment_id.as_deref())?,
                    enrollment_id,
                    topic,
                    fields: InventoryFields {
                        serial_number,
                        model,
                        model_name,
                        product_name,
                        device_name,
                        os_version,
                        build_version,
                    },
                    now,
                };
                self.checkin_authenticate(&cert, source, rec).await
            }
            CheckinMessage::TokenUpdate {
                ident,
                topic,
                token,
                push_magic,
                unlock_token,
                ..
            } => {
                let push = PendingPush {
                    token,
                    magic: push_magic,
                    sealed_unlock_token: None,
                };
                self.token_update(&cert, now, ident, topic, push, unlock_token)
                    .await
            }
            CheckinMessage::CheckOut { ident, .. } => {
                self.checked_out(&cert, source, now, &ident).await
            }
            CheckinMessage::UserAuthenticate { ident, .. } => {
                let key = device_key(&ident)?;
                Self::authorize_device(&cert, &key, false)?;
                // An empty DigestChallenge tells the device no AuthToken is
                // needed for this user (Apple: User Authenticate).
                Ok(DeviceReply {
                    body: mamori_protocol::reply::no_digest_challenge(),
                })
            }
            CheckinMessage::SetBootstrapToken { ident, token } => {
                self.escrow_bootstrap_token(&cert, source, now, &ident, token)
                    .await
            }
            CheckinMessage::GetBootstrapToken { ident } => {
                self.bootstrap_token_of(&cert, source, &ident).await
            }
            other => {
                if let Some(ident) = other.ident() {
                    let key = device_key(ident)?;
                    Self::authorize_device(&cert, &key, false)?;
                }
                let kind = other.message_type();
                tracing::warn!(message_type = %log_safe(kind), "unsupported check-in message type");
                Err(CoreError::BadRequest(format!(
                    "unsupported check-in message type {kind}"
                )))
            }
        }
    }

    /// Handles one connect request: records the result it carries and
    /// returns the next command, if any. A refused one is audited.
    pub async fn connect(&self, ev: Evidence<'_>, body: &[u8]) -> CoreResult<DeviceReply> {
        let source = ev.source;
        let r = self.connect_inner(ev, body).await;
        self.note_refusal(source, "connect", r).await
    }

    /// Records a refused device request (the answer stays what it was).
    async fn note_refusal(
        &self,
        source: Option<IpAddr>,
        what: &str,
        r: CoreResult<DeviceReply>,
    ) -> CoreResult<DeviceReply> {
        if let Err(e) = &r {
            if is_rejection(e) {
                self.device_rejected(source, what, e).await;
            }
        }
        r
    }

    async fn connect_inner(&self, ev: Evidence<'_>, body: &[u8]) -> CoreResult<DeviceReply> {
        let source = ev.source;
        // As for check-in: the certificate first, the decoder second.
        let (cert, _) = self.device_certificate(ev, body).await?;
        let req = mamori_protocol::connect::parse_connect(body).map_err(|e| {
            tracing::warn!(reason = %log_safe(&e.to_string()), fingerprint = %cert.fingerprint, "connect request refused");
            CoreError::BadRequest(format!("invalid connect request: {e}"))
        })?;
        let key = device_key(&req.ident)?;
        if self.held_for(&cert, &key).await?.is_some() {
            // A held identity (`crate::device::reenroll`) receives nothing.
            tracing::debug!(device = %key, "connect from a held identity: nothing to send");
            return Ok(DeviceReply::default());
        }
        // A certificate bound to this enrollment and unrevoked means the
        // enrollment is live: CheckOut and re-enrollment revoke certificates.
        Self::authorize_device(&cert, &key, false)?;
        self.observe_device_source(&key, source).await?;
        let now = self.clock.now();
        if self.identities.should_touch(&key) {
            self.ports.device.touch(&key, now).await?;
        }
        if req.ident.user_id.is_some() {
            // The user channel has no queue of its own yet: nothing to send.
            return Ok(DeviceReply::default());
        }
        if req.status != CommandStatus::Idle {
            self.record_result(&key, &req, source).await?;
        }
        let include_not_now = req.status == CommandStatus::Idle;
        match self
            .ports
            .device
            .next_command(&key, include_not_now, now)
            .await?
        {
            Some(cmd) => {
                tracing::debug!(device = %key, command = %cmd.command_uuid, "command delivered");
                Ok(DeviceReply {
                    body: self.open_command(&cmd.command_uuid, cmd.payload)?,
                })
            }
            None => Ok(DeviceReply::default()),
        }
    }

    /// Records an Authenticate. A new identity for an enrollment whose
    /// current identity is live is held for approval instead
    /// (`crate::device::reenroll`); otherwise the enrollment starts afresh with it,
    /// unassigned.
    async fn authenticate(
        &self,
        cert: &DeviceCertificate,
        rec: AuthenticateRecord,
        source: Option<IpAddr>,
    ) -> CoreResult<()> {
        let key = rec.device.clone();
        let new_identity = cert.device.is_none();
        let mut cleared = String::new();
        if new_identity {
            let held_here = self.check_hold_target(cert, &key, source).await?;
            if self.enrollment_is_live(&key).await? {
                return self.hold_reenrollment(cert, rec, source, held_here).await;
            }
            cleared = self.assignment_to_clear(&key).await?;
        }
        // Recorded before it takes effect (fail closed).
        self.audit(self.device_event(
            &key,
            source,
            AuditAction::DeviceEnroll,
            Some(format!(
                "identity={}{}{cleared}",
                crate::device::reenroll::short(&cert.fingerprint),
                if new_identity { " new" } else { "" }
            )),
        ))
        .await?;
        if new_identity {
            // A new enrollment starts unassigned: whoever enrolled the
            // device before, its person and static groups (and with them
            // their Wi-Fi and VPN profiles) are not inherited. Cleared in
            // the Authenticate's own transaction.
            let done = self.ports.device.authenticate_anew(&rec).await?;
            // Nor its escrowed bootstrap token: an ended enrollment (erased,
            // retired) may still hold one, and GetBootstrapToken would hand
            // it to whoever enrolled next with the UDID.
            self.ports
                .device
                .delete_secret(&bootstrap_name(&key))
                .await?;
            if done != ClearedAssignment::default() {
                tracing::warn!(device = %key, person = done.person, static_groups = done.static_groups, "new enrollment: the earlier enrollment's assignment was cleared");
            }
        } else {
            self.ports.device.authenticate(&rec).await?;
        }
        if new_identity {
            // The earlier enrollment has ended (nothing live): whatever
            // certificates it left stop working.
            let revoked = self
                .ports
                .device
                .revoke_device_certificates(&key, rec.now)
                .await?;
            self.identity_changed(IdentityChange::Device(key.clone()))
                .await;
            if revoked > 0 {
                tracing::warn!(device = %key, revoked, "device re-enrolled; its previous identity certificates were revoked");
            }
            self.ports
                .device
                .bind_certificate(&cert.fingerprint, &key)
                .await?;
            self.identity_changed(IdentityChange::Certificate(cert.fingerprint.clone()))
                .await;
        }
        tracing::info!(device = %key, "device authenticated");
        Ok(())
    }

    async fn require_enrolled(&self, key: &DeviceKey) -> CoreResult<()> {
        match self.ports.device.device(key).await? {
            Some(d) if d.status != EnrollmentStatus::CheckedOut => Ok(()),
            _ => {
                tracing::warn!(device = %key, "request from a device that is not enrolled");
                Err(CoreError::Forbidden("device is not enrolled".into()))
            }
        }
    }

    async fn record_result(
        &self,
        key: &DeviceKey,
        req: &ConnectRequest,
        source: Option<IpAddr>,
    ) -> CoreResult<()> {
        let Some(uuid) = &req.command_uuid else {
            return Err(CoreError::BadRequest("CommandUUID missing".into()));
        };
        let uuid = CommandUuid::parse(uuid)
            .map_err(|e| CoreError::BadRequest(format!("invalid CommandUUID: {e}")))?;
        let state = match req.status {
            CommandStatus::Acknowledged => CommandState::Acknowledged,
            CommandStatus::Error => CommandState::Error,
            CommandStatus::CommandFormatError => CommandState::CommandFormatError,
            CommandStatus::NotNow => CommandState::NotNow,
            CommandStatus::Idle => return Ok(()),
        };
        let now = self.clock.now();
        // A result may name the user, locate the device or list its apps:
        // stored sealed, bound to the device and the command.
        let sealed = self.seal_device_json(key, &format!("result/{uuid}"), &req.result)?;
        let outcome = self
            .ports
            .device
            .record_result(key, &uuid, state, &sealed, req.error_chain.as_ref(), now)
            .await?;
        match outcome {
            ResultOutcome::Recorded { request_type } => {
                let mut event = self.device_event(
                    key,
                    source,
                    AuditAction::CommandResult,
                    Some(format!(
                        "status={} request_type={request_type}",
                        state.as_str()
                    )),
                );
                event.target = Some(uuid.to_string());
                if state == CommandState::Error {
                    event.outcome = "failure".into();
                }
                self.audit(event).await?;
                if state == CommandState::Acknowledged {
                    self.update_inventory(key, &request_type, &req.result)
                        .await?;
                }
                if state != CommandState::NotNow {
                    for handler in crate::RESULT_HANDLERS {
                        handler.command_answered(self, key, &uuid, state).await?;
                    }
                    self.retire_if_taken_out(key, &uuid, state).await?;
                }
                if state == CommandState::Acknowledged && request_type == "EraseDevice" {
                    self.erased(key).await?;
                }
                tracing::info!(device = %key, command = %uuid, status = state.as_str(), "command result");
            }
            ResultOutcome::UnknownCommand => {
                tracing::warn!(device = %key, command = %uuid, "result for a command this device was not given");
            }
        }
        Ok(())
    }

    async fn update_inventory(
        &self,
        key: &DeviceKey,
        request_type: &str,
        result: &serde_json::Value,
    ) -> CoreResult<()> {
        let parsed = match results::parse(request_type, result) {
            None => return Ok(()),
            Some(Ok(parsed)) => parsed,
            Some(Err(gap)) => {
                tracing::warn!(device = %key, request_type, %gap, "malformed inventory answer; kept the last good one");
                return Ok(());
            }
        };
        match parsed {
            InventoryResult::Applications(apps) => {
                let apps: Vec<mamori_ports::InstalledApp> = apps
                    .into_iter()
                    .map(|a| mamori_ports::InstalledApp {
                        bundle_id: a.identifier,
                        name: a.name,
                        version: a.version,
                    })
                    .collect();
                self.ports.device.set_device_apps(key, &apps).await?;
            }
            InventoryResult::Profiles(idents) => {
                for handler in crate::RESULT_HANDLERS {
                    handler.profiles_reported(self, key, &idents).await?;
                }
            }
            InventoryResult::DeviceInformation(info, raw) => {
                let fields = InventoryFields {
                    serial_number: info.serial_number,
                    model: info.model,
                    model_name: info.model_name,
                    product_name: info.product_name,
                    device_name: info
                        .device_name
                        .map(|n| self.seal_device_text(key, "device_name", &n))
                        .transpose()?,
                    os_version: info.os_version,
                    build_version: info.build_version,
                };
                // The answer names the device's user and may hold a phone
                // number: stored sealed.
                let sealed = self.seal_device_json(key, "device_information", &raw)?;
                self.ports
                    .device
                    .set_inventory(key, InventoryKind::DeviceInformation, &sealed, &fields)
                    .await?;
            }
            InventoryResult::SecurityInfo(raw) => {
                // SecurityInfo holds nothing personal.
                self.ports
                    .device
                    .set_inventory(
                        key,
                        InventoryKind::SecurityInfo,
                        &raw,
                        &InventoryFields::default(),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

fn device_key(ident: &Ident) -> CoreResult<DeviceKey> {
    device_key_of(ident.udid.as_deref(), ident.enrollment_id.as_deref())
}

fn device_key_of(udid: Option<&str>, enrollment_id: Option<&str>) -> CoreResult<DeviceKey> {
    let raw = udid.or(enrollment_id).ok_or_else(|| {
        CoreError::BadRequest("message names neither UDID nor EnrollmentID".into())
    })?;
    DeviceKey::parse(raw).map_err(|e| CoreError::BadRequest(e.to_string()))
}

/// Name under which a device's bootstrap token is kept sealed.
fn bootstrap_name(key: &DeviceKey) -> String {
    format!("bootstrap-token:{key}")
}

impl Services {}

impl Services {}
