//! Inventory refresh and search. Every enrolled device is asked for
//! DeviceInformation, SecurityInfo, InstalledApplicationList and
//! ProfileList when it has never been (within minutes of enrolling) and
//! again once a day, in bounded batches; the answers update the typed
//! fields (a malformed or partial answer keeps the last good inventory).
//! Devices are found by serial number, model, OS version, installed app or
//! assigned person (pseudonymous ID).

use crate::access::permit::DevicesRead;
use crate::access::Operator;
use crate::access::{Authorized, ClientContext};
use crate::device::devices::DeviceView;
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{DeviceKey, PersonId};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashSet;
use time::Duration;

/// What DeviceInformation asks for.
pub const INVENTORY_QUERIES: &[&str] = &[
    "UDID",
    "DeviceName",
    "OSVersion",
    "BuildVersion",
    "Model",
    "ModelName",
    "ProductName",
    "SerialNumber",
    "IsSupervised",
    "IsActivationLockEnabled",
];

/// A device search: every filter given must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceQuery {
    /// Serial number, exactly.
    pub serial: Option<String>,
    /// Model contains (case-insensitive).
    pub model: Option<String>,
    /// OS version starts with.
    pub os_version: Option<String>,
    /// An installed app: bundle ID, or name contains.
    pub app: Option<String>,
    /// Assigned person, by pseudonymous ID.
    pub person: Option<String>,
    /// Platform: `iOS` or `macOS`.
    #[serde(default)]
    pub platform: Option<String>,
    /// Seen (checked in) within this many days.
    #[serde(default)]
    pub seen_within_days: Option<u32>,
    /// Not seen for more than this many days.
    #[serde(default)]
    pub unseen_for_days: Option<u32>,
    /// Only these devices (UDIDs; a group's members, say): set by the
    /// caller from another context, never from a request.
    #[serde(skip)]
    pub within: Option<HashSet<String>>,
    /// Not these devices (set like `within`).
    #[serde(skip)]
    pub except: Option<HashSet<String>>,
}

impl Services {
    /// Asks the devices whose inventory is due (never asked, or longer ago
    /// than `every`) for it; at most `max` devices. Returns how many.
    pub async fn refresh_inventory_once(
        &self,
        _by: &Operator,
        max: u32,
        every: Duration,
    ) -> CoreResult<usize> {
        let now = self.clock.now();
        let due = self.ports.device.inventory_due(now - every, max).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let udids: Vec<String> = due.iter().map(ToString::to_string).collect();
        for cmd in [
            json!({"RequestType": "DeviceInformation", "Queries": INVENTORY_QUERIES}),
            json!({"RequestType": "SecurityInfo"}),
            json!({"RequestType": "InstalledApplicationList"}),
            json!({"RequestType": "ProfileList"}),
        ] {
            self.queue_command(&udids, &cmd, false).await?;
        }
        self.ports
            .device
            .mark_inventory_requested(&due, now)
            .await?;
        self.push_devices(due.clone());
        tracing::info!(devices = due.len(), "inventory requested");
        Ok(due.len())
    }

