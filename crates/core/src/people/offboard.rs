//! Offboarding a person in one step: departed, their administrator
//! accounts disabled with every session and token revoked (one
//! transaction), and each of their devices taken out of management.
//!
//! A device gets `RemoveProfile` for its enrollment profile — the MDM
//! profile, so the device unenrolls and drops every profile Mamori
//! installed (Wi-Fi, VPN, restrictions). Its identity certificates are
//! revoked the moment it answers that command, or at the end of a grace
//! period if it never comes back: revoking them first would leave the
//! company's profiles on a departed person's device for good. A device
//! whose enrollment profile is unknown, or that is no longer enrolled,
//! has its certificates revoked at once.

use crate::access::permit::{AccountsManage, CommandsWrite, PeopleWrite};
use crate::access::Actor;
use crate::access::Authorized;
use crate::access::ClientContext;
use crate::device::retire::OFFBOARD_GRACE;
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AdminAccount, AdminId, CommandUuid, DeviceKey, Permission, PersonId};
use mamori_domain::{AuditAction, Outcome};
use serde::Serialize;
use time::OffsetDateTime;

mod plan;

pub use plan::OffboardPlan;

/// What offboarding does to a person's devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffboardAction {
    /// `RemoveProfile` of the enrollment profile (the device unenrolls).
    RemoveManagement,
    /// `EraseDevice`, once a second administrator approves.
    Erase,
}

impl OffboardAction {
    /// Parses `remove_management` or `erase`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "remove_management" => Some(Self::RemoveManagement),
            "erase" => Some(Self::Erase),
            _ => None,
        }
    }
}

/// An administrator account closed by an offboarding.
#[derive(Debug, Clone, Serialize)]
pub struct AccountClosed {
    /// Login name.
    pub name: String,
    /// Sessions revoked.
    pub sessions_revoked: u64,
    /// API tokens revoked.
    pub tokens_revoked: u64,
}

/// An account whose closing waits for a second administrator.
#[derive(Debug, Clone, Serialize)]
pub struct AccountWaiting {
    /// Login name.
    pub name: String,
    /// The request (`/api/v1/approvals`).
    pub approval: String,
}

/// What happened to one device.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceOffboarded {
    /// The device.
    pub udid: DeviceKey,
    /// `RemoveProfile` queued (its UUID), when the device could get it.
    pub command_uuid: Option<CommandUuid>,
    /// Certificates revoked now.
    pub certificates_revoked: u64,
    /// When the certificates are revoked if the device never answers.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoke_deadline: Option<OffsetDateTime>,
}

/// Everything an offboarding revoked.
#[derive(Debug, Clone, Serialize)]
pub struct OffboardReport {
    /// The person (pseudonymous).
    pub person: String,
    /// Departure time.
    #[serde(with = "time::serde::rfc3339::option")]
    pub departed_at: Option<OffsetDateTime>,
    /// Administrator accounts disabled.
    pub accounts: Vec<AccountClosed>,
    /// Accounts the requester may not disable: each waits for an
    /// administrator with `accounts_manage` to approve.
    pub accounts_waiting: Vec<AccountWaiting>,
    /// Linked accounts left enabled because each was the last enabled owner.
    pub last_owner_kept: Vec<String>,
    /// Devices.
    pub devices: Vec<DeviceOffboarded>,
    /// With the erase policy: the request waiting for a second
    /// administrator (the devices are erased once approved).
    pub erase_approval: Option<String>,
}

