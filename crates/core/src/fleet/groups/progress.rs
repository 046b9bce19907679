//! How far the reconciler has brought a group's devices: for each policy
//! assigned to the group, how many of its enrolled members have the
//! current version, are being sent it, refused it, still wait for it, or
//! are kept without it (quarantine, another platform). Read from the same
//! view a reconciliation pass decides from, so the figures are what the
//! next pass will act on.

use super::*;

/// One policy's state across a group's devices.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PolicyProgress {
    /// The policy.
    pub policy_id: String,
    /// Its name.
    pub name: String,
    /// Its current version.
    pub version: i64,
    /// Members that have the current version.
    pub installed: usize,
    /// Members it is being sent to (InstallProfile in flight).
    pub installing: usize,
    /// Members that refused it (tried again after a backoff).
    pub failed: usize,
    /// Members that lack it or have an older version, not yet sent.
    pub waiting: usize,
    /// Members kept without it while quarantined (Wi-Fi, VPN).
    pub withheld: usize,
    /// Members of a platform the policy is not for.
    pub other_platform: usize,
}

/// A group's reconcile progress.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct GroupProgress {
    /// Enrolled devices in the group.
    pub members: usize,
    /// One entry per assigned policy, in the group's order.
    pub policies: Vec<PolicyProgress>,
}

impl Services {
    /// The reconcile progress of one group's enrolled devices.
    pub async fn group_progress(
        &self,
        _by: &Authorized<DevicesRead>,
        id: &str,
    ) -> CoreResult<GroupProgress> {
        let g = self.group_record(id).await?;
        let now = self.clock.now();
        let view = self.fleet_view().await?;
        let rows = self.profile_rows().await?;
        let mut out = GroupProgress {
            members: 0,
            policies: g
                .policies
                .iter()
                .filter_map(|pid| view.policies.get(pid))
                .map(|p| PolicyProgress {
                    policy_id: p.id.clone(),
                    name: p.name.clone(),
                    version: p.version,
                    ..PolicyProgress::default()
                })
                .collect(),
        };
        let mut after: Option<DeviceKey> = None;
        loop {
            let page = self.ports.fleet.list_devices(after.as_ref(), 1000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.udid.clone());
            for d in page.iter().filter(|d| {
                d.status == EnrollmentStatus::Enrolled && view.membership.contains(&g, d)
            }) {
                out.members += 1;
                let desired = self.desired_profiles(&view, d, now);
                let platform = crate::device::devices::platform_of(d);
                let have = rows.get(d.udid.as_str());
                for progress in &mut out.policies {
                    let Some(p) = view.policies.get(&progress.policy_id) else {
                        continue;
                    };
                    count(progress, p, platform, &desired, have);
                }
            }
        }
        Ok(out)
    }
}

/// Counts one device for one policy.
fn count(
    progress: &mut PolicyProgress,
    p: &Policy,
    platform: &str,
    desired: &BTreeMap<&str, &Policy>,
    have: Option<&BTreeMap<String, DeviceProfile>>,
) {
    if !p.platforms.is_empty() && !p.platforms.iter().any(|x| x == platform) {
        progress.other_platform += 1;
        return;
    }
    if !desired.contains_key(p.profile_identifier.as_str()) {
        progress.withheld += 1;
        return;
    }
    match have.and_then(|h| h.get(&p.profile_identifier)) {
        Some(r) if r.state == ProfileState::Installed && r.profile_uuid == p.profile_uuid => {
            progress.installed += 1;
        }
        Some(r) if r.state == ProfileState::Installing && r.profile_uuid == p.profile_uuid => {
            progress.installing += 1;
        }
        Some(r) if r.state == ProfileState::Failed => progress.failed += 1,
        _ => progress.waiting += 1,
    }
}
