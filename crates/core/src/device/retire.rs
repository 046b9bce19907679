//! Retiring a device: its identity certificates revoked (its next request
//! is refused), the identity cache forgotten, the device checked out. A
//! device being offboarded or erased is retired when it answers the
//! command that takes it out, or at the end of a grace period if it never
//! comes back. Approved erasures are carried out here, for the two-person
//! rule of the administrator context.

use crate::access::Operator;
use crate::access::{Actor, AdminActor, ClientContext, Job};
use crate::admin::approvals::ApprovalExecutor;
use crate::{CoreResult, Services};
use mamori_domain::{
    Approval, AuditAction, CommandState, CommandUuid, DeviceKey, EnrollmentStatus, Outcome,
};
use mamori_ports::IdentityChange;
use time::Duration;

/// How long an offboarded device has to collect its removal command
/// before its certificates are revoked anyway.
pub const OFFBOARD_GRACE: Duration = Duration::days(7);

impl Services {
    /// Whether the device is enrolled now.
    pub(crate) async fn is_enrolled(&self, device: &DeviceKey) -> CoreResult<bool> {
        Ok(self
            .ports
            .device
            .device(device)
            .await?
            .is_some_and(|d| d.status == EnrollmentStatus::Enrolled))
    }

    /// Takes a device out for good: certificates revoked (its next request
    /// is refused), identity cache forgotten, offboarding mark cleared.
    pub(crate) async fn retire_device(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        device: &DeviceKey,
        reason: &str,
    ) -> CoreResult<u64> {
        let revoked = self
            .ports
            .device
            .revoke_device_certificates(device, self.clock.now())
            .await?;
        self.identity_changed(IdentityChange::Device(device.clone()))
            .await;
        self.ports
            .device
            .set_device_offboarding(device, None)
            .await?;
        self.ports
            .device
            .check_out(device, self.clock.now())
            .await?;
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::DeviceRetire,
                Outcome::Success,
            )
            .target(device.as_str())
            .detail(format!("reason={reason}; certificates revoked={revoked}")),
        )
        .await?;
        Ok(revoked)
    }

    /// Called when a device answers a command: the answer to its
    /// offboarding command (anything but NotNow) retires it.
    pub(crate) async fn retire_if_taken_out(
        &self,
        device: &DeviceKey,
        command: &CommandUuid,
        state: CommandState,
    ) -> CoreResult<()> {
        if state == CommandState::NotNow {
            return Ok(());
        }
        if let Some((pending, _)) = self.ports.device.device_offboarding(device).await? {
            if &pending == command {
                let ctx = ClientContext::default();
                self.retire_device(
                    &Actor::Job(Job::Offboarding),
                    &ctx,
                    device,
                    &format!("offboarding command answered ({})", state.as_str()),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// The hourly job: devices that never collected their offboarding
    /// command within the grace period are retired anyway.
    pub async fn retire_overdue_devices(&self, _by: &Operator) -> CoreResult<usize> {
        let ctx = ClientContext::default();
        let overdue = self
            .ports
            .device
            .offboarding_overdue(self.clock.now())
            .await?;
        for d in &overdue {
            self.retire_device(
                &Actor::Job(Job::Offboarding),
                &ctx,
                d,
                "offboarding grace period over",
            )
            .await?;
        }
        Ok(overdue.len())
    }
}

/// Carries out an approved `erase_devices` request: EraseDevice queued for
/// each enrolled device, which is retired once it answers (or after the
/// grace period); a device no longer enrolled is retired at once.
pub(crate) struct EraseOnApproval;

#[async_trait::async_trait]
impl ApprovalExecutor for EraseOnApproval {
    fn action(&self) -> &'static str {
        "erase_devices"
    }

    async fn carry_out(
        &self,
        services: &Services,
        actor: &AdminActor,
        ctx: &ClientContext,
        a: &Approval,
    ) -> CoreResult<Vec<(DeviceKey, String)>> {
        services.erase_approved(actor, ctx, a).await
    }
}

impl Services {
    async fn erase_approved(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        a: &Approval,
    ) -> CoreResult<Vec<(DeviceKey, String)>> {
        let now = self.clock.now();
        let command = match a.params.get("command") {
            Some(c) if c.is_object() => c.clone(),
            _ => serde_json::json!({"RequestType": "EraseDevice"}),
        };
        let mut commands = Vec::new();
        for device in &a.devices {
            let enrolled = self.is_enrolled(device).await?;
            if !enrolled {
                self.retire_device(
                    &Actor::from(actor.clone()),
                    ctx,
                    device,
                    "erase approved; device not enrolled",
                )
                .await?;
                continue;
            }
            let queued = self
                .queue_command(&[device.to_string()], &command, true)
                .await?;
            for q in queued {
                // The device is retired once it answers (or after the grace).
                self.ports
                    .device
                    .set_device_offboarding(&q.udid, Some((&q.command_uuid, now + OFFBOARD_GRACE)))
                    .await?;
                self.audit(
                    self.audit_record(
                        &actor.label(),
                        ctx,
                        AuditAction::CommandQueue,
                        Outcome::Success,
                    )
                    .target("EraseDevice")
                    .detail(format!("device={} approval={}", q.udid, a.id)),
                )
                .await?;
                commands.push((q.udid, q.command_uuid.to_string()));
            }
        }
        Ok(commands)
    }
}
