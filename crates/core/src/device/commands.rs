//! Queueing commands and reading their results.

use crate::access::permit::{CommandsRead, DeviceActions};
use crate::access::{Actor, Authorized, ClientContext};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AuditAction, Outcome};
use mamori_domain::{CommandRecord, CommandUuid, DeviceKey, EnrollmentStatus, Permission};
use mamori_ports::NewCommand;
use mamori_protocol::command::{CommandDict, RequestType};

/// Most devices one enqueue request may target.
pub const MAX_TARGETS: usize = 50_000;

/// One queued command.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Queued {
    /// Target device.
    pub udid: DeviceKey,
    /// The command UUID for that device.
    pub command_uuid: CommandUuid,
    /// The six-digit PIN a Mac was locked with (generated when none was
    /// given): shown this once; it stays sealed in the queued command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}

/// A random six-digit PIN (uniform: rejection sampling).
fn six_digit_pin() -> CoreResult<String> {
    loop {
        let b = mamori_crypto::try_random_bytes(4).map_err(|e| CoreError::Internal(e.into()))?;
        let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if v < 4_294_000_000 {
            return Ok(format!("{:06}", v % 1_000_000));
        }
    }
}

/// Queued command payloads are sealed at rest with the master key (bound
/// to the command UUID): a command may carry a Wi-Fi password in a
/// profile, a lock PIN, a phone number. Marked so that payloads queued
/// before sealing existed still go out.
const SEALED_COMMAND: &[u8] = b"mamori-sealed-command-v1\0";

impl Services {
    /// Whether the device is a Mac (by its inventory).
    async fn is_mac(&self, key: &DeviceKey) -> CoreResult<bool> {
        Ok(self
            .ports
            .device
            .device(key)
            .await?
            .is_some_and(|d| crate::device::devices::platform_of(&d) == "macOS"))
    }

    /// The device's UnlockToken (stored sealed when it sent one).
    async fn unlock_token(&self, key: &DeviceKey) -> CoreResult<Vec<u8>> {
        let sealed = self
            .ports
            .device
            .sealed_unlock_token(key)
            .await?
            .ok_or_else(|| {
                CoreError::Conflict(format!(
                    "{key} sent no UnlockToken: its passcode cannot be cleared remotely"
                ))
            })?;
        Ok(self
            .pki
            .secret_box
            .open(&sealed, Some(key.as_str().as_bytes()))
            .map_err(|e| CoreError::internal("unlock token does not open", e))?
            .to_vec())
    }

    /// A device's commands, newest first (results are read one by one).
    pub async fn device_commands(
        &self,
        _by: &Authorized<CommandsRead>,
        udid: &str,
    ) -> CoreResult<Vec<CommandRecord>> {
        let key = DeviceKey::parse(udid).map_err(|e| CoreError::BadRequest(e.to_string()))?;
        if self.ports.device.device(&key).await?.is_none() {
            return Err(CoreError::NotFound("no such device".into()));
        }
        Ok(self.ports.device.device_commands(&key, 200).await?)
    }

    pub(crate) fn seal_command(&self, uuid: &CommandUuid, payload: &[u8]) -> CoreResult<Vec<u8>> {
        let mut out = SEALED_COMMAND.to_vec();
        out.extend(
            self.pki
                .secret_box
                .seal(payload, Some(uuid.as_str().as_bytes()))
                .map_err(|e| CoreError::Internal(e.into()))?,
        );
        Ok(out)
    }

    /// The plist to send (opens a sealed payload).
    pub(crate) fn open_command(&self, uuid: &CommandUuid, stored: Vec<u8>) -> CoreResult<Vec<u8>> {
        match stored.strip_prefix(SEALED_COMMAND) {
            Some(sealed) => Ok(self
                .pki
                .secret_box
                .open(sealed, Some(uuid.as_str().as_bytes()))
                .map_err(|e| CoreError::internal("queued command does not open", e))?
                .to_vec()),
            None => Ok(stored),
        }
    }
}

/// What queuing a command did.
#[derive(Debug, Clone)]
pub enum Enqueued {
    /// Queued for every device.
    Queued(Vec<Queued>),
    /// Waiting for a second administrator (an erase of many devices).
    AwaitingApproval(Box<mamori_domain::Approval>),
}