    /// Refreshes inventories forever (spawn it): a pass every `period`,
    /// each device once per `every`.
    pub async fn run_inventory_refresh(
        self,
        by: Operator,
        period: std::time::Duration,
        every: Duration,
    ) {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tick.tick().await;
            if let Err(e) = self.refresh_inventory_once(&by, 1000, every).await {
                tracing::error!(error = %e, "inventory refresh failed");
            }
        }
    }

    /// A device's installed applications.
    pub async fn device_apps(
        &self,
        _by: &Authorized<DevicesRead>,
        udid: &str,
    ) -> CoreResult<Vec<mamori_ports::InstalledApp>> {
        let key = DeviceKey::parse(udid).map_err(|e| CoreError::BadRequest(e.to_string()))?;
        if self.ports.device.device(&key).await?.is_none() {
            return Err(CoreError::NotFound("no such device".into()));
        }
        Ok(self.ports.device.device_apps(&key).await?)
    }

    /// Devices matching every filter given (at most 1,000), as `actor` may
    /// see them (personal fields: [`Self::device_views`]).
    pub async fn search_devices(
        &self,
        proof: &Authorized<DevicesRead>,
        ctx: &ClientContext,
        q: &DeviceQuery,
    ) -> CoreResult<Vec<DeviceView>> {
        let actor = proof.require_admin()?;
        let found = self.matching_devices(q).await?;
        self.device_views(actor, ctx, found).await
    }

    /// How many devices match (at most 1,000 are counted) and the first
    /// `limit` of them with every personal field withheld, whoever asks:
    /// a list names no one, so reading it reveals nothing to audit.
    pub async fn find_devices(
        &self,
        _by: &Authorized<DevicesRead>,
        q: &DeviceQuery,
        limit: usize,
    ) -> CoreResult<(usize, Vec<DeviceView>)> {
        let mut found = self.matching_devices(q).await?;
        let total = found.len();
        found.truncate(limit);
        Ok((total, self.withheld_views(found)))
    }

    /// The devices with each of these serial numbers (exactly), found in
    /// one pass over the inventory whatever their number.
    pub async fn udids_by_serial(
        &self,
        _by: &Authorized<DevicesRead>,
        serials: &[String],
    ) -> CoreResult<std::collections::HashMap<String, Vec<DeviceKey>>> {
        let wanted: HashSet<&str> = serials.iter().map(String::as_str).collect();
        let mut out: std::collections::HashMap<String, Vec<DeviceKey>> =
            std::collections::HashMap::new();
        let mut after: Option<DeviceKey> = None;
        loop {
            let page = self.ports.device.list_devices(after.as_ref(), 1000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.udid.clone());
            for d in &page {
                if let Some(serial) = d.serial_number.as_deref().filter(|s| wanted.contains(s)) {
                    out.entry(serial.to_owned())
                        .or_default()
                        .push(d.udid.clone());
                }
            }
        }
        Ok(out)
    }

    /// The devices matching `q`, at most 1,000.
    async fn matching_devices(&self, q: &DeviceQuery) -> CoreResult<Vec<mamori_domain::Device>> {
        let mut only: Option<HashSet<String>> = None;
        let mut narrow = |set: HashSet<String>| {
            only = Some(match only.take() {
                Some(prev) => prev.intersection(&set).cloned().collect(),
                None => set,
            });
        };
        if let Some(app) = q.app.as_deref().filter(|a| !a.is_empty()) {
            narrow(
                self.ports
                    .device
                    .devices_with_app(app)
                    .await?
                    .into_iter()
                    .map(|k| k.to_string())
                    .collect(),
            );
        }
        if let Some(p) = q.person.as_deref().filter(|p| !p.is_empty()) {
            let id = PersonId::parse(p).map_err(|e| CoreError::BadRequest(e.to_string()))?;
            narrow(
                self.ports
                    .device
                    .person_devices(&id)
                    .await?
                    .into_iter()
                    .map(|k| k.to_string())
                    .collect(),
            );
        }
        if let Some(within) = &q.within {
            narrow(within.clone());
        }
        let now = self.clock.now();
        let days = |n: u32| Duration::days(i64::from(n));
        let lower = |s: &Option<String>| s.as_deref().unwrap_or("").to_ascii_lowercase();
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.ports.device.list_devices(after.as_ref(), 1000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.udid.clone());
            for d in page {
                let keep = only.as_ref().is_none_or(|s| s.contains(d.udid.as_str()))
                    && !q
                        .except
                        .as_ref()
                        .is_some_and(|s| s.contains(d.udid.as_str()))
                    && q.platform.as_ref().is_none_or(|p| {
                        crate::device::devices::platform_of(&d).eq_ignore_ascii_case(p)
                    })
                    && q.seen_within_days
                        .is_none_or(|n| now - d.last_seen_at <= days(n))
                    && q.unseen_for_days
                        .is_none_or(|n| now - d.last_seen_at > days(n))
                    && q.serial
                        .as_ref()
                        .is_none_or(|s| d.serial_number.as_deref() == Some(s))
                    && q.model.as_ref().is_none_or(|m| {
                        lower(&d.model).contains(&m.to_ascii_lowercase())
                            || lower(&d.model_name).contains(&m.to_ascii_lowercase())
                    })
                    && q.os_version.as_ref().is_none_or(|v| {
                        d.os_version
                            .as_deref()
                            .unwrap_or("")
                            .starts_with(v.as_str())
                    });
                if keep {
                    out.push(d);
                    if out.len() >= 1000 {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }
}