impl Services {
    /// Links an administrator account to the person it belongs to (so
    /// offboarding the person closes the account); `None` unlinks.
    pub async fn link_admin_person(
        &self,
        proof: &Authorized<AccountsManage>,
        ctx: &ClientContext,
        admin: &str,
        person: Option<&str>,
    ) -> CoreResult<()> {
        let actor = proof.actor();
        let account = self.account_named(admin).await?;
        let person = match person {
            Some(p) => Some(self.record(p).await?.id),
            None => None,
        };
        if !self
            .ports
            .people
            .link_admin_person(&account.id, person.as_ref())
            .await?
        {
            return Err(CoreError::NotFound("no such administrator".into()));
        }
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::AdminLinkPerson,
                Outcome::Success,
            )
            .target(&account.name)
            .detail(format!(
                "person={}",
                person.as_ref().map_or("none", |p| p.as_str())
            )),
        )
        .await?;
        Ok(())
    }

    /// Offboards a person (see the module documentation). `action`
    /// overrides the configured policy. An administrator's erase then needs
    /// another one to approve; the host's command line needs no one.
    ///
    /// Closing the person's administrator accounts needs what disabling
    /// them directly needs (`accounts_manage`, and never one's own
    /// account): a requester without it — an HR-sync token holds only
    /// `people_write` — gets a request per account that waits for an
    /// account manager instead. The last enabled owner is never closed.
    pub async fn offboard_person(
        &self,
        proof: &Authorized<PeopleWrite>,
        ctx: &ClientContext,
        id: &str,
        action: Option<OffboardAction>,
    ) -> CoreResult<OffboardReport> {
        let actor = proof.actor();
        let requester = actor.admin();
        if requester.is_none() {
            actor.host_only()?;
        }
        let action = action.unwrap_or(self.config.offboard_action);
        let rec = self.record(id).await?;
        let now = self.clock.now();
        let linked = self.ports.people.person_admins(&rec.id).await?;
        let (close, wait): (Vec<_>, Vec<_>) = linked.into_iter().partition(|a| match requester {
            None => true,
            Some(r) => r.allows(Permission::AccountsManage) && r.admin.id != a.id,
        });
        let close_ids: Vec<AdminId> = close.iter().map(|a| a.id.clone()).collect();
        let closed = self
            .ports
            .people
            .offboard_person(&rec.id, now, &close_ids)
            .await?
            .ok_or_else(|| CoreError::NotFound("no such person".into()))?;
        let mut kept = Vec::new();
        for a in &close {
            if !closed.iter().any(|(id, ..)| id == &a.id) {
                tracing::warn!(admin = %a.name, "offboarding kept the last enabled owner");
                kept.push(a.name.clone());
            }
        }
        let accounts_waiting = self.ask_to_close(actor, ctx, wait, &rec.id).await?;
        let accounts = self.record_closed_accounts(actor, ctx, closed).await?;
        let (devices, erase_approval) = self
            .offboard_devices(actor, ctx, &rec.id, action, now)
            .await?;
        let departed_at = self
            .ports
            .people
            .person(&rec.id)
            .await?
            .and_then(|r| r.departed_at);
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::PeopleOffboard,
                Outcome::Success,
            )
            .target(rec.id.as_str())
            .detail(format!(
                "accounts={} accounts_waiting={} last_owner_kept={} devices={}",
                accounts.len(),
                accounts_waiting.len(),
                kept.len(),
                devices.len()
            )),
        )
        .await?;
        tracing::info!(person = %rec.id, accounts = accounts.len(), devices = devices.len(), "person offboarded");
        Ok(OffboardReport {
            person: rec.id.to_string(),
            departed_at,
            accounts,
            accounts_waiting,
            last_owner_kept: kept,
            devices,
            erase_approval,
        })
    }

    /// Takes one device out of management without erasing it: its
    /// enrollment profile removed (`RemoveProfile`, and with it the
    /// managed apps, profiles and data), its certificates revoked when it
    /// answers or after the grace period. A device that cannot get the
    /// command is retired at once. An administrator needs a recent step-up.
    pub async fn unenroll_device(
        &self,
        proof: &Authorized<CommandsWrite>,
        ctx: &ClientContext,
        device: &DeviceKey,
    ) -> CoreResult<DeviceOffboarded> {
        let actor = proof.actor();
        match actor.admin() {
            Some(by) => self.require_step_up(by)?,
            None => actor.host_only()?,
        }
        if !self.is_enrolled(device).await? {
            return Err(CoreError::NotFound("the device is not enrolled".into()));
        }
        if self
            .ports
            .people
            .device_offboarding(device)
            .await?
            .is_some()
        {
            return Err(CoreError::Conflict(
                "the device is already being taken out of management".into(),
            ));
        }
        self.offboard_device(actor, ctx, device, self.clock.now())
            .await
    }

    async fn offboard_device(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        device: &DeviceKey,
        now: OffsetDateTime,
    ) -> CoreResult<DeviceOffboarded> {
        let enrolled = self.is_enrolled(device).await?;
        let identifier = if enrolled {
            self.enrollment_profile_identifier(device).await?
        } else {
            None
        };
        let Some(identifier) = identifier else {
            let revoked = self.retire_device(actor, ctx, device, "offboarded").await?;
            return Ok(DeviceOffboarded {
                udid: device.clone(),
                command_uuid: None,
                certificates_revoked: revoked,
                revoke_deadline: None,
            });
        };
        let command = serde_json::json!({"RequestType": "RemoveProfile", "Identifier": identifier});
        let queued = self
            .queue_command(&[device.to_string()], &command, true)
            .await?;
        let uuid = queued
            .into_iter()
            .next()
            .map(|q| q.command_uuid)
            .ok_or_else(|| CoreError::Internal("RemoveProfile not queued".into()))?;
        let deadline = now + OFFBOARD_GRACE;
        self.ports
            .people
            .set_device_offboarding(device, Some((&uuid, deadline)))
            .await?;
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::DeviceOffboard,
                Outcome::Success,
            )
            .target(device.as_str())
            .detail(format!(
                "RemoveProfile {uuid} queued; certificates revoked on answer"
            )),
        )
        .await?;
        Ok(DeviceOffboarded {
            udid: device.clone(),
            command_uuid: Some(uuid),
            certificates_revoked: 0,
            revoke_deadline: Some(deadline),
        })
    }

    /// The `PayloadIdentifier` of the enrollment profile the device
    /// enrolled with: from the profile that obtained its certificate,
    /// following renewals back.
    async fn enrollment_profile_identifier(
        &self,
        device: &DeviceKey,
    ) -> CoreResult<Option<String>> {
        for cert in self.ports.people.device_certificates(device).await? {
            let mut current = Some(cert);
            for _ in 0..32 {
                let Some(c) = current else { break };
                if let Some(p) = &c.profile_id {
                    return Ok(Some(crate::device::enroll::profile_identifier(p)));
                }
                current = match &c.renewed_from {
                    Some(fp) => self.ports.people.certificate(fp).await?,
                    None => None,
                };
            }
        }
        Ok(None)
    }
}

