//! The reconciler: brings every enrolled device to the policies of its
//! groups, a bounded number of commands per pass.

use super::*;
use crate::access::Operator;

/// What one reconciliation pass reads once: policies by ID, groups, their
/// compliance rules and members.
pub(super) struct FleetView {
    pub(super) policies: HashMap<String, Policy>,
    pub(super) groups: Vec<DeviceGroup>,
    pub(super) rules: HashMap<String, crate::fleet::compliance::ComplianceRules>,
    pub(super) membership: crate::fleet::compliance::Membership,
}

/// What one reconciliation pass has decided so far.
pub(super) struct Pass {
    now: OffsetDateTime,
    max_commands: usize,
    report: ReconcileReport,
    /// The InstallProfile command of each policy version, built once.
    install_dicts: HashMap<String, CommandDict>,
    commands: Vec<NewCommand>,
    new_rows: Vec<DeviceProfile>,
    push: Vec<DeviceKey>,
}

impl Services {
    /// One reconciliation pass: queues at most `max_commands` commands.
    pub async fn reconcile_once(
        &self,
        _by: &Authorized<CommandsWrite>,
        max_commands: usize,
    ) -> CoreResult<ReconcileReport> {
        let now = self.clock.now();
        let view = self.fleet_view().await?;
        let mut rows = self.profile_rows().await?;
        let mut tally = progress::Tally::new(&view);
        let mut pass = Pass {
            now,
            max_commands,
            report: ReconcileReport::default(),
            install_dicts: HashMap::new(),
            commands: Vec::new(),
            new_rows: Vec::new(),
            push: Vec::new(),
        };
        let mut after: Option<DeviceKey> = None;
        loop {
            let page = self.ports.fleet.list_devices(after.as_ref(), 1000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.udid.clone());
            for d in page
                .iter()
                .filter(|d| d.status == EnrollmentStatus::Enrolled)
            {
                pass.report.devices += 1;
                let mut current = rows.remove(d.udid.as_str()).unwrap_or_default();
                let queued_before = pass.new_rows.len();
                let desired = self.reconcile_device(&view, &mut pass, d, &current).await?;
                // Each group's progress, as the device will stand once this
                // pass is written.
                for r in &pass.new_rows[queued_before..] {
                    current.insert(r.profile_identifier.clone(), r.clone());
                }
                tally.device(&view, d, &desired, &current);
            }
        }
        let report = self.queue_pass(pass).await?;
        self.progress.put(now, tally.into_groups());
        Ok(report)
    }

    /// What a pass (or a progress report) reads once.
    pub(super) async fn fleet_view(&self) -> CoreResult<FleetView> {
        let groups = self.ports.fleet.list_groups().await?;
        Ok(FleetView {
            policies: self
                .ports
                .fleet
                .list_policies()
                .await?
                .into_iter()
                .map(|p| (p.id.clone(), p))
                .collect(),
            rules: self.compliance_rules().await?,
            membership: self.membership(&groups).await?,
            groups,
        })
    }

    /// Every policy profile row, by device and profile identifier.
    pub(super) async fn profile_rows(
        &self,
    ) -> CoreResult<HashMap<String, BTreeMap<String, DeviceProfile>>> {
        let mut rows: HashMap<String, BTreeMap<String, DeviceProfile>> = HashMap::new();
        for r in self.ports.fleet.device_profiles().await? {
            rows.entry(r.udid.clone())
                .or_default()
                .insert(r.profile_identifier.clone(), r);
        }
        Ok(rows)
    }

