//! Compliance: rules per group — minimum OS version per platform, no OS
//! version known to be vulnerable (a shipped list, replaceable by
//! `DATA_DIR/vulnerable-os.json`), passcode present and compliant,
//! encryption, supervision, last check-in age — give each device a
//! compliance state with its reasons. A non-compliant device in a group
//! that quarantines loses the sensitive profiles (Wi-Fi, VPN) at the next
//! reconciliation and gets them back once compliant.

use crate::access::permit::{CommandsWrite, DevicesRead};
use crate::access::Authorized;
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AuditAction, Outcome};
use mamori_domain::{Device, EnrollmentStatus, PolicyKind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

/// The list shipped with this build.
pub const SHIPPED_VULNERABLE_OS: &str = include_str!("../../data/vulnerable-os.json");

/// One vulnerable line: versions of `major` below `fixed_in`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VulnerableEntry {
    /// `iOS` or `macOS`.
    pub platform: String,
    /// Major version the entry applies to.
    pub major: u32,
    /// First fixed version.
    pub fixed_in: String,
    /// The vulnerability.
    pub cve: String,
    /// What it is.
    #[serde(default)]
    pub note: String,
}

/// OS versions known to be vulnerable.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VulnerableOs {
    /// When the list was last updated.
    pub updated: String,
    /// Where it comes from.
    #[serde(default)]
    pub source: String,
    /// The entries.
    pub entries: Vec<VulnerableEntry>,
}

impl VulnerableOs {
    /// Parses a list (the shipped one, or an operator's replacement).
    pub fn parse(json: &str) -> Result<Self, String> {
        let v: Self = serde_json::from_str(json).map_err(|e| e.to_string())?;
        for e in &v.entries {
            if !matches!(e.platform.as_str(), "iOS" | "macOS")
                || parse_version(&e.fixed_in).is_none()
            {
                return Err(format!("bad entry for {} ({})", e.platform, e.cve));
            }
        }
        Ok(v)
    }

    /// The shipped list.
    pub fn shipped() -> Self {
        Self::parse(SHIPPED_VULNERABLE_OS).unwrap_or(Self {
            updated: String::new(),
            source: String::new(),
            entries: Vec::new(),
        })
    }

    /// Entries a version falls under.
    pub fn findings(&self, platform: &str, version: &str) -> Vec<&VulnerableEntry> {
        let Some(v) = parse_version(version) else {
            return Vec::new();
        };
        self.entries
            .iter()
            .filter(|e| {
                e.platform == platform
                    && v.first() == Some(&e.major)
                    && parse_version(&e.fixed_in).is_some_and(|f| v < f)
            })
            .collect()
    }
}

/// `17.4.1` → [17, 4, 1] (missing parts are 0 when compared).
pub fn parse_version(s: &str) -> Option<Vec<u32>> {
    let mut v: Vec<u32> = s
        .trim()
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    while v.len() < 3 {
        v.push(0);
    }
    Some(v)
}

use crate::device::devices::platform_of;

/// A group's compliance rules.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ComplianceRules {
    /// Minimum OS version per platform (`{"iOS": "18.0", "macOS": "15.0"}`).
    #[serde(default)]
    pub min_os: BTreeMap<String, String>,
    /// Refuse OS versions on the vulnerable list (default on).
    #[serde(default = "yes")]
    pub no_vulnerable_os: bool,
    /// A passcode must be set and compliant (SecurityInfo).
    #[serde(default)]
    pub require_passcode: bool,
    /// Data protection (iOS) / FileVault (macOS) must be on (SecurityInfo).
    #[serde(default)]
    pub require_encryption: bool,
    /// The device must be supervised.
    #[serde(default)]
    pub require_supervised: bool,
    /// The device must have checked in within this many days.
    #[serde(default)]
    pub max_checkin_days: Option<u32>,
    /// Remove sensitive profiles (Wi-Fi, VPN) from non-compliant devices.
    #[serde(default)]
    pub quarantine: bool,
}

