//! Incidents: opened by hand or by a high-severity alert, with the scope
//! from the audit trail attached (who was affected, which fields), the APPI
//! classification and deadlines computed, the nine items of the report
//! tracked, whether each affected person has been told, and an evidence
//! bundle (see [`crate::audit::evidence`]) that proves the scope offline.

use crate::access::permit::{AuditRead, IncidentsManage};
use crate::access::Authorized;
use crate::access::ClientContext;
use crate::access::{Actor, Job};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AuditAction, Outcome};
use mamori_domain::{Incident, IncidentFacts, IncidentStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};

/// People affected above which a report is required whatever was taken.
pub const APPI_PEOPLE_THRESHOLD: usize = 1000;

/// The nine items of an APPI report (Enforcement Rules, Art. 8): key,
/// label.
pub const REPORT_ITEMS: &[(&str, &str)] = &[
    ("overview", "1. Overview (概要)"),
    ("items", "2. Personal data items affected (項目)"),
    ("people", "3. Number of people (本人の数)"),
    ("cause", "4. Cause (原因)"),
    (
        "secondary_damage",
        "5. Secondary damage, or its risk (二次被害又はそのおそれの有無及びその内容)",
    ),
    (
        "response_to_people",
        "6. Response to the people affected (本人への対応の実施状況)",
    ),
    ("publication", "7. Public announcement (公表の実施状況)"),
    (
        "prevention",
        "8. Measures against recurrence (再発防止のための措置)",
    ),
    ("other", "9. Other relevant matters (その他参考となる事項)"),
];

/// The APPI classification.
#[derive(Debug, Clone, Serialize)]
pub struct Classification {
    /// People affected (from the attached scope).
    pub people_affected: usize,
    /// More than 1,000 people.
    pub over_1000: bool,
    /// Unauthorized access or intent to misuse (不正の目的).
    pub unauthorized_purpose: bool,
    /// Sensitive personal data (要配慮個人情報).
    pub sensitive_data: bool,
    /// Financial harm possible.
    pub financial_harm: bool,
    /// Exempt: the data was under strong encryption.
    pub exempt_strong_encryption: bool,
    /// Whether the regulator and the people must be told.
    pub report_required: bool,
    /// Why (or why not).
    pub reasons: Vec<String>,
}

/// Deadlines, from the time of discovery.
#[derive(Debug, Clone, Serialize)]
pub struct Deadlines {
    /// The preliminary report is due "promptly": treated as 3 days ...
    #[serde(with = "time::serde::rfc3339")]
    pub preliminary_target: OffsetDateTime,
    /// ... and at the latest 5.
    #[serde(with = "time::serde::rfc3339")]
    pub preliminary_latest: OffsetDateTime,
    /// The final report: 30 days, 60 when the cause is unauthorized
    /// access or misuse.
    #[serde(with = "time::serde::rfc3339")]
    pub final_due: OffsetDateTime,
    /// Past the latest preliminary date without a preliminary report.
    pub preliminary_overdue: bool,
    /// Past the final date without a final report.
    pub final_overdue: bool,
}

/// One report item.
#[derive(Debug, Clone, Serialize)]
pub struct ReportItem {
    /// Key (for updates).
    pub key: &'static str,
    /// Label.
    pub label: &'static str,
    /// What has been written.
    pub text: Option<String>,
    /// What the audit trail says (items and number of people).
    pub from_audit_trail: Option<String>,
    /// Written, or answered by the audit trail.
    pub done: bool,
}

/// Notification of the people affected.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    /// People affected.
    pub affected: usize,
    /// Told.
    pub notified: usize,
    /// Not yet told.
    pub pending: usize,
}

/// Everything about an incident.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentView {
    /// The record.
    pub incident: Incident,
    /// People affected per field.
    pub by_field: BTreeMap<String, usize>,
    /// The classification.
    pub classification: Classification,
    /// The deadlines.
    pub deadlines: Deadlines,
    /// The report's nine items.
    pub report_items: Vec<ReportItem>,
    /// Notification status.
    pub notification: Notification,
}

/// A new incident, as the API takes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    /// Title.
    pub title: String,
    /// Window start (default: 30 days before `to`).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub from: Option<OffsetDateTime>,
    /// Window end (default: now).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub to: Option<OffsetDateTime>,
    /// Only this actor's access.
    pub actor: Option<String>,
    /// When the organisation learned of it (default: now).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub discovered_at: Option<OffsetDateTime>,
}

