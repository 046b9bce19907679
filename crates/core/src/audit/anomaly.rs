//! Anomaly detection on the audit stream: a background task reads every
//! new audit record (after learning the last `learn_days` of history) and
//! keeps per-actor profiles — networks used, hours of login, daily
//! personal-data reads, recent mass commands. A record that departs from
//! its actor's profile produces an alert: an audit record `alert.<rule>`
//! (severity, evidence: the record sequence numbers), which the sinks
//! deliver like any record. High-severity rules can suspend the actor by
//! policy.
//!
//! The rules that must stop harm inside the request (bulk personal-data
//! reads, a disabled account's token, repeated second-factor failures)
//! live at their call sites; these look at behaviour over time, so a
//! second's delay does not matter. The profiles live in memory and are
//! relearned from the log at start.

use crate::access::ClientContext;
use crate::access::Operator;
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AuditAction, AuditEvent, AuditRecord, Outcome};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use time::{Date, Duration, OffsetDateTime};

/// The stream rules' settings.
#[derive(Debug, Clone)]
pub struct AnomalyPolicy {
    /// History learned at start, and kept, in days.
    pub learn_days: i64,
    /// Alert when an actor acts from a network (/24, /64) it never used.
    pub new_network: bool,
    /// Events an actor needs on record before new networks are alerted.
    pub new_network_min_history: u32,
    /// Alert on a login (administrators) or a use (tokens) at an hour when
    /// the actor is never active.
    pub off_hours: bool,
    /// Logins (uses, for tokens) an actor needs on record before hours are
    /// judged.
    pub off_hours_min_logins: u32,
    /// Devices one actor may lock/erase/unenrol within `mass_window`
    /// before an alert fires (0: rule off).
    pub mass_command_devices: usize,
    /// Window of the mass-command rule.
    pub mass_window: Duration,
    /// Suspend the actor when the mass-command rule fires.
    pub suspend_on_mass_command: bool,
    /// A day's personal-data reads above this many times the actor's
    /// daily average fire an alert (0: rule off).
    pub read_baseline_factor: u32,
    /// ... and above at least this many.
    pub read_baseline_min: u32,
    /// Days with reads the actor needs on record first.
    pub read_baseline_days: usize,
    /// How often the detector looks for new records.
    pub poll: std::time::Duration,
}

impl Default for AnomalyPolicy {
    fn default() -> Self {
        Self {
            learn_days: 30,
            new_network: true,
            new_network_min_history: 3,
            off_hours: true,
            off_hours_min_logins: 10,
            mass_command_devices: 20,
            mass_window: Duration::minutes(10),
            suspend_on_mass_command: false,
            read_baseline_factor: 5,
            read_baseline_min: 100,
            read_baseline_days: 3,
            poll: std::time::Duration::from_secs(1),
        }
    }
}

/// Commands that take devices out of use or wipe them.
pub const MASS_COMMANDS: &[&str] = &[
    "DeviceLock",
    "EraseDevice",
    "DeleteUser",
    "RemoveProfile",
    "ClearPasscode",
    "EnableLostMode",
];

/// One firing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Rule name (the audit action is `alert.<rule>`).
    pub rule: &'static str,
    /// `high`, `medium` or `low`.
    pub severity: &'static str,
    /// Whose behaviour.
    pub actor: String,
    /// The records that show it.
    pub evidence: Vec<i64>,
    /// What was seen.
    pub detail: String,
}

#[derive(Debug, Default)]
struct Profile {
    networks: HashSet<String>,
    events: u32,
    login_hours: [u32; 24],
    logins: u32,
    off_hours_alerted: Option<Date>,
    reads_by_day: BTreeMap<Date, (u32, i64)>,
    read_alerted: Option<Date>,
    commands: VecDeque<(OffsetDateTime, i64, usize)>,
}

