//! Device groups and desired state: devices belong to static groups
//! (listed) and dynamic ones (a rule over the inventory); policies are
//! assigned to groups; the reconciler compares each enrolled device's
//! desired profiles with what it has and queues InstallProfile /
//! RemoveProfile to converge — idempotently (nothing is queued while a
//! command for that profile is in flight), in bounded batches, with
//! backoff after a device refuses, and from state kept in the store, so a
//! restart resumes where it was.

mod progress;
mod reconcile;

pub use progress::{GroupProgress, PolicyProgress, ProgressCache};

use crate::access::permit::{CommandsWrite, DevicesRead};
use crate::access::Authorized;
use crate::access::ClientContext;
use crate::{CoreError, CoreResult, Services};
use mamori_domain::Device;
use mamori_domain::{AuditAction, Outcome};
use mamori_domain::{
    CommandState, CommandUuid, DeviceGroup, DeviceKey, DeviceProfile, EnrollmentStatus, GroupRule,
    Policy, ProfileState,
};
use mamori_ports::NewCommand;
use mamori_protocol::command::{Command, CommandDict};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use time::Duration;
use time::OffsetDateTime;

/// A new group, as the API takes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    /// Unique name.
    pub name: String,
    /// A dynamic group's rule (absent: static).
    pub rule: Option<GroupRule>,
}

/// What one reconciliation pass did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Enrolled devices looked at.
    pub devices: usize,
    /// InstallProfile commands queued.
    pub installs: usize,
    /// RemoveProfile commands queued.
    pub removals: usize,
    /// Changes left for the next pass (the batch was full).
    pub deferred: usize,
}

/// Whether a group's members follow a person's department.
fn by_department(g: &DeviceGroup) -> bool {
    g.rule.as_ref().is_some_and(|r| r.department.is_some())
}

/// Whether the reader may read personal data (the host's command line may).
fn reads_personal(by: &Authorized<DevicesRead>) -> bool {
    by.actor().admin().is_none_or(Services::reveals_personal)
}

/// Longest wait before a refused profile is tried again.
const MAX_BACKOFF: Duration = Duration::hours(24);

fn backoff(attempts: i64) -> Duration {
    let minutes = 1i64 << attempts.clamp(0, 11);
    Duration::minutes(minutes).min(MAX_BACKOFF)
}

impl Services {
    /// Adds a group.
    pub async fn create_group(
        &self,
        by: &Authorized<CommandsWrite>,
        ctx: &ClientContext,
        input: &GroupInput,
    ) -> CoreResult<DeviceGroup> {
        let name = crate::check_display_name(&input.name)?;
        let g = DeviceGroup {
            id: crate::random_id()?,
            name,
            rule: input.rule.clone(),
            members: Vec::new(),
            policies: Vec::new(),
            created_at: self.clock.now(),
        };
        self.audit(
            self.audit_record(&by.label(), ctx, AuditAction::GroupCreate, Outcome::Success)
                .target(&g.id)
                .detail(format!(
                    "name={} {}",
                    g.name,
                    if g.rule.is_some() {
                        "dynamic"
                    } else {
                        "static"
                    }
                )),
        )
        .await?;
        if !self.ports.fleet.insert_group(&g).await? {
            return Err(CoreError::Conflict("a group with that name exists".into()));
        }
        Ok(g)
    }

    /// Every group.
    pub async fn groups(&self, _by: &Authorized<DevicesRead>) -> CoreResult<Vec<DeviceGroup>> {
        Ok(self.ports.fleet.list_groups().await?)
    }

    /// One group.
    pub async fn group(&self, _by: &Authorized<DevicesRead>, id: &str) -> CoreResult<DeviceGroup> {
        self.group_record(id).await
    }

    /// One group, for the use-cases of this crate.
    pub(crate) async fn group_record(&self, id: &str) -> CoreResult<DeviceGroup> {
        self.ports
            .fleet
            .list_groups()
            .await?
            .into_iter()
            .find(|g| g.id == id)
            .ok_or_else(|| CoreError::NotFound("no such group".into()))
    }