impl Services {
    /// Validates the command against Apple's schema, queues one copy per
    /// device (all or nothing) and, when `push` is set, wakes the devices.
    /// Audited.
    ///
    /// For an administrator: helpdesk actions need `device_actions`,
    /// anything else `commands_write`; destructive commands need a recent
    /// step-up, and an erase of more devices than the threshold waits for
    /// a second administrator.
    pub async fn enqueue_command(
        &self,
        proof: &Authorized<DeviceActions>,
        ctx: &ClientContext,
        devices: &[String],
        command: &serde_json::Value,
        push: bool,
    ) -> CoreResult<Enqueued> {
        let actor = proof.actor();
        let request_type = command
            .get("RequestType")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let Some(actor) = actor.admin() else {
            actor.host_only()?;
            return self
                .queue_and_record(actor, ctx, request_type, devices, command, push)
                .await;
        };
        let kind = RequestType::parse(request_type);
        let needed = if kind.is_helpdesk_action() {
            Permission::DeviceActions
        } else {
            Permission::CommandsWrite
        };
        if !actor.allows(needed) {
            self.audit(
                self.audit_record(
                    &actor.label(),
                    ctx,
                    AuditAction::CommandQueue,
                    Outcome::Denied,
                )
                .target(request_type)
                .detail(format!("needs {needed}")),
            )
            .await?;
            return Err(CoreError::Forbidden(format!(
                "{request_type} needs the {needed} permission"
            )));
        }
        if kind.is_destructive() {
            self.require_step_up(actor)?;
        }
        if kind.wipes_data() {
            return self
                .wipe(proof.actor(), ctx, &kind, devices, command, push)
                .await;
        }
        self.queue_and_record(proof.actor(), ctx, request_type, devices, command, push)
            .await
    }

    async fn queue_and_record(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        request_type: &str,
        devices: &[String],
        command: &serde_json::Value,
        push: bool,
    ) -> CoreResult<Enqueued> {
        let queued = self.queue_command(devices, command, push).await?;
        self.record_queued(actor, ctx, request_type, queued.len())
            .await?;
        Ok(Enqueued::Queued(queued))
    }

