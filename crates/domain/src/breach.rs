//! The breach-scope report's arithmetic: from the access records of the
//! audit trail, which people's records were read (or exported), which
//! fields, by whom and when — the numbers an APPI report needs ("how many
//! people, which items"). People appear by pseudonymous ID.
//!
//! A backend feeds the access records to a [`ScopeBuilder`] one at a time
//! (`mamori_ports::AuditStore::scan_audit_access`), in any order, with only
//! the columns the report reads, straight from the rows it walks: a report
//! over a year of a large log (a million access records) never
//! materialises the records, only 40 bytes of numbers per record and one
//! entry per person, actor and distinct detail.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

/// Actions that expose personal data.
pub const PERSONAL_DATA_ACTIONS: &[&str] = &[
    crate::AuditAction::PeopleRead.as_str(),
    crate::AuditAction::PeopleExport.as_str(),
];

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
    /// The token filter (token ID), if any.
    pub token: Option<String>,
    /// The network filter (CIDR), if any.
    pub network: Option<String>,
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

/// One access record as the store hands it to [`ScopeBuilder::add`]: only
/// what the report reads.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// Sequence number (orders fields and actors by first appearance).
    pub seq: i64,
    /// Time.
    pub at: OffsetDateTime,
    /// Audit label of the actor.
    pub actor: &'a str,
    /// The person's pseudonymous ID (records without one are counted but
    /// name nobody).
    pub target: Option<&'a str>,
    /// `fields=a,b,c`.
    pub detail: Option<&'a str>,
    /// Source address (only when [`AccessFilter::with_source`] asked).
    pub source: Option<&'a str>,
}

/// Which access records the store walks besides the action and window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessFilter {
    /// Exactly this actor.
    pub actor: Option<String>,
    /// Actors in [start, end): `token:ID:` to `token:ID;` is one token,
    /// whatever its account's name.
    pub actor_range: Option<(String, String)>,
    /// Hand over the source address too (it is not in the covering index:
    /// a network filter costs a table lookup per record).
    pub with_source: bool,
}

/// A network in CIDR notation (or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `10.0.0.0/8`, `2001:db8::/32` or a single address.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: std::net::IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Self { addr, prefix })
    }

    /// Whether `source` (an address as the audit log holds it) is inside.
    pub fn contains(&self, source: &str) -> bool {
        let Ok(ip) = source.parse::<std::net::IpAddr>() else {
            return false;
        };
        let (a, b, bits) = match (self.addr, ip) {
            (std::net::IpAddr::V4(n), std::net::IpAddr::V4(i)) => (
                u128::from(u32::from(n)) << 96,
                u128::from(u32::from(i)) << 96,
                self.prefix,
            ),
            (std::net::IpAddr::V6(n), std::net::IpAddr::V6(i)) => {
                (u128::from(n), u128::from(i), self.prefix)
            }
            _ => return false,
        };
        let mask = if bits == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(bits))
        };
        a & mask == b & mask
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// What a breach-scope report covers besides its window.
#[derive(Debug, Clone, Default)]
pub struct ScopeFilter {
    /// One actor (audit label, e.g. `admin:taro`, `token:ID:name`).
    pub actor: Option<String>,
    /// One API token, by ID (whichever account it belongs to).
    pub token: Option<String>,
    /// Requests from this network.
    pub network: Option<Network>,
}

/// A person's ID as a map key, up to [`INLINE_KEY`] bytes inline
/// (pseudonymous IDs are 32): finding a person costs no second trip to
/// memory for the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PersonKey {
    Inline(u8, [u8; INLINE_KEY]),
    Heap(Box<str>),
}

/// The longest ID a [`PersonKey`] holds inline.
const INLINE_KEY: usize = 38;

impl PersonKey {
    fn new(id: &str) -> Self {
        match u8::try_from(id.len()) {
            Ok(n) if id.len() <= INLINE_KEY => {
                let mut b = [0; INLINE_KEY];
                b[..id.len()].copy_from_slice(id.as_bytes());
                Self::Inline(n, b)
            }
            _ => Self::Heap(id.into()),
        }
    }

    fn into_string(self) -> String {
        match self {
            Self::Inline(n, b) => std::str::from_utf8(&b[..usize::from(n)])
                .map(str::to_owned)
                .unwrap_or_default(),
            Self::Heap(s) => s.into(),
        }
    }
}

/// One access record, reduced to numbers: 40 bytes instead of the record.
#[derive(Debug, Clone, Copy)]
struct Row {
    person: u32,
    actor: u32,
    /// [`NO_DETAIL`] for a record without one.
    detail: u32,
    seq: i64,
    at: OffsetDateTime,
}

