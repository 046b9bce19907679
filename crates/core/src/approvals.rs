//! The two-person rule: a dangerous action (erasing devices) that one
//! administrator asks for is carried out only when a second administrator
//! — another account, holding `commands_write`, freshly re-authenticated —
//! approves it. Requests expire; every step is audited.

use crate::auth::{Actor, ClientContext};
use crate::offboard::OFFBOARD_GRACE;
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AdminId, Approval, ApprovalStatus, DeviceKey, Permission};
use serde::Serialize;
use time::Duration;

/// How long a request waits for its second administrator.
pub const APPROVAL_TTL: Duration = Duration::hours(24);

/// What an approval carried out.
#[derive(Debug, Clone, Serialize)]
pub struct Approved {
    /// The request, now approved.
    pub approval: Approval,
    /// The commands queued: (device, command UUID).
    pub commands: Vec<(DeviceKey, String)>,
}

impl Services {
    /// Asks for the devices to be erased; nothing happens until a second
    /// administrator approves.
    pub(crate) async fn request_erase(
        &self,
        actor: &str,
        requester: Option<&AdminId>,
        ctx: &ClientContext,
        devices: Vec<DeviceKey>,
        reason: &str,
    ) -> CoreResult<Approval> {
        let now = self.clock.now();
        let approval = Approval {
            id: hex::encode(
                mamori_crypto::try_random_bytes(12)
                    .map_err(|e| CoreError::Internal(e.to_string()))?,
            ),
            action: "erase_devices".into(),
            devices,
            reason: reason.to_owned(),
            requested_by: actor.to_owned(),
            requested_by_admin: requester.map(|a| a.to_string()),
            requested_at: now,
            expires_at: now + APPROVAL_TTL,
            status: ApprovalStatus::Pending,
            decided_by: None,
            decided_at: None,
        };
        self.store.insert_approval(&approval).await?;
        self.audit(self.audit_event(
            actor,
            ctx,
            "approval.request",
            Some(&approval.id),
            "success",
            Some(format!(
                "erase_devices devices={} reason={reason}",
                approval.devices.len()
            )),
        ))
        .await?;
        Ok(approval)
    }

    /// Requests waiting for a second administrator.
    pub async fn pending_approvals(&self) -> CoreResult<Vec<Approval>> {
        Ok(self.store.pending_approvals(self.clock.now()).await?)
    }

    fn may_decide(&self, actor: &Actor, approval: &Approval) -> CoreResult<()> {
        self.require_step_up(actor)?;
        if !actor.allows(Permission::CommandsWrite) {
            return Err(CoreError::Forbidden("deciding needs commands_write".into()));
        }
        if approval.requested_by_admin.as_deref() == Some(actor.admin.id.as_str()) {
            return Err(CoreError::Forbidden(
                "the second administrator must be another person".into(),
            ));
        }
        Ok(())
    }

    async fn pending(&self, id: &str) -> CoreResult<Approval> {
        let a = self
            .store
            .approval(id)
            .await?
            .ok_or_else(|| CoreError::NotFound("no such request".into()))?;
        if a.status != ApprovalStatus::Pending || a.expires_at <= self.clock.now() {
            return Err(CoreError::Conflict(
                "the request is no longer pending".into(),
            ));
        }
        Ok(a)
    }

    /// Approves and carries out a request.
    pub async fn approve(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        id: &str,
    ) -> CoreResult<Approved> {
        let a = self.pending(id).await?;
        self.may_decide(actor, &a)?;
        let now = self.clock.now();
        if !self
            .store
            .decide_approval(&a.id, ApprovalStatus::Approved, &actor.label(), now)
            .await?
        {
            return Err(CoreError::Conflict(
                "the request is no longer pending".into(),
            ));
        }
        self.audit(self.audit_event(
            &actor.label(),
            ctx,
            "approval.approve",
            Some(&a.id),
            "success",
            Some(format!("requested by {}", a.requested_by)),
        ))
        .await?;
        let mut commands = Vec::new();
        for device in &a.devices {
            let enrolled = self
                .store
                .device(device)
                .await?
                .is_some_and(|d| d.status == mamori_domain::EnrollmentStatus::Enrolled);
            if !enrolled {
                self.retire_device(
                    &actor.label(),
                    ctx,
                    device,
                    "erase approved; device not enrolled",
                )
                .await?;
                continue;
            }
            let queued = self
                .enqueue_command(
                    &[device.to_string()],
                    &serde_json::json!({"RequestType": "EraseDevice"}),
                    true,
                )
                .await?;
            for q in queued {
                // The device is retired once it answers (or after the grace).
                self.store
                    .set_device_offboarding(&q.udid, Some((&q.command_uuid, now + OFFBOARD_GRACE)))
                    .await?;
                self.audit(self.audit_event(
                    &actor.label(),
                    ctx,
                    "command.queue",
                    Some("EraseDevice"),
                    "success",
                    Some(format!("device={} approval={}", q.udid, a.id)),
                ))
                .await?;
                commands.push((q.udid, q.command_uuid.to_string()));
            }
        }
        let approval = self
            .store
            .approval(&a.id)
            .await?
            .ok_or_else(|| CoreError::Internal("approval vanished".into()))?;
        Ok(Approved { approval, commands })
    }

    /// Refuses a request.
    pub async fn reject(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        id: &str,
    ) -> CoreResult<Approval> {
        let a = self.pending(id).await?;
        self.may_decide(actor, &a)?;
        if !self
            .store
            .decide_approval(
                &a.id,
                ApprovalStatus::Rejected,
                &actor.label(),
                self.clock.now(),
            )
            .await?
        {
            return Err(CoreError::Conflict(
                "the request is no longer pending".into(),
            ));
        }
        self.audit(self.audit_event(
            &actor.label(),
            ctx,
            "approval.reject",
            Some(&a.id),
            "success",
            None,
        ))
        .await?;
        self.store
            .approval(&a.id)
            .await?
            .ok_or_else(|| CoreError::Internal("approval vanished".into()))
    }
}