    /// Brings one device towards its groups' policies: installs what it
    /// lacks or has in an older version, removes what it should not have.
    /// Returns its desired profiles.
    // Length: the install pass and the removal pass over one device share the
    // queue budget and the push flag; together, the budget reads in one place.
    pub(super) async fn reconcile_device<'v>(
        &self,
        view: &'v FleetView,
        pass: &mut Pass,
        d: &Device,
        current: &BTreeMap<String, DeviceProfile>,
    ) -> CoreResult<BTreeMap<&'v str, &'v Policy>> {
        let desired = self.desired_profiles(view, d, pass.now);
        let now = pass.now;
        let waiting = |r: &DeviceProfile| r.retry_at.is_some_and(|t| t > now);
        let mut queued_here = false;
        for (ident, p) in &desired {
            let row = current.get(*ident);
            let needed = match row {
                None => true,
                Some(r) => match r.state {
                    ProfileState::Installing | ProfileState::Removing => false,
                    ProfileState::Installed => r.profile_uuid != p.profile_uuid && !waiting(r),
                    ProfileState::Failed => !waiting(r),
                },
            };
            if !needed {
                continue;
            }
            if pass.commands.len() >= pass.max_commands {
                pass.report.deferred += 1;
                continue;
            }
            let dict = match pass.install_dicts.get(&p.id) {
                Some(d) => d.clone(),
                None => {
                    let d = self.install_dict(p).await?;
                    pass.install_dicts.insert(p.id.clone(), d.clone());
                    d
                }
            };
            let uuid = CommandUuid::new_random();
            pass.commands.push(self.new_command(&d.udid, &uuid, dict)?);
            pass.new_rows.push(DeviceProfile {
                udid: d.udid.as_str().to_owned(),
                profile_identifier: (*ident).to_owned(),
                policy_id: p.id.clone(),
                profile_uuid: p.profile_uuid.clone(),
                state: ProfileState::Installing,
                command_uuid: Some(uuid.to_string()),
                attempts: row.map_or(0, |r| r.attempts),
                retry_at: None,
                updated_at: now,
            });
            pass.report.installs += 1;
            queued_here = true;
        }
        for (ident, r) in current {
            if desired.contains_key(ident.as_str()) {
                continue;
            }
            match r.state {
                ProfileState::Installing | ProfileState::Removing => continue,
                // A failed install may have been an update over an
                // installed version: removed like an installed one.
                _ if waiting(r) => continue,
                _ => {}
            }
            if pass.commands.len() >= pass.max_commands {
                pass.report.deferred += 1;
                continue;
            }
            let dict = Command::RemoveProfile {
                identifier: ident.clone(),
            }
            .into_dict()
            .map_err(|e| CoreError::internal("RemoveProfile", e))?;
            let uuid = CommandUuid::new_random();
            pass.commands.push(self.new_command(&d.udid, &uuid, dict)?);
            pass.new_rows.push(DeviceProfile {
                state: ProfileState::Removing,
                command_uuid: Some(uuid.to_string()),
                updated_at: now,
                ..r.clone()
            });
            pass.report.removals += 1;
            queued_here = true;
        }
        if queued_here {
            pass.push.push(d.udid.clone());
        }
        Ok(desired)
    }

    /// A device's desired profiles (identifier → policy), from the groups
    /// it is in, for its platform — without the sensitive ones (Wi-Fi,
    /// VPN) while it is quarantined for non-compliance.
    pub(super) fn desired_profiles<'v>(
        &self,
        view: &'v FleetView,
        d: &Device,
        now: OffsetDateTime,
    ) -> BTreeMap<&'v str, &'v Policy> {
        let mine: Vec<&DeviceGroup> = view
            .groups
            .iter()
            .filter(|g| view.membership.contains(g, d))
            .collect();
        let my_rules: Vec<&crate::fleet::compliance::ComplianceRules> =
            mine.iter().filter_map(|g| view.rules.get(&g.id)).collect();
        let quarantined = my_rules.iter().any(|r| r.quarantine)
            && !self.device_compliance(d, &my_rules, now).compliant;
        let platform = crate::device::devices::platform_of(d);
        let mut desired = BTreeMap::new();
        for g in &mine {
            for p in g.policies.iter().filter_map(|pid| view.policies.get(pid)) {
                if quarantined && crate::fleet::compliance::is_sensitive(p.kind) {
                    continue;
                }
                if !p.platforms.is_empty() && !p.platforms.iter().any(|x| x == platform) {
                    continue;
                }
                desired.insert(p.profile_identifier.as_str(), p);
            }
        }
        desired
    }

    /// Writes what a pass decided: one audit record, the commands, then
    /// the rows that wait for their answers; the devices are pushed.
    pub(super) async fn queue_pass(&self, pass: Pass) -> CoreResult<ReconcileReport> {
        let Pass {
            now,
            report,
            commands,
            new_rows,
            push,
            ..
        } = pass;
        if commands.is_empty() {
            return Ok(report);
        }
        self.audit(
            self.audit_record(
                "system",
                &ClientContext::default(),
                AuditAction::PolicyReconcile,
                Outcome::Success,
            )
            .detail(format!(
                "devices={} installs={} removals={} deferred={}",
                push.len(),
                report.installs,
                report.removals,
                report.deferred
            )),
        )
        .await?;
        // Commands first: if the rows then fail to save, the next pass
        // queues again (an install is idempotent); the reverse would leave
        // rows waiting for commands that do not exist.
        self.ports.fleet.enqueue(&commands, now).await?;
        self.ports.fleet.put_device_profiles(&new_rows).await?;
        tracing::info!(
            installs = report.installs,
            removals = report.removals,
            deferred = report.deferred,
            "profiles reconciled"
        );
        self.push_devices(push);
        Ok(report)
    }

    pub(super) async fn install_dict(&self, p: &Policy) -> CoreResult<CommandDict> {
        let profile = self.profile_of(&p.id).await?;
        Command::InstallProfile {
            payload: profile.to_vec(),
        }
        .into_dict()
        .map_err(|e| CoreError::internal("InstallProfile", e))
    }

    pub(super) fn new_command(
        &self,
        device: &DeviceKey,
        uuid: &CommandUuid,
        dict: CommandDict,
    ) -> CoreResult<NewCommand> {
        let request_type = dict.request_type().as_str().to_owned();
        let payload = dict.encode(uuid.as_str());
        if payload.is_empty() {
            return Err(CoreError::Internal("command could not be encoded".into()));
        }
        Ok(NewCommand {
            payload: self.seal_command(uuid, &payload)?,
            command_uuid: uuid.clone(),
            device: device.clone(),
            request_type,
        })
    }

    /// Reconciles forever (spawn it).
    pub async fn run_reconciler(self, by: Operator, every: std::time::Duration, batch: usize) {
        let by = match by.actor().authorize::<CommandsWrite>() {
            Ok(by) => by,
            Err(e) => {
                tracing::error!(error = %e, "the reconciler cannot act");
                return;
            }
        };
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = self.reconcile_once(&by, batch).await {
                tracing::error!(error = %e, "profile reconciliation failed");
            }
        }
    }
}