/// [`Row::detail`] of a record without detail.
const NO_DETAIL: u32 = u32::MAX;

/// Accumulates access records, in any order, into a [`BreachScope`]: the
/// result is the same as walking them in sequence order (the fields and
/// actors of a person listed in the order they first appear).
///
/// Each record becomes a [`Row`] of numbers (people, actors and details
/// interned); [`ScopeBuilder::finish`] groups the rows by person. Looking
/// up a person per record and appending is all the per-record work: with
/// 100,000 people in scope, that is one trip to memory per record.
#[derive(Debug, Default)]
pub struct ScopeBuilder {
    records: usize,
    person_ids: HashMap<PersonKey, u32>,
    actor_ids: HashMap<String, u32>,
    actor_names: Vec<String>,
    field_names: Vec<String>,
    /// Each distinct detail and its fields (field ID), duplicates dropped:
    /// details repeat, so each is split once.
    details: Vec<(String, Vec<usize>)>,
    detail_ids: HashMap<String, u32>,
    /// The detail of the previous record (most records have the same).
    last_detail: u32,
    rows: Vec<Row>,
    /// Only records from this network count.
    network: Option<Network>,
}

/// Keeps the smaller first-seen sequence number of `id` in `list`, or adds
/// it; true when added.
fn first_seen(list: &mut Vec<(u32, i64)>, id: u32, seq: i64) -> bool {
    match list.iter_mut().find(|(i, _)| *i == id) {
        Some((_, first)) => {
            *first = (*first).min(seq);
            false
        }
        None => {
            list.push((id, seq));
            true
        }
    }
}

/// `list.len()` as the next ID.
fn next_id<T>(list: &[T]) -> u32 {
    u32::try_from(list.len()).unwrap_or(u32::MAX)
}

impl ScopeBuilder {
    /// A builder counting only records whose source is inside `network`.
    pub fn within(network: Network) -> Self {
        Self {
            network: Some(network),
            ..Self::default()
        }
    }

    /// Accounts for one access record.
    pub fn add(&mut self, a: Access<'_>) {
        if let Some(n) = &self.network {
            if !a.source.is_some_and(|s| n.contains(s)) {
                return;
            }
        }
        self.records += 1;
        let Some(person) = a.target else {
            return;
        };
        let detail = a.detail.map_or(NO_DETAIL, |d| self.detail_id(d));
        let actor = match self.actor_ids.get(a.actor) {
            Some(&id) => id,
            None => {
                let id = next_id(&self.actor_names);
                self.actor_names.push(a.actor.to_owned());
                self.actor_ids.insert(a.actor.to_owned(), id);
                id
            }
        };
        let next = u32::try_from(self.person_ids.len()).unwrap_or(u32::MAX);
        let person = *self
            .person_ids
            .entry(PersonKey::new(person))
            .or_insert(next);
        self.rows.push(Row {
            person,
            actor,
            detail,
            seq: a.seq,
            at: a.at,
        });
    }