fn yes() -> bool {
    true
}

/// A device's compliance.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeviceCompliance {
    /// The device.
    pub udid: String,
    /// `iOS` or `macOS`.
    pub platform: String,
    /// OS version as last reported.
    pub os_version: Option<String>,
    /// True when every rule of its groups holds.
    pub compliant: bool,
    /// Why not.
    pub reasons: Vec<String>,
    /// Sensitive profiles withheld.
    pub quarantined: bool,
}

/// The compliance report.
#[derive(Debug, Clone, Serialize)]
pub struct ComplianceReport {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The vulnerable-OS list's date.
    pub vulnerable_os_list: String,
    /// Enrolled devices.
    pub devices: usize,
    /// Compliant ones.
    pub compliant: usize,
    /// Quarantined ones.
    pub quarantined: usize,
    /// Devices per reason kind.
    pub by_reason: BTreeMap<String, usize>,
    /// The non-compliant devices.
    pub non_compliant: Vec<DeviceCompliance>,
}

fn flag(v: Option<&serde_json::Value>, key: &str) -> Option<bool> {
    v.and_then(|s| s.get(key))
        .and_then(serde_json::Value::as_bool)
}

/// Why a device fails the encryption rule (FileVault on a Mac, data
/// protection elsewhere), if it does.
fn encryption_reason(platform: &str, sec: Option<&serde_json::Value>) -> Option<String> {
    let encrypted = if platform == "macOS" {
        flag(sec, "FDE_Enabled")
    } else {
        sec.and_then(|s| s.get("HardwareEncryptionCaps"))
            .and_then(serde_json::Value::as_i64)
            .map(|caps| caps & 2 == 2)
    };
    match encrypted {
        Some(true) => None,
        None => Some("encryption_unknown: no SecurityInfo yet".to_owned()),
        Some(false) => Some("encryption: off".to_owned()),
    }
}

/// Evaluates one device against the rules of its groups (pure).
pub fn evaluate(
    d: &Device,
    supervised: Option<bool>,
    rules: &[&ComplianceRules],
    vuln: &VulnerableOs,
    now: OffsetDateTime,
) -> DeviceCompliance {
    let platform = platform_of(d);
    let mut reasons = Vec::new();
    let version = d.os_version.as_deref();
    let parsed = version.and_then(parse_version);
    for r in rules {
        if let Some(min) = r.min_os.get(platform) {
            match (&parsed, parse_version(min)) {
                (Some(v), Some(m)) if *v < m => {
                    reasons.push(format!(
                        "os_below_minimum: {platform} {} < {min}",
                        version.unwrap_or("")
                    ));
                }
                (None, _) => reasons.push("os_unknown: no OS version reported".to_owned()),
                _ => {}
            }
        }
        if r.no_vulnerable_os {
            for e in vuln.findings(platform, version.unwrap_or("")) {
                reasons.push(format!(
                    "os_vulnerable: {platform} {} is before {} ({})",
                    version.unwrap_or(""),
                    e.fixed_in,
                    e.cve
                ));
            }
        }
        let sec = d.security_info.as_ref();
        if r.require_passcode {
            match (flag(sec, "PasscodePresent"), flag(sec, "PasscodeCompliant")) {
                (Some(true), Some(true)) => {}
                (None, _) => reasons.push("passcode_unknown: no SecurityInfo yet".to_owned()),
                _ => reasons.push("passcode: missing or not compliant".to_owned()),
            }
        }
        if r.require_encryption {
            reasons.extend(encryption_reason(platform, sec));
        }
        if r.require_supervised {
            match supervised {
                Some(true) => {}
                None => reasons.push("supervision_unknown: no DeviceInformation yet".to_owned()),
                Some(false) => reasons.push("supervision: not supervised".to_owned()),
            }
        }
        if let Some(days) = r.max_checkin_days {
            if now - d.last_seen_at > time::Duration::days(i64::from(days)) {
                reasons.push(format!("checkin: none for more than {days} days"));
            }
        }
    }
    reasons.sort();
    reasons.dedup();
    let compliant = reasons.is_empty();
    DeviceCompliance {
        udid: d.udid.to_string(),
        platform: platform.to_owned(),
        os_version: d.os_version.clone(),
        compliant,
        quarantined: !compliant && rules.iter().any(|r| r.quarantine),
        reasons,
    }
}

