//! The deterministic generator of the `--audit` log (what each record is,
//! the windows queried and the figures they must report) and the writer of
//! the fixture part of the log straight into `audit_log`.

use super::{
    ACTORS, DAY, DAYS, DISTINCT_PEOPLE, EXPORT_FIELDS, FIXTURE_BATCH, READ_FIELDS, REQUEST_TYPES,
    ROUTES, SEED,
};
use crate::people::SplitMix64;
use anyhow::{anyhow, bail, Context};
use mamori_core::audit::record_hash;
use mamori_domain::chain::GENESIS;
use mamori_domain::AuditEvent;
use serde_json::Value;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;
use time::OffsetDateTime;

/// What a generated record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `people.read`: personal data read.
    Read,
    /// `people.export`: personal data exported.
    Export,
    /// `api.request`: a change through the admin API.
    ApiRequest,
    /// `auth.login`.
    Login,
    /// `auth.totp`.
    Totp,
    /// `auth.session`.
    Session,
    /// `command.queue`.
    Command,
    /// `people.lookup` (pseudonymous, not personal data).
    Lookup,
    /// `people.update` (has `fields=...` but exposes nothing).
    Update,
    /// `device.assign`.
    Assign,
}

impl Kind {
    /// The kind for a draw in `0..1000` (‰ of the mix).
    fn of(permille: u64) -> Self {
        match permille {
            0..100 => Self::Read,
            100..102 => Self::Export,
            102..452 => Self::ApiRequest,
            452..572 => Self::Login,
            572..632 => Self::Totp,
            632..702 => Self::Session,
            702..902 => Self::Command,
            902..952 => Self::Lookup,
            952..972 => Self::Update,
            _ => Self::Assign,
        }
    }

    /// Exposes personal data (counted by the breach-scope report).
    pub fn is_personal(self) -> bool {
        matches!(self, Self::Read | Self::Export)
    }

    /// The fields a personal-data record names.
    pub fn fields(self) -> &'static str {
        match self {
            Self::Export => EXPORT_FIELDS,
            _ => READ_FIELDS,
        }
    }
}

/// The random choices behind record `i`.
#[derive(Debug, Clone, Copy)]
pub struct Draw {
    /// What it is.
    pub kind: Kind,
    /// Who (index into the actors).
    pub actor: usize,
    /// Whose record (index into the people), for the kinds with a person.
    pub person: usize,
    /// Further choices (route, request type, outcome, ...).
    pub aux: u64,
}

/// The deterministic generator of the log: record `i` of `records` is
/// always the same.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// Records in the whole log.
    pub records: u64,
    /// First second of the span (Unix).
    pub start: i64,
    /// End of the span (exclusive, Unix): today's midnight, UTC.
    pub end: i64,
    people: Vec<String>,
    actors: Vec<String>,
}