    /// The ID of detail `d`, splitting it into fields the first time.
    fn detail_id(&mut self, d: &str) -> u32 {
        if self
            .details
            .get(self.last_detail as usize)
            .is_some_and(|(last, _)| last == d)
        {
            return self.last_detail;
        }
        let k = match self.detail_ids.get(d) {
            Some(&k) => k,
            None => {
                let mut ids: Vec<usize> = Vec::new();
                let list = d.strip_prefix("fields=").map(|f| f.split(','));
                for f in list.into_iter().flatten() {
                    let id = match self.field_names.iter().position(|n| n == f) {
                        Some(id) => id,
                        None => {
                            self.field_names.push(f.to_owned());
                            self.field_names.len() - 1
                        }
                    };
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                let k = next_id(&self.details);
                self.details.push((d.to_owned(), ids));
                self.detail_ids.insert(d.to_owned(), k);
                k
            }
        };
        self.last_detail = k;
        k
    }

    /// The report for the window.
    pub fn finish(
        mut self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        actor: Option<&str>,
    ) -> BreachScope {
        let mut keys = person_keys(std::mem::take(&mut self.person_ids));
        self.rows.sort_unstable_by_key(|r| r.person);
        let mut totals = Totals {
            per_field: vec![0usize; self.field_names.len()],
            actor_people: vec![0usize; self.actor_names.len()],
            actor_reads: vec![0usize; self.actor_names.len()],
        };
        let mut seen = FirstSeen::default();
        let mut people: Vec<PersonScope> = Vec::with_capacity(keys.len());
        for group in self.rows.chunk_by(|a, b| a.person == b.person) {
            if let Some(scope) = self.person_scope(group, &mut keys, &mut totals, &mut seen) {
                people.push(scope);
            }
        }
        people.sort_unstable_by(|a, b| a.person.cmp(&b.person));
        self.report(from, to, actor, totals, people)
    }

    /// One person's entry, from their rows (`group`, all of one person),
    /// counted into `totals`; `None` for an empty group.
    fn person_scope(
        &self,
        group: &[Row],
        keys: &mut [Option<PersonKey>],
        totals: &mut Totals,
        seen: &mut FirstSeen,
    ) -> Option<PersonScope> {
        let r0 = group.first()?;
        let (mut first, mut last) = (r0.at, r0.at);
        let FirstSeen { details, actors } = seen;
        details.clear();
        actors.clear();
        for r in group {
            first = first.min(r.at);
            last = last.max(r.at);
            if r.detail != NO_DETAIL {
                first_seen(details, r.detail, r.seq);
            }
            first_seen(actors, r.actor, r.seq);
            totals.actor_reads[r.actor as usize] += 1;
        }
        let fields = self.fields_in_order(details, &mut totals.per_field);
        actors.sort_unstable_by_key(|&(_, seq)| seq);
        for &(a, _) in actors.iter() {
            totals.actor_people[a as usize] += 1;
        }
        let person = keys
            .get_mut(r0.person as usize)
            .and_then(Option::take)
            .map(PersonKey::into_string)
            .unwrap_or_default();
        Some(PersonScope {
            person,
            fields,
            reads: group.len(),
            first,
            last,
            actors: actors
                .iter()
                .map(|&(a, _)| self.actor_names[a as usize].clone())
                .collect(),
        })
    }

    /// A person's fields, from their details with the sequence number each
    /// first appeared at, counting each field once into `per_field`.
    fn fields_in_order(&self, details: &mut [(u32, i64)], per_field: &mut [usize]) -> Vec<String> {
        // A field first appears with the first record of the first
        // detail (by sequence number) that names it, at its place in
        // that detail.
        details.sort_unstable_by_key(|&(_, seq)| seq);
        let mut fields: Vec<String> = Vec::new();
        for &(d, _) in details.iter() {
            for &f in self.details.get(d as usize).map_or(&[][..], |(_, ids)| ids) {
                let name = &self.field_names[f];
                if !fields.contains(name) {
                    fields.push(name.clone());
                    per_field[f] += 1;
                }
            }
        }
        fields
    }

    /// The report from the people's entries and the totals across them.
    fn report(
        self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        actor: Option<&str>,
        totals: Totals,
        people: Vec<PersonScope>,
    ) -> BreachScope {
        let by_field = self
            .field_names
            .into_iter()
            .zip(totals.per_field)
            .filter(|&(_, n)| n > 0)
            .collect();
        let mut by_actor: Vec<ActorScope> = self
            .actor_names
            .into_iter()
            .zip(totals.actor_people.into_iter().zip(totals.actor_reads))
            .map(|(actor, (people, reads))| ActorScope {
                actor,
                people,
                reads,
            })
            .collect();
        by_actor.sort_unstable_by(|a, b| a.actor.cmp(&b.actor));
        BreachScope {
            from,
            to,
            actor: actor.map(str::to_owned),
            token: None,
            network: self.network.map(|n| n.to_string()),
            records: self.records,
            people_affected: people.len(),
            by_field,
            by_actor,
            people,
        }
    }
}

/// Each person's key at its interned ID.
fn person_keys(person_ids: HashMap<PersonKey, u32>) -> Vec<Option<PersonKey>> {
    let mut keys: Vec<Option<PersonKey>> = vec![None; person_ids.len()];
    for (k, id) in person_ids {
        if let Some(slot) = keys.get_mut(id as usize) {
            *slot = Some(k);
        }
    }
    keys
}

/// Counts across people, filled in while [`ScopeBuilder::finish`] walks them.
#[derive(Debug)]
struct Totals {
    /// People per field (by field ID).
    per_field: Vec<usize>,
    /// People per actor (by actor ID).
    actor_people: Vec<usize>,
    /// Records per actor (by actor ID).
    actor_reads: Vec<usize>,
}

/// Per-person scratch lists, reused from one person to the next: each
/// detail and actor with the sequence number it first appeared at.
#[derive(Debug, Default)]
struct FirstSeen {
    details: Vec<(u32, i64)>,
    actors: Vec<(u32, i64)>,
}

#[cfg(test)]
mod tests;
