//! Commands that wipe what people stored (`EraseDevice`, `DeleteUser`):
//! one administrator sends them alone only for a few devices at a time and
//! within a budget every administrator shares; anything more waits for a
//! second administrator, who carries it out on approval.

use super::commands::Enqueued;
use crate::access::{Actor, AdminActor, ClientContext};
use crate::admin::approvals::{ApprovalExecutor, Dangerous};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{Approval, AuditAction, DeviceKey, Outcome};
use mamori_ports::QueueBudget;
use mamori_protocol::command::RequestType;

/// The budget's name in the store: erases and user deletions count
/// together.
const BUDGET: &str = "erase";

/// The budget's window.
const WINDOW: time::Duration = time::Duration::hours(24);

impl Services {
    /// An administrator's wiping command: queued at once while it is for
    /// at most `erase_approval_threshold` devices and fits in the budget
    /// every administrator shares (`erase_budget_per_day`, decided
    /// atomically across servers: one person with several accounts, or one
    /// account on several servers, gets no more); otherwise it waits for a
    /// second administrator.
    pub(super) async fn wipe(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        kind: &RequestType,
        devices: &[String],
        command: &serde_json::Value,
        push: bool,
    ) -> CoreResult<Enqueued> {
        let name = kind.as_str();
        // The devices the request will name, and why it waits (when only
        // the budget holds it back).
        let (keys, reason) = if devices.len() > self.config.erase_approval_threshold {
            // Checked now, carried out when a second administrator approves.
            mamori_protocol::schema::validate_command(command)
                .map_err(|e| CoreError::BadRequest(format!("invalid command: {e}")))?;
            (self.enrolled_keys(devices).await?, None)
        } else {
            let budget = QueueBudget {
                name: BUDGET,
                window: WINDOW,
                at_most: self.config.erase_budget_per_day,
            };
            // Checks the command and the devices, for either outcome.
            let (rows, queued) = self.build_commands(devices, command).await?;
            // Recorded in the transaction that queues and spends: a wipe
            // is never queued without its record (a dropped request, a
            // failed append).
            let event = self
                .audit_record(
                    &actor.label(),
                    ctx,
                    AuditAction::CommandQueue,
                    Outcome::Success,
                )
                .target(name)
                .detail(format!("devices={}", queued.len()))
                .event();
            let store = &*self.ports.device;
            let now = self.clock.now();
            match self
                .chain
                .in_turn(|linker| store.enqueue_within(&rows, budget, &event, linker, now))
                .await?
            {
                None => {
                    self.after_queueing(name, &queued, push);
                    return Ok(Enqueued::Queued(queued));
                }
                Some(spent) => (
                    queued.into_iter().map(|q| q.udid).collect(),
                    Some(format!(
                        "{spent} erases or user deletions were queued without a second administrator in the last 24 hours (at most {})",
                        self.config.erase_budget_per_day
                    )),
                ),
            }
        };
        let n = keys.len();
        let mut why = format!("{name} for {n} devices");
        if let Some(reason) = reason {
            tracing::warn!(
                request_type = name,
                devices = n,
                "wipe budget spent: the command waits for approval"
            );
            why = format!("{why}: {reason}");
        }
        let what = held_back(kind, keys, command.clone());
        let approval = self.request_approval(actor, ctx, what, &why).await?;
        Ok(Enqueued::AwaitingApproval(Box::new(approval)))
    }
}

/// What a held-back wiping command asks a second administrator for.
fn held_back(kind: &RequestType, devices: Vec<DeviceKey>, command: serde_json::Value) -> Dangerous {
    match kind {
        RequestType::EraseDevice => Dangerous::EraseDevices { devices, command },
        _ => Dangerous::DeleteUsers { devices, command },
    }
}

/// Carries out an approved `delete_users` request: the DeleteUser command
/// as asked, queued for each device still enrolled.
pub(crate) struct DeleteUsersOnApproval;

#[async_trait::async_trait]
impl ApprovalExecutor for DeleteUsersOnApproval {
    fn action(&self) -> &'static str {
        "delete_users"
    }

    async fn carry_out(
        &self,
        services: &Services,
        actor: &AdminActor,
        ctx: &ClientContext,
        a: &Approval,
    ) -> CoreResult<Vec<(DeviceKey, String)>> {
        let command = match a.params.get("command") {
            Some(c) if c.get("RequestType").and_then(|t| t.as_str()) == Some("DeleteUser") => {
                c.clone()
            }
            _ => {
                return Err(CoreError::Internal(
                    "an approved delete_users request without its DeleteUser command".into(),
                ))
            }
        };
        let mut devices = Vec::new();
        for device in &a.devices {
            if services.is_enrolled(device).await? {
                devices.push(device.to_string());
            }
        }
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        let queued = services.queue_command(&devices, &command, true).await?;
        services
            .audit(
                services
                    .audit_record(
                        &actor.label(),
                        ctx,
                        AuditAction::CommandQueue,
                        Outcome::Success,
                    )
                    .target("DeleteUser")
                    .detail(format!("devices={} approval={}", queued.len(), a.id)),
            )
            .await?;
        Ok(queued
            .into_iter()
            .map(|q| (q.udid, q.command_uuid.to_string()))
            .collect())
    }
}