/// SplitMix64's output function: a well-mixed 64-bit value for `x`.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Fixture {
    /// A log of `records` records spanning the [`DAYS`] days before the
    /// midnight (UTC) at or before `now`.
    pub fn new(records: u64, now: i64) -> Self {
        let end = now.div_euclid(DAY) * DAY;
        let people = (0..DISTINCT_PEOPLE as u64)
            .map(|p| {
                format!(
                    "{:016x}{:016x}",
                    mix(SEED ^ (p << 1)),
                    mix(SEED ^ (p << 1 | 1))
                )
            })
            .collect();
        let actors = (0..ACTORS)
            .map(|a| {
                if a % 3 == 2 {
                    format!(
                        "token:{:016x}:user{a:03}",
                        mix(SEED.rotate_left(17) ^ a as u64)
                    )
                } else {
                    format!("admin:user{a:03}")
                }
            })
            .collect();
        Self {
            records,
            start: end - DAYS * DAY,
            end,
            people,
            actors,
        }
    }

    /// AdminActor label `a`.
    pub fn actor(&self, a: usize) -> &str {
        &self.actors[a]
    }

    /// Record `i`'s time (Unix seconds): evenly spread, never decreasing.
    pub fn at(&self, i: u64) -> i64 {
        let span = (self.end - self.start) as u128;
        self.start + (u128::from(i) * span / u128::from(self.records.max(1))) as i64
    }

    /// The first index whose time is at or after `t`.
    pub fn first_at_or_after(&self, t: i64) -> u64 {
        let (mut lo, mut hi) = (0, self.records);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.at(mid) < t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The random choices behind record `i`.
    pub fn draw(&self, i: u64) -> Draw {
        let mut r = SplitMix64::new(mix(SEED ^ i));
        let kind = Kind::of(r.next_u64() % 1000);
        Draw {
            kind,
            actor: r.below(ACTORS),
            person: r.below(DISTINCT_PEOPLE),
            aux: r.next_u64(),
        }
    }

    /// Record `i` as the server would have written it.
    pub fn event(&self, i: u64) -> anyhow::Result<AuditEvent> {
        let d = self.draw(i);
        let at = OffsetDateTime::from_unix_timestamp(self.at(i))?;
        let actor = self.actors[d.actor].clone();
        let source = Some(format!(
            "10.{}.{}.{}",
            d.actor / 250,
            d.actor % 250,
            (d.aux >> 40) % 250 + 1
        ));
        let request_id = Some(format!("{:016x}", mix(d.aux)));
        let person = || Some(self.people[d.person].clone());
        let pick = |list: &[&str]| list[(d.aux % list.len() as u64) as usize].to_owned();
        let (actor, action, target, outcome, detail) = match d.kind {
            Kind::Read | Kind::Export => (
                actor,
                if d.kind == Kind::Read {
                    "people.read"
                } else {
                    "people.export"
                },
                person(),
                "success",
                Some(format!("fields={}", d.kind.fields())),
            ),
            Kind::ApiRequest => (actor, "api.request", Some(pick(&ROUTES)), "attempt", None),
            Kind::Login => {
                let ok = !d.aux.is_multiple_of(10);
                (
                    "anonymous".to_owned(),
                    "auth.login",
                    Some(format!("user{:03}", d.actor)),
                    if ok { "success" } else { "failure" },
                    (!ok).then(|| "wrong password".to_owned()),
                )
            }
            Kind::Totp => (actor, "auth.totp", None, "success", None),
            Kind::Session => (actor, "auth.session", None, "success", None),
            Kind::Command => (
                actor,
                "command.queue",
                Some(pick(&REQUEST_TYPES)),
                "success",
                Some(format!("devices={}", d.aux % 200 + 1)),
            ),
            Kind::Lookup => (actor, "people.lookup", person(), "success", None),
            Kind::Update => (
                actor,
                "people.update",
                person(),
                "success",
                Some("fields=department,phone".to_owned()),
            ),
            Kind::Assign => (
                actor,
                "device.assign",
                Some(format!("{:08X}-{:016X}", d.aux >> 32, mix(d.aux))),
                "success",
                None,
            ),
        };
        Ok(AuditEvent {
            at,
            actor,
            source,
            action: action.to_owned(),
            target,
            outcome: outcome.to_owned(),
            request_id,
            detail,
        })
    }

    /// What the breach-scope report must say for `[from, to)` (Unix
    /// seconds), optionally for one actor.
    pub fn expected(&self, from: i64, to: i64, actor: Option<usize>) -> Expected {
        let mut seen = vec![0u8; DISTINCT_PEOPLE];
        let mut actors = vec![false; ACTORS];
        let mut records = 0;
        for i in self.first_at_or_after(from)..self.first_at_or_after(to) {
            let d = self.draw(i);
            if !d.kind.is_personal() || actor.is_some_and(|a| a != d.actor) {
                continue;
            }
            records += 1;
            actors[d.actor] = true;
            seen[d.person] |= if d.kind == Kind::Read { 1 } else { 2 };
        }
        let mut by_field: BTreeMap<String, usize> = BTreeMap::new();
        // People per field: a person counts once for every field any of
        // their records names.
        for m in seen.iter().copied().filter(|m| *m != 0) {
            let mut fields: Vec<&str> = Vec::new();
            if m & 1 != 0 {
                fields.extend(READ_FIELDS.split(','));
            }
            if m & 2 != 0 {
                fields.extend(EXPORT_FIELDS.split(','));
            }
            fields.sort_unstable();
            fields.dedup();
            for f in fields {
                *by_field.entry(f.to_owned()).or_insert(0) += 1;
            }
        }
        Expected {
            records,
            people: seen.iter().filter(|m| **m != 0).count(),
            actors: actors.iter().filter(|a| **a).count(),
            by_field,
        }
    }
}

/// What a breach-scope answer must contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Access records in scope.
    pub records: usize,
    /// Distinct people.
    pub people: usize,
    /// Distinct actors.
    pub actors: usize,
    /// People per field.
    pub by_field: BTreeMap<String, usize>,
}

