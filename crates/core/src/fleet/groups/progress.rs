//! How far the reconciler has brought a group's devices: for each policy
//! assigned to the group, how many of its enrolled members have the
//! current version, are being sent it, refused it, still wait for it, or
//! are kept without it (quarantine, another platform).
//!
//! Counting reads every device and every profile row, as a pass does
//! (0.1 s at 10,000 devices), so each reconciliation pass counts every
//! group as it goes and keeps the figures ([`ProgressCache`]); a page
//! shows them "as of" that pass, and counts anew only when asked.

use super::reconcile::FleetView;
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
    /// When the reconciliation pass that counted these ran (None: counted
    /// now).
    #[serde(with = "time::serde::rfc3339::option")]
    pub as_of: Option<OffsetDateTime>,
}

impl GroupProgress {
    /// An empty count of `g`'s policies.
    fn of(g: &DeviceGroup, policies: &HashMap<String, Policy>) -> Self {
        Self {
            members: 0,
            policies: g
                .policies
                .iter()
                .filter_map(|pid| policies.get(pid))
                .map(|p| PolicyProgress {
                    policy_id: p.id.clone(),
                    name: p.name.clone(),
                    version: p.version,
                    ..PolicyProgress::default()
                })
                .collect(),
            as_of: None,
        }
    }

    /// Counts one enrolled member whose desired profiles are `desired` and
    /// whose profile rows are `have`.
    fn member(
        &mut self,
        policies: &HashMap<String, Policy>,
        platform: &str,
        desired: &BTreeMap<&str, &Policy>,
        have: Option<&BTreeMap<String, DeviceProfile>>,
    ) {
        self.members += 1;
        for progress in &mut self.policies {
            if let Some(p) = policies.get(&progress.policy_id) {
                count(progress, p, platform, desired, have);
            }
        }
    }
}

/// Every group's progress as the last reconciliation pass counted it.
#[derive(Debug, Default)]
pub struct ProgressCache(
    std::sync::Mutex<Option<(OffsetDateTime, HashMap<String, GroupProgress>)>>,
);

impl ProgressCache {
    /// Keeps what a pass counted.
    pub(crate) fn put(&self, at: OffsetDateTime, groups: HashMap<String, GroupProgress>) {
        if let Ok(mut held) = self.0.lock() {
            *held = Some((at, groups));
        }
    }

    /// One group's count from the last pass, with the pass's time.
    fn get(&self, group: &str) -> Option<GroupProgress> {
        let held = self.0.lock().ok()?;
        let (at, groups) = held.as_ref()?;
        let mut p = groups.get(group)?.clone();
        p.as_of = Some(*at);
        Some(p)
    }
}

/// What a pass counts as it goes: every group's progress.
pub(super) struct Tally {
    groups: HashMap<String, GroupProgress>,
}

impl Tally {
    pub(super) fn new(view: &FleetView) -> Self {
        Self {
            groups: view
                .groups
                .iter()
                .map(|g| (g.id.clone(), GroupProgress::of(g, &view.policies)))
                .collect(),
        }
    }

    /// Counts one enrolled device in each of its groups.
    pub(super) fn device(
        &mut self,
        view: &FleetView,
        d: &Device,
        desired: &BTreeMap<&str, &Policy>,
        have: &BTreeMap<String, DeviceProfile>,
    ) {
        let platform = crate::device::devices::platform_of(d);
        for g in view
            .groups
            .iter()
            .filter(|g| view.membership.contains(g, d))
        {
            if let Some(p) = self.groups.get_mut(&g.id) {
                p.member(&view.policies, platform, desired, Some(have));
            }
        }
    }

    pub(super) fn into_groups(self) -> HashMap<String, GroupProgress> {
        self.groups
    }
}

impl Services {
    /// The reconcile progress of one group's enrolled devices: as the last
    /// reconciliation pass counted it, or (`now`, or before any pass
    /// counted the group) counted now.
    pub async fn group_progress(
        &self,
        _by: &Authorized<DevicesRead>,
        id: &str,
        now: bool,
    ) -> CoreResult<GroupProgress> {
        let g = self.group_record(id).await?;
        if !now {
            if let Some(p) = self.progress.get(&g.id) {
                return Ok(p);
            }
        }
        let at = self.clock.now();
        let view = self.fleet_view().await?;
        let rows = self.profile_rows().await?;
        let mut out = GroupProgress::of(&g, &view.policies);
        let mut after: Option<DeviceKey> = None;
        loop {
            let page = self.ports.fleet.list_devices(after.as_ref(), 1000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.udid.clone());
            for d in page.iter().filter(|d| {
                d.status == EnrollmentStatus::Enrolled && view.membership.contains(&g, d)
            }) {
                let desired = self.desired_profiles(&view, d, at);
                let platform = crate::device::devices::platform_of(d);
                out.member(
                    &view.policies,
                    platform,
                    &desired,
                    rows.get(d.udid.as_str()),
                );
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