    /// The enrolled devices in a group (UDIDs), for filtering lists. A
    /// group of a department tells whose devices are in it: only for a
    /// reader of personal data.
    pub async fn group_devices(
        &self,
        by: &Authorized<DevicesRead>,
        id: &str,
    ) -> CoreResult<HashSet<String>> {
        let g = self.group_record(id).await?;
        if by_department(&g) && !reads_personal(by) {
            return Err(CoreError::Forbidden(
                "the members of a department's group are personal data: that needs \
                 personal_data_read"
                    .into(),
            ));
        }
        let membership = self.membership(std::slice::from_ref(&g)).await?;
        let mut out = HashSet::new();
        let mut after: Option<DeviceKey> = None;
        loop {
            let page = self.ports.fleet.list_devices(after.as_ref(), 1000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.udid.clone());
            out.extend(
                page.iter()
                    .filter(|d| {
                        d.status == EnrollmentStatus::Enrolled && membership.contains(&g, d)
                    })
                    .map(|d| d.udid.to_string()),
            );
        }
        Ok(out)
    }

    /// The groups a device is in (listed, or matching a rule).
    pub async fn device_groups(
        &self,
        by: &Authorized<DevicesRead>,
        device: &DeviceKey,
    ) -> CoreResult<Vec<DeviceGroup>> {
        let d = self
            .ports
            .fleet
            .device(device)
            .await?
            .ok_or_else(|| CoreError::NotFound("no such device".into()))?;
        let groups = self.ports.fleet.list_groups().await?;
        let membership = self.membership(&groups).await?;
        // A department's group would tell the person's department: shown
        // only to a reader of personal data.
        let personal = reads_personal(by);
        Ok(groups
            .into_iter()
            .filter(|g| personal || !by_department(g))
            .filter(|g| membership.contains(g, &d))
            .collect())
    }

    /// Deletes a group (its devices lose its policies at the next pass).
    pub async fn delete_group(
        &self,
        by: &Authorized<CommandsWrite>,
        ctx: &ClientContext,
        id: &str,
    ) -> CoreResult<()> {
        let g = self.group_record(id).await?;
        self.audit(
            self.audit_record(&by.label(), ctx, AuditAction::GroupDelete, Outcome::Success)
                .target(&g.id),
        )
        .await?;
        self.ports.fleet.delete_group(&g.id).await?;
        Ok(())
    }

    /// Adds and removes members of a static group.
    pub async fn change_group_members(
        &self,
        by: &Authorized<CommandsWrite>,
        ctx: &ClientContext,
        id: &str,
        add: &[String],
        remove: &[String],
    ) -> CoreResult<DeviceGroup> {
        let g = self.group_record(id).await?;
        if g.rule.is_some() {
            return Err(CoreError::Conflict(
                "a dynamic group's members follow its rule".into(),
            ));
        }
        for raw in add.iter().chain(remove) {
            DeviceKey::parse(raw)
                .map_err(|e| CoreError::BadRequest(format!("device {raw:?}: {e}")))?;
        }
        for raw in add {
            let key = DeviceKey::parse(raw).map_err(|e| CoreError::BadRequest(e.to_string()))?;
            if self.ports.fleet.device(&key).await?.is_none() {
                return Err(CoreError::NotFound(format!("no device {raw}")));
            }
        }
        self.audit(
            self.audit_record(
                &by.label(),
                ctx,
                AuditAction::GroupMembers,
                Outcome::Success,
            )
            .target(&g.id)
            .detail(format!("added={} removed={}", add.len(), remove.len())),
        )
        .await?;
        self.ports
            .fleet
            .change_group_members(&g.id, add, remove)
            .await?;
        self.group_record(&g.id).await
    }

    /// Replaces the policies assigned to a group.
    pub async fn set_group_policies(
        &self,
        by: &Authorized<CommandsWrite>,
        ctx: &ClientContext,
        id: &str,
        policies: &[String],
    ) -> CoreResult<DeviceGroup> {
        let g = self.group_record(id).await?;
        let known: HashSet<String> = self
            .ports
            .fleet
            .list_policies()
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect();
        if let Some(p) = policies.iter().find(|p| !known.contains(*p)) {
            return Err(CoreError::NotFound(format!("no policy {p}")));
        }
        self.audit(
            self.audit_record(
                &by.label(),
                ctx,
                AuditAction::GroupPolicies,
                Outcome::Success,
            )
            .target(&g.id)
            .detail(format!("policies={}", policies.join(","))),
        )
        .await?;
        self.ports.fleet.set_group_policies(&g.id, policies).await?;
        self.group_record(&g.id).await
    }

