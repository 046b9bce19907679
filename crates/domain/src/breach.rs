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
        let mut keys: Vec<Option<PersonKey>> = vec![None; self.person_ids.len()];
        for (k, id) in self.person_ids {
            if let Some(slot) = keys.get_mut(id as usize) {
                *slot = Some(k);
            }
        }
        self.rows.sort_unstable_by_key(|r| r.person);
        let mut per_field = vec![0usize; self.field_names.len()];
        let mut actor_people = vec![0usize; self.actor_names.len()];
        let mut actor_reads = vec![0usize; self.actor_names.len()];
        let mut details: Vec<(u32, i64)> = Vec::new();
        let mut actors: Vec<(u32, i64)> = Vec::new();
        let mut people: Vec<PersonScope> = Vec::with_capacity(keys.len());
        for group in self.rows.chunk_by(|a, b| a.person == b.person) {
            let Some(r0) = group.first() else { continue };
            let (mut first, mut last) = (r0.at, r0.at);
            details.clear();
            actors.clear();
            for r in group {
                first = first.min(r.at);
                last = last.max(r.at);
                if r.detail != NO_DETAIL {
                    first_seen(&mut details, r.detail, r.seq);
                }
                first_seen(&mut actors, r.actor, r.seq);
                actor_reads[r.actor as usize] += 1;
            }
            // A field first appears with the first record of the first
            // detail (by sequence number) that names it, at its place in
            // that detail.
            details.sort_unstable_by_key(|&(_, seq)| seq);
            let mut fields: Vec<String> = Vec::new();
            for &(d, _) in &details {
                for &f in self.details.get(d as usize).map_or(&[][..], |(_, ids)| ids) {
                    let name = &self.field_names[f];
                    if !fields.contains(name) {
                        fields.push(name.clone());
                        per_field[f] += 1;
                    }
                }
            }
            actors.sort_unstable_by_key(|&(_, seq)| seq);
            for &(a, _) in &actors {
                actor_people[a as usize] += 1;
            }
            let person = keys
                .get_mut(r0.person as usize)
                .and_then(Option::take)
                .map(PersonKey::into_string)
                .unwrap_or_default();
            people.push(PersonScope {
                person,
                fields,
                reads: group.len(),
                first,
                last,
                actors: actors
                    .iter()
                    .map(|&(a, _)| self.actor_names[a as usize].clone())
                    .collect(),
            });
        }
        people.sort_unstable_by(|a, b| a.person.cmp(&b.person));
        let by_field = self
            .field_names
            .into_iter()
            .zip(per_field)
            .filter(|&(_, n)| n > 0)
            .collect();
        let mut by_actor: Vec<ActorScope> = self
            .actor_names
            .into_iter()
            .zip(actor_people.into_iter().zip(actor_reads))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeSet;

    /// An owned access record.
    #[derive(Debug, Clone)]
    struct Rec {
        seq: i64,
        at: OffsetDateTime,
        actor: String,
        target: Option<String>,
        detail: Option<String>,
    }

    /// The report as it was built before the store streamed records: walk
    /// them in sequence order.
    fn reference(records: &[Rec], from: OffsetDateTime, to: OffsetDateTime) -> BreachScope {
        let mut records = records.to_vec();
        records.sort_by_key(|r| r.seq);
        let mut people: BTreeMap<String, PersonScope> = BTreeMap::new();
        let mut actors: BTreeMap<String, (BTreeSet<String>, usize)> = BTreeMap::new();
        for r in &records {
            let Some(person) = r.target.clone() else {
                continue;
            };
            let fields: Vec<String> = r
                .detail
                .as_deref()
                .and_then(|d| d.strip_prefix("fields="))
                .map(|f| f.split(',').map(str::to_owned).collect())
                .unwrap_or_default();
            let e = people.entry(person.clone()).or_insert_with(|| PersonScope {
                person: person.clone(),
                fields: Vec::new(),
                reads: 0,
                first: r.at,
                last: r.at,
                actors: Vec::new(),
            });
            e.reads += 1;
            e.first = e.first.min(r.at);
            e.last = e.last.max(r.at);
            for f in fields {
                if !e.fields.contains(&f) {
                    e.fields.push(f);
                }
            }
            if !e.actors.contains(&r.actor) {
                e.actors.push(r.actor.clone());
            }
            let a = actors.entry(r.actor.clone()).or_default();
            a.0.insert(person);
            a.1 += 1;
        }
        let mut by_field = BTreeMap::new();
        for p in people.values() {
            for f in &p.fields {
                *by_field.entry(f.clone()).or_insert(0) += 1;
            }
        }
        BreachScope {
            from,
            to,
            actor: None,
            token: None,
            network: None,
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
        }
    }

    fn built(records: &[Rec], from: OffsetDateTime, to: OffsetDateTime) -> BreachScope {
        let mut b = ScopeBuilder::default();
        for r in records {
            b.add(Access {
                seq: r.seq,
                at: r.at,
                actor: &r.actor,
                target: r.target.as_deref(),
                detail: r.detail.as_deref(),
                source: None,
            });
        }
        b.finish(from, to, None)
    }

    /// A small deterministic generator.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    #[test]
    fn the_builder_gives_the_sequential_report_whatever_the_order() {
        const DETAILS: [Option<&str>; 8] = [
            Some("fields=name,user_id,email,department,phone"),
            Some("fields=name,email"),
            Some("fields=phone,name"),
            Some("fields=email,email,department"),
            Some("fields="),
            Some("people affected=3"),
            None,
            Some("fields=department"),
        ];
        let from = OffsetDateTime::UNIX_EPOCH;
        let to = from + time::Duration::days(1);
        for seed in 0..40 {
            let mut rng = Lcg(seed);
            let n = 1 + rng.below(300) as i64;
            let mut records: Vec<Rec> = (1..=n)
                .map(|seq| Rec {
                    seq: seq * 3,
                    // Times need not follow sequence numbers.
                    at: from + time::Duration::seconds(rng.below(5_000) as i64),
                    actor: format!("admin:a{}", rng.below(6)),
                    target: (rng.below(10) != 0).then(|| match rng.below(25) {
                        // IDs too long to be kept inline.
                        k if k % 5 == 0 => format!("{k:0>50}"),
                        k => format!("p{k}"),
                    }),
                    detail: DETAILS[rng.below(DETAILS.len() as u64) as usize].map(str::to_owned),
                })
                .collect();
            let want = serde_json::to_value(reference(&records, from, to)).unwrap();
            assert_eq!(
                serde_json::to_value(built(&records, from, to)).unwrap(),
                want
            );
            // Any order: reversed, and shuffled.
            records.reverse();
            assert_eq!(
                serde_json::to_value(built(&records, from, to)).unwrap(),
                want
            );
            for i in (1..records.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                records.swap(i, j);
            }
            assert_eq!(
                serde_json::to_value(built(&records, from, to)).unwrap(),
                want
            );
        }
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let n = Network::parse("203.0.113.0/24").unwrap();
        assert!(n.contains("203.0.113.77"));
        assert!(!n.contains("203.0.114.1"));
        assert!(!n.contains("2001:db8::1"));
        assert!(!n.contains("local"));
        let one = Network::parse("10.1.2.3").unwrap();
        assert!(one.contains("10.1.2.3") && !one.contains("10.1.2.4"));
        let v6 = Network::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:ffff::1") && !v6.contains("2001:db9::1"));
        assert!(Network::parse("0.0.0.0/0").unwrap().contains("192.0.2.1"));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", "::/129"] {
            assert!(Network::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(n.to_string(), "203.0.113.0/24");
    }

    #[test]
    fn fields_and_actors_are_listed_in_first_appearance_order() {
        let t = |s| OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(s);
        let rec = |seq, at, actor: &str, detail: &str| Rec {
            seq,
            at: t(at),
            actor: actor.into(),
            target: Some("p1".into()),
            detail: Some(detail.into()),
        };
        // Fed newest first.
        let records = [
            rec(9, 50, "admin:a", "fields=email,phone"),
            rec(5, 10, "admin:b", "fields=phone,name"),
            rec(7, 70, "admin:a", "fields=name"),
        ];
        let r = built(&records, t(0), t(100));
        assert_eq!(r.records, 3);
        let p = &r.people[0];
        assert_eq!(p.fields, ["phone", "name", "email"]);
        assert_eq!(p.actors, ["admin:b", "admin:a"]);
        assert_eq!((p.reads, p.first, p.last), (3, t(10), t(70)));
        assert_eq!(r.by_field.len(), 3);
        assert_eq!(
            r.by_actor
                .iter()
                .map(|a| (a.actor.as_str(), a.people, a.reads))
                .collect::<Vec<_>>(),
            [("admin:a", 1, 2), ("admin:b", 1, 1)]
        );
    }
}
