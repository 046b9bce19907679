//! Incidents: a suspected leak or misuse being handled — its window and
//! scope, its classification under Japan's APPI, its report deadlines and
//! the nine items of the report, and whether the people affected have been
//! told.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Being handled.
    Open,
    /// Reported to the regulator (at least the preliminary report).
    Reported,
    /// Done.
    Closed,
}

impl IncidentStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Reported => "reported",
            Self::Closed => "closed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "reported" => Some(Self::Reported),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

/// What the security officer has established (the facts the APPI
/// classification and the report need beyond the audit trail's numbers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentFacts {
    /// Unauthorized access from outside (e.g. stolen credentials).
    #[serde(default)]
    pub unauthorized_access: bool,
    /// An insider or outsider acted with intent to misuse.
    #[serde(default)]
    pub misuse_intent: bool,
    /// Sensitive personal data (要配慮個人情報) is involved.
    #[serde(default)]
    pub sensitive_data: bool,
    /// Financial harm is possible (e.g. card numbers, bank accounts).
    #[serde(default)]
    pub financial_harm: bool,
    /// The data taken was under strong encryption with the key safe (no
    /// report needed).
    #[serde(default)]
    pub strongly_encrypted: bool,
    /// The nine report items, by key (`overview`, `items`, `people`,
    /// `cause`, `secondary_damage`, `response_to_people`, `publication`,
    /// `prevention`, `other`): the text written so far.
    #[serde(default)]
    pub report: std::collections::BTreeMap<String, String>,
    /// When the preliminary report was sent.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub preliminary_reported_at: Option<OffsetDateTime>,
    /// When the final report was sent.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub final_reported_at: Option<OffsetDateTime>,
}

/// An incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    /// Random identifier.
    pub id: String,
    /// Short title.
    pub title: String,
    /// Where it stands.
    pub status: IncidentStatus,
    /// Opened when.
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    /// Opened by (audit label, or `system` for an alert).
    pub opened_by: String,
    /// The alert record that opened it, if one did.
    pub alert_seq: Option<i64>,
    /// When the organisation learned of it (the deadlines run from here).
    #[serde(with = "time::serde::rfc3339")]
    pub discovered_at: OffsetDateTime,
    /// The window of the audit trail the scope covers.
    #[serde(with = "time::serde::rfc3339")]
    pub window_from: OffsetDateTime,
    /// End of the window (exclusive).
    #[serde(with = "time::serde::rfc3339")]
    pub window_to: OffsetDateTime,
    /// Only this actor's access, if set.
    pub actor: Option<String>,
    /// What has been established.
    pub facts: IncidentFacts,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A person an incident affects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AffectedPerson {
    /// Pseudonymous ID.
    pub person: String,
    /// Fields exposed.
    pub fields: Vec<String>,
    /// When the person was told.
    #[serde(with = "time::serde::rfc3339::option")]
    pub notified_at: Option<OffsetDateTime>,
}
