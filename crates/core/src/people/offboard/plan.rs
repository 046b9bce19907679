//! What offboarding a person would do, read without changing anything, so
//! a confirmation can list it exactly: which administrator accounts close
//! now and which wait for an account manager, which devices are taken out
//! of management, retired at once or erased after a second person
//! approves, and when the person's data is purged.

use super::*;
use crate::access::permit::PeopleWrite;

/// Offboarding's plan for one person.
#[derive(Debug, Clone, Serialize)]
pub struct OffboardPlan {
    /// The person (pseudonymous).
    pub person: String,
    /// Already marked departed (offboarding again closes what is left).
    pub departed: bool,
    /// What happens to enrolled devices.
    pub erase: bool,
    /// Linked accounts disabled at once (unless one is the last enabled
    /// owner, which stays): their names, for a requester who manages
    /// accounts or reads personal data (which login is whose is both).
    pub accounts_closed: Vec<String>,
    /// How many (the names may be withheld).
    pub accounts_closed_count: usize,
    /// Linked accounts the requester may not disable: each waits for an
    /// account manager (names as above).
    pub accounts_waiting: Vec<String>,
    /// How many.
    pub accounts_waiting_count: usize,
    /// Enrolled devices whose enrollment profile is removed (certificates
    /// revoked when each answers, or after the grace period).
    pub devices_removed: Vec<DeviceKey>,
    /// Enrolled devices erased once a second administrator approves.
    pub devices_erased: Vec<DeviceKey>,
    /// Devices no longer enrolled: their certificates are revoked at once.
    pub devices_retired: Vec<DeviceKey>,
    /// Days after the departure when the person's personal data is purged.
    pub purge_after_days: u32,
}

impl Services {
    /// What [`Self::offboard_person`] would do now, with `action` (or the
    /// configured one); nothing changes.
    pub async fn offboard_plan(
        &self,
        proof: &Authorized<PeopleWrite>,
        id: &str,
        action: Option<OffboardAction>,
    ) -> CoreResult<OffboardPlan> {
        let requester = proof.actor().admin();
        let may_name = requester.is_none_or(|r| {
            r.allows(Permission::AccountsManage) || r.allows(Permission::PersonalDataRead)
        });
        let action = action.unwrap_or(self.config.offboard_action);
        let rec = self.record(id).await?;
        let mut plan = OffboardPlan {
            person: rec.id.to_string(),
            departed: rec.departed_at.is_some(),
            erase: action == OffboardAction::Erase,
            accounts_closed: Vec::new(),
            accounts_closed_count: 0,
            accounts_waiting: Vec::new(),
            accounts_waiting_count: 0,
            devices_removed: Vec::new(),
            devices_erased: Vec::new(),
            devices_retired: Vec::new(),
            purge_after_days: self.config.people_retention_days,
        };
        for a in self.ports.people.person_admins(&rec.id).await? {
            if a.disabled_at.is_some() {
                continue;
            }
            // The same rule as offboarding's: a requester without
            // accounts_manage, or closing their own account, asks.
            let closes = match requester {
                None => true,
                Some(r) => r.allows(Permission::AccountsManage) && r.admin.id != a.id,
            };
            let (names, count) = if closes {
                (&mut plan.accounts_closed, &mut plan.accounts_closed_count)
            } else {
                (&mut plan.accounts_waiting, &mut plan.accounts_waiting_count)
            };
            *count += 1;
            if may_name {
                names.push(a.name);
            }
        }
        for device in self.ports.people.person_devices(&rec.id).await? {
            let enrolled = self.is_enrolled(&device).await?;
            // As offboarding does: a device whose enrollment profile is
            // not known cannot be sent its removal; it is retired at once.
            let removable =
                enrolled && self.enrollment_profile_identifier(&device).await?.is_some();
            if !enrolled || (!removable && !plan.erase) {
                plan.devices_retired.push(device);
            } else if plan.erase {
                plan.devices_erased.push(device);
            } else {
                plan.devices_removed.push(device);
            }
        }
        Ok(plan)
    }
}