    async fn record_queued(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        request_type: &str,
        devices: usize,
    ) -> CoreResult<()> {
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::CommandQueue,
                Outcome::Success,
            )
            .target(request_type)
            .detail(format!("devices={devices}")),
        )
        .await
    }

    /// Queues a command for devices for another use-case of this crate,
    /// which has decided and records what it does.
    pub(crate) async fn queue_command(
        &self,
        devices: &[String],
        command: &serde_json::Value,
        push: bool,
    ) -> CoreResult<Vec<Queued>> {
        let (rows, queued) = self.build_commands(devices, command).await?;
        self.ports.device.enqueue(&rows, self.clock.now()).await?;
        let request_type = rows.first().map_or("", |r| r.request_type.as_str());
        self.after_queueing(request_type, &queued, push);
        Ok(queued)
    }

    pub(super) fn after_queueing(&self, request_type: &str, queued: &[Queued], push: bool) {
        tracing::info!(request_type, devices = queued.len(), push, "command queued");
        if push {
            self.push_devices(queued.iter().map(|q| q.udid.clone()).collect());
        }
    }

    /// One sealed command per device, checked against Apple's schema.
    pub(super) async fn build_commands(
        &self,
        devices: &[String],
        command: &serde_json::Value,
    ) -> CoreResult<(Vec<NewCommand>, Vec<Queued>)> {
        if devices.is_empty() {
            return Err(CoreError::BadRequest("devices must not be empty".into()));
        }
        if devices.len() > MAX_TARGETS {
            return Err(CoreError::BadRequest(format!(
                "at most {MAX_TARGETS} devices per request"
            )));
        }
        // ClearPasscode carries the device's UnlockToken, which only Mamori
        // holds: filled in per device (validated with a placeholder).
        let clear_passcode =
            command.get("RequestType").and_then(|v| v.as_str()) == Some("ClearPasscode");
        let checked = if clear_passcode {
            if command.get("UnlockToken").is_some() {
                return Err(CoreError::BadRequest(
                    "invalid command: UnlockToken is filled in by Mamori".into(),
                ));
            }
            let mut c = command.clone();
            if let Some(o) = c.as_object_mut() {
                o.insert(
                    "UnlockToken".into(),
                    serde_json::Value::String("AA==".into()),
                );
            }
            c
        } else {
            command.clone()
        };
        let dict = CommandDict::from_json(&checked)
            .map_err(|e| CoreError::BadRequest(format!("invalid command: {e}")))?;
        let kind = dict.request_type();
        let request_type = kind.as_str().to_owned();
        let mac_lock = kind == RequestType::DeviceLock && !dict.has_pin();
        let keys = self.enrolled_keys(devices).await?;
        let mut queued = Vec::with_capacity(keys.len());
        let mut rows = Vec::with_capacity(keys.len());
        for key in keys {
            let uuid = CommandUuid::new_random();
            let mut d = dict.clone();
            let mut pin = None;
            if mac_lock && self.is_mac(&key).await? {
                let p = six_digit_pin()?;
                d.set_pin(&p);
                pin = Some(p);
            }
            if clear_passcode {
                d.set_unlock_token(self.unlock_token(&key).await?);
            }
            let payload = d.encode(uuid.as_str());
            if payload.is_empty() {
                return Err(CoreError::Internal("command could not be encoded".into()));
            }
            rows.push(NewCommand {
                payload: self.seal_command(&uuid, &payload)?,
                command_uuid: uuid.clone(),
                device: key.clone(),
                request_type: request_type.clone(),
            });
            queued.push(Queued {
                udid: key,
                command_uuid: uuid,
                pin,
            });
        }
        Ok((rows, queued))
    }

    /// Wakes devices through APNs without blocking the caller.
    pub fn push_devices(&self, devices: Vec<DeviceKey>) {
        let store = std::sync::Arc::clone(&self.ports.device);
        let pusher = std::sync::Arc::clone(&self.pusher);
        tokio::spawn(async move {
            match store.push_targets(&devices).await {
                Ok(targets) => {
                    let sent = pusher.push(&targets).await;
                    tracing::debug!(targets = targets.len(), sent, "push sent");
                }
                Err(e) => tracing::error!(cause = %e, "push targets could not be read"),
            }
        });
    }

    pub(super) async fn enrolled_keys(&self, devices: &[String]) -> CoreResult<Vec<DeviceKey>> {
        let mut keys = Vec::with_capacity(devices.len());
        let mut seen = std::collections::HashSet::with_capacity(devices.len());
        for raw in devices {
            let key = DeviceKey::parse(raw)
                .map_err(|e| CoreError::BadRequest(format!("device {raw:?}: {e}")))?;
            if !seen.insert(key.clone()) {
                return Err(CoreError::BadRequest(format!("device {key} listed twice")));
            }
            keys.push(key);
        }
        for key in &keys {
            match self.ports.device.device(key).await? {
                Some(d) if d.status != EnrollmentStatus::CheckedOut => {}
                _ => return Err(CoreError::NotFound(format!("device {key} is not enrolled"))),
            }
        }
        Ok(keys)
    }

    /// A command's state and result as `actor` may see it: the personal
    /// parts of the result (by RequestType, deny by default: see
    /// [`crate::device::privacy`]) in plaintext only with
    /// `personal_data_read`, the read recorded first (if the record cannot
    /// be written, nothing is shown); withheld for everyone else.
    pub async fn command_status(
        &self,
        proof: &Authorized<CommandsRead>,
        ctx: &ClientContext,
        uuid: &str,
    ) -> CoreResult<CommandView> {
        let actor = proof.require_admin()?;
        let uuid = CommandUuid::parse(uuid)
            .map_err(|e| CoreError::BadRequest(format!("command UUID: {e}")))?;
        let mut r = self
            .ports
            .device
            .command(&uuid)
            .await?
            .ok_or_else(|| CoreError::NotFound("no such command".into()))?;
        // Results are stored sealed (they may name the user, locate the
        // device, list apps); opened here, for administrators.
        r.result = r
            .result
            .take()
            .and_then(|v| self.open_device_json(&r.udid, &format!("result/{}", r.command_uuid), v));
        // An escrowed recovery key in a SecurityInfo answer is never shown
        // (as in the stored inventory).
        if r.request_type == "SecurityInfo" {
            if let Some(serde_json::Value::Object(map)) = r.result.as_mut() {
                let mut info = map.remove("SecurityInfo");
                crate::device::privacy::drop_escrow(&mut info);
                if let Some(info) = info {
                    map.insert("SecurityInfo".into(), info);
                }
            }
        }
        let reveal = Self::reveals_personal(actor);
        let personal =
            crate::device::privacy::command_result(&r.request_type, &mut r.result, !reveal);
        if !reveal {
            return Ok(CommandView {
                record: r,
                redacted: personal.paths,
            });
        }
        if !personal.is_empty() {
            let detail = format!(
                "command={} request_type={} {}",
                r.command_uuid,
                r.request_type,
                personal.audit_fields()
            );
            self.audit_device_reads(actor, ctx, vec![(r.udid.clone(), detail)])
                .await?;
        }
        Ok(CommandView {
            record: r,
            redacted: Vec::new(),
        })
    }
}

/// A command as an administrator sees it: the record, and the personal
/// parts of its result withheld from this reader (`null` in the result,
/// named here; empty for a reader holding `personal_data_read`, whose read
/// was recorded).
#[derive(Debug, Clone)]
pub struct CommandView {
    /// The command.
    pub record: CommandRecord,
    /// Dotted paths of the withheld values (`result.Latitude`).
    pub redacted: Vec<String>,
}