impl Services {
    /// Asks a second administrator to close each linked account the
    /// requester may not close.
    async fn ask_to_close(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        wait: Vec<AdminAccount>,
        person: &PersonId,
    ) -> CoreResult<Vec<AccountWaiting>> {
        let mut accounts_waiting = Vec::new();
        for a in wait {
            let approval = self
                .request_approval(
                    actor,
                    ctx,
                    crate::admin::approvals::Dangerous::DisableAdmin {
                        admin: a.name.clone(),
                    },
                    &format!("offboarding of {person}"),
                )
                .await?;
            accounts_waiting.push(AccountWaiting {
                name: a.name,
                approval: approval.id,
            });
        }
        Ok(accounts_waiting)
    }

    /// Records each account the offboarding closed.
    async fn record_closed_accounts(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        closed: Vec<(AdminId, String, u64, u64)>,
    ) -> CoreResult<Vec<AccountClosed>> {
        let mut accounts = Vec::new();
        for (_, name, sessions, tokens) in closed {
            self.audit(
                self.audit_record(
                    &actor.label(),
                    ctx,
                    AuditAction::AdminDisable,
                    Outcome::Success,
                )
                .target(&name)
                .detail(format!(
                    "reason=offboarded; sessions revoked={sessions}; tokens revoked={tokens}"
                )),
            )
            .await?;
            accounts.push(AccountClosed {
                name,
                sessions_revoked: sessions,
                tokens_revoked: tokens,
            });
        }
        Ok(accounts)
    }

    /// Takes each of the person's devices out of management; with the
    /// erase action, the enrolled ones wait for a second administrator.
    async fn offboard_devices(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        person: &PersonId,
        action: OffboardAction,
        now: OffsetDateTime,
    ) -> CoreResult<(Vec<DeviceOffboarded>, Option<String>)> {
        let mut devices = Vec::new();
        let mut to_erase = Vec::new();
        for device in self.ports.people.person_devices(person).await? {
            // Already being taken out (offboarded before, or unenrolled):
            // its removal stands; another would reset its deadline and
            // leave the first answer without effect.
            if let Some((uuid, deadline)) = self.ports.people.device_offboarding(&device).await? {
                devices.push(DeviceOffboarded {
                    udid: device,
                    command_uuid: Some(uuid),
                    certificates_revoked: 0,
                    revoke_deadline: Some(deadline),
                });
                continue;
            }
            let enrolled = self.is_enrolled(&device).await?;
            if action == OffboardAction::Erase && enrolled {
                to_erase.push(device.clone());
                devices.push(DeviceOffboarded {
                    udid: device,
                    command_uuid: None,
                    certificates_revoked: 0,
                    revoke_deadline: None,
                });
                continue;
            }
            devices.push(self.offboard_device(actor, ctx, &device, now).await?);
        }
        let erase_approval = if to_erase.is_empty() {
            None
        } else {
            let a = self
                .request_approval(
                    actor,
                    ctx,
                    crate::admin::approvals::Dangerous::EraseDevices {
                        devices: to_erase,
                        command: serde_json::json!({"RequestType": "EraseDevice"}),
                    },
                    &format!("offboarding of {person}"),
                )
                .await?;
            Some(a.id)
        };
        Ok((devices, erase_approval))
    }
}