/// The network of an address: IPv4 /24, IPv6 /64.
pub fn network_of(source: &str) -> String {
    match source.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => {
            let o = a.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        Ok(std::net::IpAddr::V6(a)) => {
            let s = a.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Err(_) => source.to_owned(),
    }
}

fn devices_in(detail: Option<&str>) -> usize {
    let d = detail.unwrap_or("");
    for part in d.split_whitespace() {
        if let Some(n) = part.strip_prefix("devices=") {
            return n.parse().unwrap_or(1);
        }
    }
    1
}

/// Per-actor profiles and the rules over them (pure).
#[derive(Debug, Default)]
pub struct Profiles {
    actors: HashMap<String, Profile>,
}

impl Profiles {
    /// Takes in one record; with `alerting`, returns the alerts it fires.
    pub fn observe(&mut self, r: &AuditRecord, p: &AnomalyPolicy, alerting: bool) -> Vec<Alert> {
        let e = &r.event;
        let mut out = Vec::new();
        // What an authenticated actor did (an admitted request is an
        // "attempt" until its own record says how it went).
        if !(e.actor.starts_with("admin:") || e.actor.starts_with("token:"))
            || !(e.outcome == "success" || e.outcome == "attempt")
        {
            return out;
        }
        let prof = self.actors.entry(e.actor.clone()).or_default();
        out.extend(prof.new_network(r, p, alerting));
        out.extend(prof.off_hours(r, p, alerting));
        match AuditAction::parse(&e.action) {
            Some(AuditAction::PeopleRead | AuditAction::PeopleExport) => {
                out.extend(prof.read_baseline(r, p, alerting));
            }
            Some(AuditAction::CommandQueue) => {
                out.extend(prof.mass_command(r, p, alerting));
            }
            _ => {}
        }
        out
    }
}

impl Profile {
    /// Rule `new_network`: the first use from a network it was never seen on.
    fn new_network(&mut self, r: &AuditRecord, p: &AnomalyPolicy, alerting: bool) -> Option<Alert> {
        let e = &r.event;
        let mut alert = None;
        if let Some(src) = e.source.as_deref().filter(|s| !s.is_empty()) {
            let net = network_of(src);
            if !self.networks.contains(&net) {
                if alerting && p.new_network && self.events >= p.new_network_min_history {
                    alert = Some(Alert {
                        rule: "new_network",
                        severity: "medium",
                        actor: e.actor.clone(),
                        evidence: vec![r.seq],
                        detail: format!(
                            "first use from network {net} ({} known) action={}",
                            self.networks.len(),
                            e.action
                        ),
                    });
                }
                self.networks.insert(net);
            }
            self.events = self.events.saturating_add(1);
        }
        alert
    }

    /// Rule `off_hours`: a login (or a token's use) at an hour it never acts in.
    fn off_hours(&mut self, r: &AuditRecord, p: &AnomalyPolicy, alerting: bool) -> Option<Alert> {
        let e = &r.event;
        let mut alert = None;
        // Hours: an administrator's logins; a token's every use (scripts
        // run on schedules, so a token at a new hour stands out).
        let token = e.actor.starts_with("token:");
        if token || e.action == AuditAction::AuthLogin.as_str() {
            let h = usize::from(e.at.hour());
            let quiet = [(h + 23) % 24, h, (h + 1) % 24]
                .iter()
                .all(|i| self.login_hours[*i] == 0);
            let day = e.at.date();
            if alerting
                && p.off_hours
                && quiet
                && self.logins >= p.off_hours_min_logins
                && self.off_hours_alerted != Some(day)
            {
                self.off_hours_alerted = Some(day);
                let what = if token { "use" } else { "login" };
                alert = Some(Alert {
                    rule: "off_hours",
                    severity: "medium",
                    actor: e.actor.clone(),
                    evidence: vec![r.seq],
                    detail: format!(
                        "{what} at {h:02}:00 UTC; none of its {} {what}s on record were within an hour of that",
                        self.logins
                    ),
                });
            }
            self.login_hours[h] = self.login_hours[h].saturating_add(1);
            self.logins = self.logins.saturating_add(1);
        }
        alert
    }

    /// Rule `read_baseline`: personal-data reads far above its daily average.
    fn read_baseline(
        &mut self,
        r: &AuditRecord,
        p: &AnomalyPolicy,
        alerting: bool,
    ) -> Option<Alert> {
        let e = &r.event;
        let mut alert = None;
        let day = e.at.date();
        let oldest = day - Duration::days(p.learn_days);
        self.reads_by_day.retain(|d, _| *d >= oldest);
        let today = self.reads_by_day.entry(day).or_insert((0, r.seq));
        today.0 = today.0.saturating_add(1);
        let (count, first) = *today;
        let history: Vec<u32> = self
            .reads_by_day
            .iter()
            .filter(|(d, _)| **d != day)
            .map(|(_, c)| c.0)
            .collect();
        if alerting
            && p.read_baseline_factor > 0
            && history.len() >= p.read_baseline_days
            && self.read_alerted != Some(day)
        {
            let avg = f64::from(history.iter().sum::<u32>()) / history.len() as f64;
            let limit =
                (avg * f64::from(p.read_baseline_factor)).max(f64::from(p.read_baseline_min));
            if f64::from(count) > limit {
                self.read_alerted = Some(day);
                alert = Some(Alert {
                    rule: "read_baseline",
                    severity: "medium",
                    actor: e.actor.clone(),
                    evidence: vec![first, r.seq],
                    detail: format!(
                        "{count} personal-data reads today; its daily average over {} days is {avg:.1}",
                        history.len()
                    ),
                });
            }
        }
        alert
    }

    /// Rule `mass_command`: many devices locked, erased or unenrolled at once.
    fn mass_command(
        &mut self,
        r: &AuditRecord,
        p: &AnomalyPolicy,
        alerting: bool,
    ) -> Option<Alert> {
        let e = &r.event;
        let mut alert = None;
        let kind = e.target.as_deref().unwrap_or("");
        if p.mass_command_devices > 0 && MASS_COMMANDS.contains(&kind) {
            self.commands.retain(|(t, _, _)| e.at - *t < p.mass_window);
            self.commands
                .push_back((e.at, r.seq, devices_in(e.detail.as_deref())));
            let total: usize = self.commands.iter().map(|c| c.2).sum();
            if alerting && total >= p.mass_command_devices {
                let evidence = self.commands.iter().map(|c| c.1).collect();
                self.commands.clear();
                alert = Some(Alert {
                    rule: "mass_command",
                    severity: "high",
                    actor: e.actor.clone(),
                    evidence,
                    detail: format!(
                        "{total} devices locked, erased or unenrolled within {} minutes",
                        p.mass_window.whole_minutes()
                    ),
                });
            }
        }
        alert
    }
}

fn evidence_text(seqs: &[i64]) -> String {
    if seqs.len() > 20 {
        format!(
            "records {}-{} ({} records)",
            seqs.first().copied().unwrap_or(0),
            seqs.last().copied().unwrap_or(0),
            seqs.len()
        )
    } else {
        let list: Vec<String> = seqs.iter().map(i64::to_string).collect();
        format!("records {}", list.join(","))
    }
}

impl Services {
    /// Records an alert (severity and evidence in the detail).
    pub(crate) async fn record_alert(&self, a: &Alert) -> CoreResult<i64> {
        tracing::warn!(rule = a.rule, severity = a.severity, actor = %a.actor, "ALERT");
        // Every rule is in the vocabulary as `alert.RULE` (a unit test
        // walks them).
        let action = AuditAction::parse(&format!("alert.{}", a.rule)).ok_or_else(|| {
            CoreError::Internal(format!("alert rule {} has no audit action", a.rule).into())
        })?;
        let event = AuditEvent {
            at: self.clock.now(),
            actor: "system".into(),
            source: None,
            action: action.as_str().into(),
            target: Some(a.actor.clone()),
            outcome: Outcome::Alert.as_str().into(),
            request_id: None,
            detail: Some(format!(
                "severity={} evidence={} {}",
                a.severity,
                evidence_text(&a.evidence),
                a.detail
            )),
        };
        let seq = self.audit_seq(event).await?;
        if a.severity == "high" {
            self.incident_for_alert(seq, a.rule, &a.actor).await?;
        }
        Ok(seq)
    }

    /// Suspends the account behind an audit label (`admin:NAME`, or the
    /// owner of `token:ID:NAME`): every session and token revoked, logins
    /// refused until another administrator reinstates it.
    pub(crate) async fn suspend_label(&self, label: &str, reason: &str) -> CoreResult<String> {
        let admin = if let Some(rest) = label.strip_prefix("token:") {
            let id = rest.split(':').next().unwrap_or_default();
            let id =
                mamori_domain::TokenId::parse(id).map_err(|e| CoreError::Internal(e.into()))?;
            match self.ports.audit.token(&id).await? {
                Some((token, _)) => self.ports.audit.admin(&token.admin_id).await?,
                None => None,
            }
        } else if let Some(name) = label.strip_prefix("admin:") {
            Some(
                self.ports
                    .audit
                    .admin_by_name(name.trim())
                    .await?
                    .ok_or_else(|| CoreError::NotFound("no such administrator".into()))?,
            )
        } else {
            None
        };
        let Some(admin) = admin else {
            return Ok("nothing to suspend".into());
        };
        self.suspend_account(&admin, label, reason, &ClientContext::default())
            .await
    }

    /// Learns the recent history, then watches every new audit record
    /// forever (spawn it).
    pub async fn run_anomaly_detection(self, _by: Operator) {
        let p = self.config.anomaly.clone();
        let mut profiles = Profiles::default();
        let mut cursor = loop {
            match self.learn_history(&mut profiles, &p).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::error!(error = %e, "anomaly detection cannot read the audit log");
                    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                }
            }
        };
        tracing::info!(after = cursor, "anomaly detection watching the audit log");
        loop {
            match self.detect_once(&mut profiles, &p, cursor).await {
                Ok(Some(c)) => cursor = c,
                Ok(None) => tokio::time::sleep(p.poll).await,
                Err(e) => {
                    tracing::error!(error = %e, "anomaly detection failed; retrying");
                    tokio::time::sleep(p.poll.max(std::time::Duration::from_secs(1))).await;
                }
            }
        }
    }

    async fn learn_history(&self, profiles: &mut Profiles, p: &AnomalyPolicy) -> CoreResult<i64> {
        let since = self.clock.now() - Duration::days(p.learn_days);
        let mut after = self
            .ports
            .audit
            .last_audit_before(since)
            .await?
            .map_or(0, |(seq, _)| seq);
        loop {
            let page = self.ports.audit.list_audit(after, 10_000).await?;
            let Some(last) = page.last() else {
                return Ok(after);
            };
            after = last.seq;
            for r in &page {
                profiles.observe(r, p, false);
            }
        }
    }

    /// One pass over new records; the new cursor, or None when idle.
    async fn detect_once(
        &self,
        profiles: &mut Profiles,
        p: &AnomalyPolicy,
        cursor: i64,
    ) -> CoreResult<Option<i64>> {
        let page = self.ports.audit.list_audit(cursor, 1000).await?;
        let Some(last) = page.last().map(|r| r.seq) else {
            return Ok(None);
        };
        for r in &page {
            for a in profiles.observe(r, p, true) {
                self.record_alert(&a).await?;
                if a.rule == "mass_command" && p.suspend_on_mass_command {
                    self.suspend_label(&a.actor, "mass command").await?;
                }
            }
        }
        Ok(Some(last))
    }
}

#[cfg(test)]
mod tests;