impl Expected {
    /// Fails unless the report `r` matches.
    pub fn check(&self, r: &Value) -> anyhow::Result<()> {
        let num = |k: &str| {
            r[k].as_u64()
                .map(|v| v as usize)
                .ok_or_else(|| anyhow!("no number {k:?} in the report"))
        };
        let by_field: BTreeMap<String, usize> = r["by_field"]
            .as_object()
            .ok_or_else(|| anyhow!("no by_field object in the report"))?
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    v.as_u64().ok_or_else(|| anyhow!("by_field.{k}"))? as usize,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        let people_len = r["people"].as_array().map_or(usize::MAX, Vec::len);
        let actors_len = r["by_actor"].as_array().map_or(usize::MAX, Vec::len);
        let got = Self {
            records: num("records")?,
            people: num("people_affected")?,
            actors: actors_len,
            by_field,
        };
        if got != *self || people_len != self.people {
            bail!(
                "the report does not match the log: expected {self:?}, got {got:?} ({people_len} people listed)"
            );
        }
        Ok(())
    }
}

/// One breach-scope query of the benchmark.
#[derive(Debug, Clone)]
pub struct Window {
    /// Its name in the table.
    pub name: String,
    /// Start (Unix seconds).
    pub from: i64,
    /// End, exclusive.
    pub to: i64,
    /// AdminActor filter (index into the fixture's actors).
    pub actor: Option<usize>,
}

/// The four windows of the requirement, plus the empty baseline.
pub fn windows(fx: &Fixture) -> Vec<Window> {
    let mid = fx.start + (DAYS / 2 + 18) * DAY;
    vec![
        Window {
            name: "empty window (baseline)".into(),
            from: fx.start - 2 * DAY,
            to: fx.start - DAY,
            actor: None,
        },
        Window {
            name: "1 day".into(),
            from: mid,
            to: mid + DAY,
            actor: None,
        },
        Window {
            name: "30 days".into(),
            from: mid - 15 * DAY,
            to: mid + 15 * DAY,
            actor: None,
        },
        Window {
            name: format!("{DAYS} days (whole log)"),
            from: fx.start,
            to: fx.end,
            actor: None,
        },
        Window {
            name: format!("{DAYS} days, one actor"),
            from: fx.start,
            to: fx.end,
            actor: Some(1),
        },
    ]
}

pub(super) fn rfc3339(t: i64) -> anyhow::Result<String> {
    Ok(OffsetDateTime::from_unix_timestamp(t)?
        .format(&time::format_description::well_known::Rfc3339)?)
}

/// Writes generator records `range` straight into `audit_log`, chained to
/// the last stored record; returns the number of records in the log.
pub(super) fn write_fixture(db: &Path, fx: &Fixture, range: Range<u64>) -> anyhow::Result<u64> {
    let mut c =
        rusqlite::Connection::open(db).with_context(|| format!("cannot open {}", db.display()))?;
    c.busy_timeout(Duration::from_secs(30))?;
    // Only this connection: the database's own settings stay as they are.
    c.pragma_update(None, "synchronous", "OFF")?;
    c.pragma_update(None, "cache_size", -1_048_576i64)?;
    let last: Option<(i64, Option<Vec<u8>>)> = c
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    let (mut seq, mut prev) = match last {
        Some((s, Some(h))) => (s, h),
        Some((s, None)) => (s, GENESIS.to_vec()),
        None => (0, GENESIS.to_vec()),
    };
    let total = range.end - range.start;
    let step = (total / 10).max(1);
    let mut i = range.start;
    while i < range.end {
        let batch_end = (i + FIXTURE_BATCH).min(range.end);
        let tx = c.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO audit_log
                    (seq, at, actor, source, action, target, outcome, request_id, detail, prev_hash, hash)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?;
            while i < batch_end {
                let e = fx.event(i)?;
                seq += 1;
                let hash = record_hash(&prev, seq, &e);
                insert.execute(rusqlite::params![
                    seq,
                    e.at.unix_timestamp(),
                    e.actor,
                    e.source,
                    e.action,
                    e.target,
                    e.outcome,
                    e.request_id,
                    e.detail,
                    prev,
                    hash.as_slice()
                ])?;
                prev = hash.to_vec();
                i += 1;
                let done = i - range.start;
                if done.is_multiple_of(step) && done < total {
                    eprintln!("  fixture: {done}/{total}");
                }
            }
        }
        tx.commit()?;
    }
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(seq as u64)
}