/// Changes to an incident.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentChange {
    /// Title.
    pub title: Option<String>,
    /// `open`, `reported`, `closed`.
    pub status: Option<String>,
    /// Established facts (replace the flags given).
    pub unauthorized_access: Option<bool>,
    /// Intent to misuse.
    pub misuse_intent: Option<bool>,
    /// Sensitive data.
    pub sensitive_data: Option<bool>,
    /// Financial harm possible.
    pub financial_harm: Option<bool>,
    /// Data strongly encrypted.
    pub strongly_encrypted: Option<bool>,
    /// Report items to set (key → text; empty text clears).
    #[serde(default)]
    pub report: BTreeMap<String, String>,
    /// When the preliminary report was sent.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub preliminary_reported_at: Option<OffsetDateTime>,
    /// When the final report was sent.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub final_reported_at: Option<OffsetDateTime>,
    /// When the organisation learned of it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub discovered_at: Option<OffsetDateTime>,
}

/// Classifies from the facts and the number of people (pure).
pub fn classify(facts: &IncidentFacts, people: usize) -> Classification {
    let over_1000 = people > APPI_PEOPLE_THRESHOLD;
    let unauthorized_purpose = facts.unauthorized_access || facts.misuse_intent;
    let mut reasons = Vec::new();
    if over_1000 {
        reasons.push(format!(
            "more than {APPI_PEOPLE_THRESHOLD} people ({people})"
        ));
    }
    if unauthorized_purpose {
        reasons.push("unauthorized access or intent to misuse".into());
    }
    if facts.sensitive_data {
        reasons.push("sensitive personal data".into());
    }
    if facts.financial_harm {
        reasons.push("financial harm possible".into());
    }
    let exempt = facts.strongly_encrypted;
    let report_required = !exempt && !reasons.is_empty();
    if exempt {
        reasons.push("exempt: the data was under strong encryption".into());
    } else if reasons.is_empty() {
        reasons.push(
            "no reporting criterion met on the facts recorded so far (review as facts emerge)"
                .into(),
        );
    }
    Classification {
        people_affected: people,
        over_1000,
        unauthorized_purpose,
        sensitive_data: facts.sensitive_data,
        financial_harm: facts.financial_harm,
        exempt_strong_encryption: exempt,
        report_required,
        reasons,
    }
}

/// Deadlines from the discovery time (pure).
pub fn deadlines(i: &Incident, now: OffsetDateTime) -> Deadlines {
    let d = i.discovered_at;
    let unauthorized = i.facts.unauthorized_access || i.facts.misuse_intent;
    let final_due = d.saturating_add(Duration::days(if unauthorized { 60 } else { 30 }));
    let preliminary_latest = d.saturating_add(Duration::days(5));
    Deadlines {
        preliminary_target: d.saturating_add(Duration::days(3)),
        preliminary_latest,
        final_due,
        preliminary_overdue: i.facts.preliminary_reported_at.is_none() && now > preliminary_latest,
        final_overdue: i.facts.final_reported_at.is_none() && now > final_due,
    }
}

/// A time an incident records (discovery, its window) must be a real one:
/// not in the future (a day's slack for clocks), not more than 20 years
/// ago. Deadlines are counted from it.
fn plausible(what: &str, t: OffsetDateTime, now: OffsetDateTime) -> CoreResult<()> {
    if t > now + Duration::days(1) || t < now - Duration::days(20 * 366) {
        return Err(CoreError::BadRequest(format!(
            "{what} must be a time within the last 20 years, not in the future"
        )));
    }
    Ok(())
}

