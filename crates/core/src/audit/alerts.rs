//! Alerts as the people on watch read them: every `alert.*` record of a
//! period, newest first, with its severity and the incident it opened (a
//! high-severity alert opens one). Alerts are audit records (actor
//! `system`, the account or device concerned as target, `severity=…` and
//! the evidence in the detail), so this reads the audit log through the
//! store's index on action and time: the counts in the store, and only the
//! newest [`ALERTS_LISTED`] records, however many alerts the period holds.

use crate::access::permit::AuditRead;
use crate::access::Authorized;
use crate::{CoreResult, Services};
use mamori_domain::AuditAction;
use std::collections::HashMap;
use time::OffsetDateTime;

/// Alerts listed at most (the newest); the counts cover them all.
pub const ALERTS_LISTED: usize = 500;

/// One alert.
#[derive(Debug, Clone)]
pub struct AlertRow {
    /// The audit record's sequence number.
    pub seq: i64,
    /// When it was raised.
    pub at: OffsetDateTime,
    /// The rule (the action without `alert.`).
    pub rule: String,
    /// `high`, `medium` or `low` (empty when the record does not say).
    pub severity: String,
    /// The account, token or device it concerns.
    pub concerns: Option<String>,
    /// The rest of the detail: the evidence and what happened.
    pub detail: String,
    /// The incident it opened, if one.
    pub incident: Option<String>,
}

/// The alerts of a period.
#[derive(Debug, Clone, Default)]
pub struct Alerts {
    /// The newest [`ALERTS_LISTED`], newest first.
    pub rows: Vec<AlertRow>,
    /// All alerts of the period.
    pub total: usize,
    /// Of those, high-severity ones.
    pub high: usize,
}

/// Splits `severity=X rest` into `X` and `rest`.
fn severity_of(detail: &str) -> (String, String) {
    match detail.strip_prefix("severity=") {
        Some(rest) => {
            let (sev, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            (sev.to_owned(), rest.to_owned())
        }
        None => (String::new(), detail.to_owned()),
    }
}

/// The counts the store found, without rows.
fn counted(found: &mamori_ports::NewestByAction) -> Alerts {
    Alerts {
        total: usize::try_from(found.total).unwrap_or(usize::MAX),
        high: usize::try_from(found.with_prefix).unwrap_or(usize::MAX),
        rows: Vec::new(),
    }
}

/// Every action of the vocabulary that is an alert.
pub fn alert_actions() -> Vec<&'static str> {
    AuditAction::ALL
        .iter()
        .map(|a| a.as_str())
        .filter(|a| a.starts_with("alert."))
        .collect()
}

impl Services {
    /// The alerts of `since` until now in the store: their counts, and the
    /// newest `listed` records.
    async fn alert_records(
        &self,
        since: OffsetDateTime,
        listed: u32,
    ) -> CoreResult<mamori_ports::NewestByAction> {
        let until = self.clock.now() + time::Duration::seconds(1);
        Ok(self
            .ports
            .audit
            .newest_audit_by_action(&alert_actions(), since, until, "severity=high ", listed)
            .await?)
    }

    /// How many alerts were raised since `since`, and how many of them
    /// were of high severity (no rows: the overview's figure).
    pub async fn alert_counts(
        &self,
        _by: &Authorized<AuditRead>,
        since: OffsetDateTime,
    ) -> CoreResult<Alerts> {
        Ok(counted(&self.alert_records(since, 0).await?))
    }

    /// The alerts raised since `since`, newest first, with the incident
    /// each opened.
    pub async fn alerts(
        &self,
        by: &Authorized<AuditRead>,
        since: OffsetDateTime,
    ) -> CoreResult<Alerts> {
        // Counted in the store; only the newest few are read.
        let found = self.alert_records(since, ALERTS_LISTED as u32).await?;
        let opened: HashMap<i64, String> = self
            .incidents(by)
            .await?
            .into_iter()
            .filter_map(|i| i.alert_seq.map(|seq| (seq, i.id)))
            .collect();
        let mut out = counted(&found);
        for r in found.newest {
            let e = r.event;
            let (severity, detail) = severity_of(e.detail.as_deref().unwrap_or(""));
            out.rows.push(AlertRow {
                seq: r.seq,
                at: e.at,
                rule: e
                    .action
                    .strip_prefix("alert.")
                    .unwrap_or(&e.action)
                    .to_owned(),
                severity,
                concerns: e.target,
                detail,
                incident: opened.get(&r.seq).cloned(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_severity_leads_the_detail() {
        assert_eq!(
            severity_of("severity=high evidence=records 4-9 reads"),
            ("high".into(), "evidence=records 4-9 reads".into())
        );
        assert_eq!(
            severity_of("no severity"),
            (String::new(), "no severity".into())
        );
        assert!(alert_actions().contains(&"alert.bulk_personal_data_read"));
        assert!(alert_actions().iter().all(|a| a.starts_with("alert.")));
    }
}