    /// Where each policy profile stands on a device.
    pub async fn device_profiles(
        &self,
        _by: &Authorized<DevicesRead>,
        udid: &str,
    ) -> CoreResult<Vec<DeviceProfile>> {
        let key = DeviceKey::parse(udid).map_err(|e| CoreError::BadRequest(e.to_string()))?;
        if self.ports.fleet.device(&key).await?.is_none() {
            return Err(CoreError::NotFound("no such device".into()));
        }
        Ok(self.ports.fleet.profiles_of_device(key.as_str()).await?)
    }

    /// A device answered a command: if it was a policy profile's, the
    /// profile's state follows.
    pub(crate) async fn profile_result(
        &self,
        command: &CommandUuid,
        state: CommandState,
    ) -> CoreResult<()> {
        if state == CommandState::NotNow {
            return Ok(());
        }
        let Some(mut row) = self
            .ports
            .fleet
            .device_profile_by_command(command.as_str())
            .await?
        else {
            return Ok(());
        };
        let now = self.clock.now();
        row.updated_at = now;
        match (row.state, state) {
            (ProfileState::Removing, CommandState::Acknowledged) => {
                return Ok(self
                    .ports
                    .fleet
                    .delete_device_profile(&row.udid, &row.profile_identifier)
                    .await?);
            }
            (ProfileState::Installing, CommandState::Acknowledged) => {
                row.state = ProfileState::Installed;
                row.attempts = 0;
                row.retry_at = None;
            }
            (ProfileState::Installing, _) => {
                row.state = ProfileState::Failed;
                row.attempts += 1;
                row.retry_at = Some(now + backoff(row.attempts));
            }
            (ProfileState::Removing, _) => {
                row.state = ProfileState::Installed;
                row.attempts += 1;
                row.retry_at = Some(now + backoff(row.attempts));
            }
            _ => return Ok(()),
        }
        self.ports.fleet.put_device_profiles(&[row]).await?;
        Ok(())
    }

    /// A device's ProfileList: a policy profile Mamori counts as installed
    /// but the device no longer has (the user removed it, a restore) is
    /// forgotten, so the next pass installs it again. A malformed answer
    /// changes nothing.
    pub(crate) async fn profiles_reported(
        &self,
        device: &DeviceKey,
        reported: &[String],
    ) -> CoreResult<()> {
        let idents: HashSet<&str> = reported.iter().map(String::as_str).collect();
        for row in self.ports.fleet.profiles_of_device(device.as_str()).await? {
            if row.state == ProfileState::Installed
                && !idents.contains(row.profile_identifier.as_str())
            {
                tracing::warn!(device = %device, profile = %row.profile_identifier, "policy profile missing from the device; it will be installed again");
                self.ports
                    .fleet
                    .delete_device_profile(&row.udid, &row.profile_identifier)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Fleet's part of a device's answer: the state of the policy profiles it
/// was sent, and the profiles it says it has.
pub(crate) struct ProfileResults;

#[async_trait::async_trait]
impl crate::device::ResultHandler for ProfileResults {
    async fn command_answered(
        &self,
        services: &Services,
        _device: &DeviceKey,
        command: &CommandUuid,
        state: CommandState,
    ) -> CoreResult<()> {
        services.profile_result(command, state).await
    }

    async fn profiles_reported(
        &self,
        services: &Services,
        device: &DeviceKey,
        identifiers: &[String],
    ) -> CoreResult<()> {
        services.profiles_reported(device, identifiers).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_day() {
        assert_eq!(backoff(1), Duration::minutes(2));
        assert_eq!(backoff(5), Duration::minutes(32));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn dynamic_rules_match_the_inventory() {
        let r = GroupRule {
            model: Some("iphone".into()),
            os_version: Some("17.".into()),
            product: None,
            department: None,
        };
        assert!(r.matches(Some("iPhone"), Some("iPhone15,2"), Some("17.4.1")));
        assert!(!r.matches(Some("iPhone"), None, Some("16.7")));
        assert!(!r.matches(None, None, Some("17.1")));
        assert!(GroupRule::default().matches(None, None, None));
    }
}
