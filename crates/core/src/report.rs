//! The breach-scope report: from the audit trail, which people's records
//! were read (or exported), which fields, by whom and when, in a time
//! window — the numbers an APPI report needs ("how many people, which
//! items"). People appear by pseudonymous ID.

use crate::auth::ClientContext;
use crate::{CoreError, CoreResult, Services};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

/// Actions that expose personal data.
pub const PERSONAL_DATA_ACTIONS: &[&str] = &["people.read", "people.export"];

/// One person in the report.
#[derive(Debug, Clone, Serialize)]
pub struct PersonScope {
    /// Pseudonymous ID.
    pub person: String,
    /// Fields exposed.
    pub fields: Vec<String>,
    /// Access records.
    pub reads: usize,
    /// First access.
    #[serde(with = "time::serde::rfc3339")]
    pub first: OffsetDateTime,
    /// Last access.
    #[serde(with = "time::serde::rfc3339")]
    pub last: OffsetDateTime,
    /// Who.
    pub actors: Vec<String>,
}

/// One actor in the report.
#[derive(Debug, Clone, Serialize)]
pub struct ActorScope {
    /// Audit label.
    pub actor: String,
    /// Distinct people.
    pub people: usize,
    /// Access records.
    pub reads: usize,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct BreachScope {
    /// Window start.
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    /// Window end (exclusive).
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    /// The actor filter, if any.
    pub actor: Option<String>,
    /// Access records in scope.
    pub records: usize,
    /// Distinct people affected.
    pub people_affected: usize,
    /// People affected per field.
    pub by_field: BTreeMap<String, usize>,
    /// Per actor.
    pub by_actor: Vec<ActorScope>,
    /// Per person.
    pub people: Vec<PersonScope>,
}

impl Services {
    /// Builds the report (and records that it was made).
    pub async fn breach_scope(
        &self,
        requester: &str,
        ctx: &ClientContext,
        from: OffsetDateTime,
        to: OffsetDateTime,
        actor: Option<&str>,
    ) -> CoreResult<BreachScope> {
        if to <= from {
            return Err(CoreError::BadRequest(
                "the window must end after it starts".into(),
            ));
        }
        let records = self
            .store
            .audit_by_action(PERSONAL_DATA_ACTIONS, from, to, actor)
            .await?;
        let mut people: BTreeMap<String, PersonScope> = BTreeMap::new();
        let mut actors: BTreeMap<String, (BTreeSet<String>, usize)> = BTreeMap::new();
        for r in &records {
            let Some(person) = r.event.target.clone() else {
                continue;
            };
            let fields: Vec<String> = r
                .event
                .detail
                .as_deref()
                .and_then(|d| d.strip_prefix("fields="))
                .map(|f| f.split(',').map(str::to_owned).collect())
                .unwrap_or_default();
            let e = people.entry(person.clone()).or_insert_with(|| PersonScope {
                person: person.clone(),
                fields: Vec::new(),
                reads: 0,
                first: r.event.at,
                last: r.event.at,
                actors: Vec::new(),
            });
            e.reads += 1;
            e.first = e.first.min(r.event.at);
            e.last = e.last.max(r.event.at);
            for f in fields {
                if !e.fields.contains(&f) {
                    e.fields.push(f);
                }
            }
            if !e.actors.contains(&r.event.actor) {
                e.actors.push(r.event.actor.clone());
            }
            let a = actors.entry(r.event.actor.clone()).or_default();
            a.0.insert(person);
            a.1 += 1;
        }
        let mut by_field = BTreeMap::new();
        for p in people.values() {
            for f in &p.fields {
                *by_field.entry(f.clone()).or_insert(0) += 1;
            }
        }
        let report = BreachScope {
            from,
            to,
            actor: actor.map(str::to_owned),
            records: records.len(),
            people_affected: people.len(),
            by_field,
            by_actor: actors
                .into_iter()
                .map(|(actor, (p, reads))| ActorScope {
                    actor,
                    people: p.len(),
                    reads,
                })
                .collect(),
            people: people.into_values().collect(),
        };
        self.audit(self.audit_event(
            requester,
            ctx,
            "report.breach_scope",
            actor,
            "success",
            Some(format!("people affected={}", report.people_affected)),
        ))
        .await?;
        Ok(report)
    }
}
