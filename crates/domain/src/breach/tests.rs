//! Tests of the breach-scope builder against a sequential reference, and
//! of networks.

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