impl Services {
    /// Opens an incident by hand and attaches its scope.
    pub async fn open_incident(
        &self,
        by: &Authorized<IncidentsManage>,
        ctx: &ClientContext,
        req: &NewIncident,
    ) -> CoreResult<IncidentView> {
        let title = req.title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            return Err(CoreError::BadRequest(
                "title must be 1-200 characters".into(),
            ));
        }
        let now = self.clock.now();
        for (what, t) in [
            ("to", req.to),
            ("from", req.from),
            ("discovered_at", req.discovered_at),
        ] {
            if let Some(t) = t {
                plausible(what, t, now)?;
            }
        }
        let to = req.to.unwrap_or(now);
        let from = req.from.unwrap_or(to - Duration::days(30));
        if to <= from {
            return Err(CoreError::BadRequest(
                "the window must end after it starts".into(),
            ));
        }
        let i = Incident {
            id: crate::random_id()?,
            title: title.to_owned(),
            status: IncidentStatus::Open,
            opened_at: now,
            opened_by: by.label(),
            alert_seq: None,
            discovered_at: req.discovered_at.unwrap_or(now),
            window_from: from,
            window_to: to,
            actor: req.actor.clone().filter(|a| !a.is_empty()),
            facts: IncidentFacts::default(),
            updated_at: now,
        };
        self.audit(
            self.audit_record(
                &by.label(),
                ctx,
                AuditAction::IncidentOpen,
                Outcome::Success,
            )
            .target(&i.id)
            .detail(format!("title={title}")),
        )
        .await?;
        self.ports.audit.insert_incident(&i).await?;
        self.refresh_incident_scope(by, ctx, &i.id).await
    }

    /// Opens an incident for a high-severity alert (once per alert): the
    /// actor's personal-data access over the last day is its scope.
    pub(crate) async fn incident_for_alert(
        &self,
        alert_seq: i64,
        rule: &str,
        subject: &str,
    ) -> CoreResult<()> {
        let now = self.clock.now();
        let i = Incident {
            id: crate::random_id()?,
            title: format!("Alert {rule}: {subject}"),
            status: IncidentStatus::Open,
            opened_at: now,
            opened_by: "system".into(),
            alert_seq: Some(alert_seq),
            discovered_at: now,
            window_from: now - Duration::days(1),
            // A minute ahead, so the records around the alert are inside.
            window_to: now + Duration::minutes(1),
            actor: Some(subject.to_owned()),
            facts: IncidentFacts::default(),
            updated_at: now,
        };
        let ctx = ClientContext::default();
        self.audit(
            self.audit_record("system", &ctx, AuditAction::IncidentOpen, Outcome::Success)
                .target(&i.id)
                .detail(format!("alert={alert_seq} rule={rule}")),
        )
        .await?;
        if self.ports.audit.insert_incident(&i).await? {
            let by = Actor::Job(Job::Incidents).authorize::<IncidentsManage>()?;
            self.refresh_incident_scope(&by, &ctx, &i.id).await?;
            tracing::warn!(incident = %i.id, rule, "incident opened for an alert");
        }
        Ok(())
    }

    async fn incident_record(&self, id: &str) -> CoreResult<Incident> {
        self.ports
            .audit
            .incident(id)
            .await?
            .ok_or_else(|| CoreError::NotFound("no such incident".into()))
    }

    /// Recomputes who is affected from the audit trail (people already
    /// notified stay).
    pub async fn refresh_incident_scope(
        &self,
        by: &Authorized<IncidentsManage>,
        ctx: &ClientContext,
        id: &str,
    ) -> CoreResult<IncidentView> {
        let i = self.incident_record(id).await?;
        let scope = self
            .breach_scope_for(
                by.actor(),
                ctx,
                i.window_from,
                i.window_to,
                &mamori_domain::breach::ScopeFilter {
                    actor: i.actor.clone(),
                    ..Default::default()
                },
            )
            .await?;
        let people: Vec<(String, Vec<String>)> = scope
            .people
            .into_iter()
            .map(|p| (p.person, p.fields))
            .collect();
        self.ports.audit.set_incident_people(&i.id, &people).await?;
        self.view_of(&i.id).await
    }

    /// The people an incident affects (pseudonymous), with notification.
    pub async fn incident_people(
        &self,
        _by: &Authorized<AuditRead>,
        id: &str,
    ) -> CoreResult<Vec<mamori_domain::AffectedPerson>> {
        let i = self.incident_record(id).await?;
        Ok(self.ports.audit.incident_people(&i.id).await?)
    }

    /// Every incident, newest first.
    pub async fn incidents(&self, _by: &Authorized<AuditRead>) -> CoreResult<Vec<Incident>> {
        Ok(self.ports.audit.list_incidents().await?)
    }

    /// One incident with its classification, deadlines, report items and
    /// notification status.
    pub async fn incident_view(
        &self,
        _by: &Authorized<AuditRead>,
        id: &str,
    ) -> CoreResult<IncidentView> {
        self.view_of(id).await
    }

    /// One incident's view, for the use-cases of this crate.
    async fn view_of(&self, id: &str) -> CoreResult<IncidentView> {
        let i = self.incident_record(id).await?;
        let people = self.ports.audit.incident_people(&i.id).await?;
        let mut by_field: BTreeMap<String, usize> = BTreeMap::new();
        for p in &people {
            for f in &p.fields {
                *by_field.entry(f.clone()).or_insert(0) += 1;
            }
        }
        let notified = people.iter().filter(|p| p.notified_at.is_some()).count();
        let classification = classify(&i.facts, people.len());
        let deadlines = deadlines(&i, self.clock.now());
        let items_text = by_field
            .iter()
            .map(|(f, n)| format!("{f} ({n} people)"))
            .collect::<Vec<_>>()
            .join(", ");
        let report_items = REPORT_ITEMS
            .iter()
            .map(|(key, label)| {
                let text = i.facts.report.get(*key).cloned().filter(|t| !t.is_empty());
                let from_audit_trail = match *key {
                    "items" => Some(items_text.clone()),
                    "people" => Some(people.len().to_string()),
                    "response_to_people" => {
                        Some(format!("{notified} of {} people notified", people.len()))
                    }
                    _ => None,
                };
                let done = text.is_some() || matches!(*key, "items" | "people");
                ReportItem {
                    key,
                    label,
                    text,
                    from_audit_trail,
                    done,
                }
            })
            .collect();
        Ok(IncidentView {
            by_field,
            classification,
            deadlines,
            report_items,
            notification: Notification {
                affected: people.len(),
                notified,
                pending: people.len() - notified,
            },
            incident: i,
        })
    }

    /// Records what has been established and what was reported.
    pub async fn update_incident(
        &self,
        by: &Authorized<IncidentsManage>,
        ctx: &ClientContext,
        id: &str,
        ch: &IncidentChange,
    ) -> CoreResult<IncidentView> {
        let mut i = self.incident_record(id).await?;
        if let Some(t) = &ch.title {
            let t = t.trim();
            if t.is_empty() || t.chars().count() > 200 {
                return Err(CoreError::BadRequest(
                    "title must be 1-200 characters".into(),
                ));
            }
            i.title = t.to_owned();
        }
        if let Some(s) = &ch.status {
            i.status = IncidentStatus::parse(s).ok_or_else(|| {
                CoreError::BadRequest("status must be open, reported or closed".into())
            })?;
        }
        for (key, text) in &ch.report {
            if !REPORT_ITEMS.iter().any(|(k, _)| k == key) {
                let keys: Vec<&str> = REPORT_ITEMS.iter().map(|(k, _)| *k).collect();
                return Err(CoreError::BadRequest(format!(
                    "report: unknown item {key:?}; items: {}",
                    keys.join(", ")
                )));
            }
            if text.chars().count() > 10_000 {
                return Err(CoreError::BadRequest(format!(
                    "report: {key} is longer than 10000 characters"
                )));
            }
            if text.trim().is_empty() {
                i.facts.report.remove(key);
            } else {
                i.facts.report.insert(key.clone(), text.clone());
            }
        }
        let f = &mut i.facts;
        for (slot, v) in [
            (&mut f.unauthorized_access, ch.unauthorized_access),
            (&mut f.misuse_intent, ch.misuse_intent),
            (&mut f.sensitive_data, ch.sensitive_data),
            (&mut f.financial_harm, ch.financial_harm),
            (&mut f.strongly_encrypted, ch.strongly_encrypted),
        ] {
            if let Some(v) = v {
                *slot = v;
            }
        }
        if ch.preliminary_reported_at.is_some() {
            f.preliminary_reported_at = ch.preliminary_reported_at;
        }
        if ch.final_reported_at.is_some() {
            f.final_reported_at = ch.final_reported_at;
        }
        if let Some(d) = ch.discovered_at {
            plausible("discovered_at", d, self.clock.now())?;
            i.discovered_at = d;
        }
        i.updated_at = self.clock.now();
        self.audit(
            self.audit_record(
                &by.label(),
                ctx,
                AuditAction::IncidentUpdate,
                Outcome::Success,
            )
            .target(&i.id)
            .detail(format!("status={}", i.status.as_str())),
        )
        .await?;
        self.ports.audit.update_incident(&i).await?;
        self.view_of(&i.id).await
    }

    /// Marks people (all when None) as notified.
    pub async fn notify_incident_people(
        &self,
        by: &Authorized<IncidentsManage>,
        ctx: &ClientContext,
        id: &str,
        people: Option<&[String]>,
    ) -> CoreResult<IncidentView> {
        let i = self.incident_record(id).await?;
        self.audit(
            self.audit_record(
                &by.label(),
                ctx,
                AuditAction::IncidentNotify,
                Outcome::Success,
            )
            .target(&i.id)
            .detail(match people {
                Some(p) => format!("people={}", p.len()),
                None => "people=all".into(),
            }),
        )
        .await?;
        self.ports
            .audit
            .mark_notified(&i.id, people, self.clock.now())
            .await?;
        self.view_of(&i.id).await
    }
}

#[cfg(test)]
mod tests;