/// Who is in which group, built once per pass: the listed members of
/// static groups and, for rules naming a department, the devices of the
/// people in it (group ID → UDIDs).
#[derive(Debug, Default)]
pub struct Membership {
    listed: HashMap<String, std::collections::HashSet<String>>,
    department: HashMap<String, std::collections::HashSet<String>>,
}

impl Membership {
    /// Whether a device belongs to a group (listed, or matching its rule).
    pub fn contains(&self, g: &mamori_domain::DeviceGroup, d: &Device) -> bool {
        let udid = d.udid.as_str();
        let within = |m: &HashMap<String, std::collections::HashSet<String>>| {
            m.get(&g.id).is_some_and(|s| s.contains(udid))
        };
        match &g.rule {
            None => within(&self.listed),
            Some(rule) => {
                rule.matches(
                    d.model.as_deref(),
                    d.product_name.as_deref(),
                    d.os_version.as_deref(),
                ) && (rule.department.is_none() || within(&self.department))
            }
        }
    }
}

/// Policies withheld from a quarantined device.
pub fn is_sensitive(kind: PolicyKind) -> bool {
    matches!(kind, PolicyKind::Wifi | PolicyKind::Vpn)
}

impl Services {
    /// Sets (or clears, with None) a group's compliance rules.
    pub async fn set_group_compliance(
        &self,
        by: &Authorized<CommandsWrite>,
        ctx: &crate::access::ClientContext,
        group: &str,
        rules: Option<&ComplianceRules>,
    ) -> CoreResult<()> {
        let g = self.group_record(group).await?;
        if let Some(r) = rules {
            for (platform, v) in &r.min_os {
                if !matches!(platform.as_str(), "iOS" | "macOS") || parse_version(v).is_none() {
                    return Err(CoreError::BadRequest(format!(
                        "min_os: {platform:?} {v:?} is not a platform (iOS, macOS) and version"
                    )));
                }
            }
        }
        let json = rules
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| CoreError::Internal(e.into()))?;
        self.audit(
            self.audit_record(
                &by.label(),
                ctx,
                AuditAction::GroupCompliance,
                Outcome::Success,
            )
            .target(&g.id)
            .detail_opt(json.as_ref().map(ToString::to_string)),
        )
        .await?;
        self.ports
            .fleet
            .set_group_compliance(&g.id, json.as_ref())
            .await?;
        Ok(())
    }

    /// One device's compliance under the given rules.
    pub(crate) fn device_compliance(
        &self,
        d: &Device,
        rules: &[&ComplianceRules],
        now: OffsetDateTime,
    ) -> DeviceCompliance {
        // IsSupervised is in the DeviceInformation answer, stored sealed.
        let supervised = if rules.iter().any(|r| r.require_supervised) {
            d.device_information
                .clone()
                .and_then(|v| self.open_device_json(&d.udid, "device_information", v))
                .and_then(|v| mamori_protocol::results::is_supervised(&v))
        } else {
            None
        };
        evaluate(d, supervised, rules, &self.config.vulnerable_os, now)
    }

    /// The membership index of these groups.
    pub(crate) async fn membership(
        &self,
        groups: &[mamori_domain::DeviceGroup],
    ) -> CoreResult<Membership> {
        let mut out = Membership::default();
        for g in groups {
            match g.rule.as_ref().map(|r| r.department.as_deref()) {
                None => {
                    out.listed
                        .insert(g.id.clone(), g.members.iter().cloned().collect());
                }
                Some(Some(dep)) => {
                    let people = self.people_in_department(dep).await?;
                    let devices = self.ports.fleet.people_devices(&people).await?;
                    out.department.insert(
                        g.id.clone(),
                        devices
                            .into_iter()
                            .flatten()
                            .map(|k| k.to_string())
                            .collect(),
                    );
                }
                Some(None) => {}
            }
        }
        Ok(out)
    }

    /// Every group's compliance rules.
    pub(crate) async fn compliance_rules(&self) -> CoreResult<HashMap<String, ComplianceRules>> {
        let mut out = HashMap::new();
        for (g, v) in self.ports.fleet.group_compliance().await? {
            let r: ComplianceRules = serde_json::from_value(v)
                .map_err(|e| CoreError::internal("stored compliance rules", e))?;
            out.insert(g, r);
        }
        Ok(out)
    }

    /// One group's compliance rules (None: the group has none).
    pub async fn group_compliance(
        &self,
        _by: &Authorized<DevicesRead>,
        group: &str,
    ) -> CoreResult<Option<ComplianceRules>> {
        let g = self.group_record(group).await?;
        Ok(self.compliance_rules().await?.remove(&g.id))
    }

    /// The compliance of every enrolled device.
    pub async fn compliance_report(
        &self,
        _by: &Authorized<DevicesRead>,
    ) -> CoreResult<ComplianceReport> {
        let now = self.clock.now();
        let rules = self.compliance_rules().await?;
        let groups = self.ports.fleet.list_groups().await?;
        let membership = self.membership(&groups).await?;
        let vuln = &self.config.vulnerable_os;
        let mut report = ComplianceReport {
            at: now,
            vulnerable_os_list: vuln.updated.clone(),
            devices: 0,
            compliant: 0,
            quarantined: 0,
            by_reason: BTreeMap::new(),
            non_compliant: Vec::new(),
        };
        let mut after = None;
        loop {
            let page = self.ports.fleet.list_devices(after.as_ref(), 1000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.udid.clone());
            for d in page
                .iter()
                .filter(|d| d.status == EnrollmentStatus::Enrolled)
            {
                let mine: Vec<&ComplianceRules> = groups
                    .iter()
                    .filter(|g| membership.contains(g, d))
                    .filter_map(|g| rules.get(&g.id))
                    .collect();
                let c = self.device_compliance(d, &mine, now);
                report.devices += 1;
                if c.compliant {
                    report.compliant += 1;
                    continue;
                }
                if c.quarantined {
                    report.quarantined += 1;
                }
                let kinds: std::collections::BTreeSet<&str> = c
                    .reasons
                    .iter()
                    .map(|r| r.split(':').next().unwrap_or(r))
                    .collect();
                for kind in kinds {
                    *report.by_reason.entry(kind.to_owned()).or_insert(0) += 1;
                }
                report.non_compliant.push(c);
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_shipped_list_loads_and_flags_versions_below_the_fix_in_their_line() {
        let v = VulnerableOs::shipped();
        assert!(!v.entries.is_empty());
        assert_eq!(v.findings("iOS", "18.1").len(), 2);
        assert!(v.findings("iOS", "18.6.2").is_empty());
        assert!(v.findings("iOS", "18.7").is_empty());
        assert_eq!(v.findings("iOS", "17.2.1")[0].cve, "CVE-2024-23222");
        assert!(v.findings("macOS", "15.7").is_empty());
        assert!(v.findings("iOS", "not a version").is_empty());
        assert!(VulnerableOs::parse(r#"{"updated":"x","entries":[{"platform":"Windows","major":1,"fixed_in":"1","cve":"x"}]}"#).is_err());
        assert_eq!(parse_version("17"), Some(vec![17, 0, 0]));
        assert!(parse_version("17.4") < parse_version("17.10"));
    }
}
