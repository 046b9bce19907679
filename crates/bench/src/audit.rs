//! `--audit N`: the audit log with N chained records.
//!
//! 1. `mamori serve` starts once on a new data directory: it creates the
//!    keys, the database with the real migrations, an owner account and an
//!    API token (`mamori admin create`, `mamori token create`); then it is
//!    stopped.
//! 2. **Append rate, through the real store path**: this process opens the
//!    database with `mamori_store::SqliteStore::open` (what the server does
//!    at start) and appends records through `mamori_core::chain::ChainWriter`,
//!    the path every audited action takes: the writer hashes the record
//!    onto the end it last wrote, and the store, in one transaction per
//!    record on the writer connection, checks the link against the stored
//!    end and inserts (each commit fsyncs the WAL: `synchronous = FULL` in WAL
//!    mode, as in the server, so the rate is bounded by the disk's fsync
//!    latency). It does so one record at a time from one
//!    task on the fresh log, again on the full log, and from several tasks
//!    at once on the full log. This measures the store, not HTTP: an admin
//!    API request costs more than the audit record(s) it writes.
//! 3. **Fixture** (not a measurement): the rest of the N records are written
//!    straight into `audit_log` with rusqlite in large transactions, each
//!    hashed with the real `record_hash` and linked to the one before, so
//!    the chain verifies. The mix: ~10 % `people.read` (over
//!    [`DISTINCT_PEOPLE`] pseudonymous person IDs, `fields=...`), a few
//!    `people.export`, API requests, logins and second factors, commands,
//!    lookups, updates; by [`ACTORS`] actors; spread evenly over the
//!    [`DAYS`] days before today (UTC). Then `mamori audit checkpoint`
//!    signs the newest record.
//! 4. `mamori audit verify` (the real CLI, a child process) walks the
//!    whole chain and the checkpoint: wall time and records/s.
//! 5. The breach-scope report for a one-day window, a 30-day window, the
//!    whole year, and one actor over the year: through the CLI (`mamori
//!    audit breach-scope`, the whole command: process start, key loading,
//!    query, JSON on stdout; with the server stopped) and through the API
//!    (`GET /api/v1/reports/breach-scope` on a restarted `mamori serve`,
//!    until the whole answer is read), each `--audit-runs` times. Every
//!    answer is checked against the figures computed from the generator
//!    (records, people, people per field, actors). Target: under
//!    [`BREACH_SCOPE_TARGET`], judged on the slowest run.
//!
//! The database is in the page cache for the timed reads (it has just been
//! written; the machine has the memory for it). It needs about 270 bytes of
//! disk per record (2.6 GiB for 10 million) in the temporary directory.
//!
//! This process opens the database with its own `mamori-store`, which
//! migrates it to its schema: build the benchmark and the server from the
//! same tree (an older server refuses a database newer than itself).

use crate::people::{DbSize, Latency, SplitMix64};
use crate::procfs;
use crate::server::{self, Server};
use anyhow::{anyhow, bail, Context};
use mamori_core::audit::record_hash;
use mamori_core::chain::ChainWriter;
use mamori_domain::chain::GENESIS;
use mamori_domain::AuditEvent;
use mamori_ports::AuditStore;
use mamori_store::SqliteStore;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// The breach-scope report must answer within this.
pub const BREACH_SCOPE_TARGET: Duration = Duration::from_secs(2);
/// Distinct pseudonymous person IDs in the fixture.
pub const DISTINCT_PEOPLE: usize = 100_000;
/// Distinct actors (administrator sessions and tokens).
pub const ACTORS: usize = 300;
/// The fixture spans this many days, ending at today's midnight (UTC).
pub const DAYS: i64 = 365;
/// Seconds per day.
const DAY: i64 = 86_400;
/// Records per transaction while writing the fixture.
const FIXTURE_BATCH: u64 = 250_000;
/// Seed of the fixture (the same log every run).
const SEED: u64 = 0x6d61_6d6f_7269_a0d1;
/// The fields of a `people.read` record (what the server writes).
const READ_FIELDS: &str = mamori_core::people::PERSONAL_FIELDS;
/// The fields of a `people.export` record in the fixture.
const EXPORT_FIELDS: &str = "name,email,department";
/// Admin routes of the fixture's `api.request` records.
const ROUTES: [&str; 8] = [
    "POST /api/v1/commands",
    "POST /api/v1/enrollment-profiles",
    "PATCH /api/v1/people/{id}",
    "PUT /api/v1/devices/{udid}/person",
    "POST /api/v1/people/import",
    "POST /api/v1/tokens",
    "POST /api/v1/auth/logout",
    "DELETE /api/v1/tokens/{id}",
];
/// Request types of the fixture's `command.queue` records.
const REQUEST_TYPES: [&str; 6] = [
    "DeviceInformation",
    "InstallProfile",
    "DeviceLock",
    "InstalledApplicationList",
    "RemoveProfile",
    "SecurityInfo",
];

/// What `--audit` was asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Records in the log.
    pub records: u64,
    /// Records per timed append phase.
    pub append: u64,
    /// Tasks of the concurrent append phase.
    pub tasks: usize,
    /// Runs of each breach-scope query.
    pub runs: usize,
}

impl Plan {
    /// Records per append phase: `append`, at most a quarter of the log.
    pub fn append_per_phase(&self) -> u64 {
        self.append.min(self.records / 4)
    }

    /// Where each part of the log comes from, by generator index: the
    /// first append phase, the fixture, the append phase on the full log,
    /// the concurrent one.
    pub fn parts(&self) -> [Range<u64>; 4] {
        let m = self.append_per_phase();
        let n = self.records;
        [0..m, m..n - 2 * m, n - 2 * m..n - m, n - m..n]
    }
}

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

fn rfc3339(t: i64) -> anyhow::Result<String> {
    Ok(OffsetDateTime::from_unix_timestamp(t)?
        .format(&time::format_description::well_known::Rfc3339)?)
}

/// One timed append phase.
#[derive(Debug, Clone)]
pub struct AppendFigures {
    /// Its name in the table.
    pub name: String,
    /// Records appended.
    pub records: u64,
    /// Records in the log before it.
    pub log_before: u64,
    /// Wall time.
    pub wall: Duration,
    /// Per-append latency, µs (one task only).
    pub latency: Option<Latency>,
}

/// One timed breach-scope query (all its runs).
#[derive(Debug, Clone)]
pub struct QueryFigures {
    /// The window.
    pub window: Window,
    /// Through what (`CLI` or `API`).
    pub via: &'static str,
    /// Wall time of each run.
    pub runs: Vec<Duration>,
    /// What the report said (and the generator expected).
    pub expected: Expected,
    /// Size of the answer, bytes.
    pub answer_bytes: usize,
    /// Server CPU over all runs (API only).
    pub server_cpu: Option<Duration>,
    /// Server memory after the runs (API only).
    pub server_memory: Option<procfs::Memory>,
}

/// Everything measured.
#[derive(Debug, Clone)]
pub struct Figures {
    /// What was asked.
    pub plan: Plan,
    /// The fixture's span.
    pub span: (i64, i64),
    /// The append phases.
    pub appends: Vec<AppendFigures>,
    /// Records written as fixture, and how long that took.
    pub fixture: (u64, Duration),
    /// Records in the log when verified.
    pub verified: u64,
    /// Signed checkpoints verified.
    pub checkpoints: u64,
    /// Wall time of `mamori audit verify`.
    pub verify_wall: Duration,
    /// The breach-scope queries.
    pub queries: Vec<QueryFigures>,
    /// Database after the fixture (WAL checkpointed).
    pub db: DbSize,
}

/// Appends generator records `range` through `store`, one at a time from
/// one task, or from `tasks` tasks taking the next record in turn.
async fn append_phase(
    store: &SqliteStore,
    fx: &Fixture,
    name: String,
    range: Range<u64>,
    tasks: usize,
) -> anyhow::Result<AppendFigures> {
    let log_before = store
        .last_audit_hash()
        .await
        .map_err(|e| anyhow!("{e}"))?
        .map_or(0, |(seq, _)| seq as u64);
    // Built before the clock starts.
    let events: Arc<Vec<AuditEvent>> = Arc::new(
        range
            .clone()
            .map(|i| fx.event(i))
            .collect::<anyhow::Result<_>>()?,
    );
    eprintln!("{name}: {} records...", events.len());
    // The server's path: the chain computed in the service layer, the
    // store comparing and appending.
    let writer = Arc::new(ChainWriter::default());
    let start = Instant::now();
    let latency = if tasks <= 1 {
        let mut lat = Vec::with_capacity(events.len());
        for e in events.iter() {
            let t = Instant::now();
            writer
                .append(store, std::slice::from_ref(e))
                .await
                .map_err(|e| anyhow!("append_audit: {e}"))?;
            lat.push(t.elapsed().as_secs_f64() * 1e6);
        }
        Latency::of(&lat)
    } else {
        let next = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let (store, events, next, writer) = (
                    store.clone(),
                    Arc::clone(&events),
                    Arc::clone(&next),
                    Arc::clone(&writer),
                );
                tokio::spawn(async move {
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(e) = events.get(k) else { break };
                        writer
                            .append(&store, std::slice::from_ref(e))
                            .await
                            .map_err(|e| anyhow!("append_audit: {e}"))?;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for h in handles {
            h.await.context("append task panicked")??;
        }
        None
    };
    Ok(AppendFigures {
        name,
        records: events.len() as u64,
        log_before,
        wall: start.elapsed(),
        latency,
    })
}

/// Writes generator records `range` straight into `audit_log`, chained to
/// the last stored record; returns the number of records in the log.
fn write_fixture(db: &Path, fx: &Fixture, range: Range<u64>) -> anyhow::Result<u64> {
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

/// Runs `server_bin args...` to completion; its wall time and stdout.
async fn run_cli(server_bin: &Path, args: &[String]) -> anyhow::Result<(Duration, Vec<u8>)> {
    let start = Instant::now();
    let out = tokio::process::Command::new(server_bin)
        .args(args)
        .env("RUST_LOG", server::SERVER_RUST_LOG)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run `{}`", args.join(" ")))?;
    let wall = start.elapsed();
    if !out.status.success() {
        bail!(
            "`mamori {}` failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((wall, out.stdout))
}

/// `N` and `C` of `audit log intact: N records checked (...), C signed
/// checkpoints verified`.
pub fn parse_verified(stdout: &str) -> Option<(u64, u64)> {
    let rest = stdout.trim().strip_prefix("audit log intact: ")?;
    let (records, rest) = rest.split_once(" records checked")?;
    let (_, rest) = rest.split_once("), ")?;
    let (points, _) = rest.split_once(" signed checkpoint")?;
    Some((records.parse().ok()?, points.parse().ok()?))
}

fn data_arg(data_dir: &Path) -> [String; 2] {
    ["--data-dir".to_owned(), data_dir.display().to_string()]
}

/// Runs everything in `work_dir`; returns the figures.
pub async fn measure(server_bin: &Path, work_dir: &Path, plan: Plan) -> anyhow::Result<Figures> {
    if plan.records < 8 {
        bail!("--audit needs at least 8 records");
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let fx = Fixture::new(plan.records, now);
    let [first, bulk, second, third] = plan.parts();

    // 1. The data directory, by the real server.
    eprintln!("creating the data directory with `mamori serve`...");
    let server = Server::start(server_bin, work_dir).await?;
    let token = server.token.clone();
    let data_dir: PathBuf = server.data_dir.clone();
    drop(server);
    let db = data_dir.join("mamori.db");

    // 2. Append rate through the store, on the fresh log.
    let store = SqliteStore::open(&db)
        .await
        .map_err(|e| anyhow!("cannot open {}: {e}", db.display()))?;
    let mut appends =
        vec![append_phase(&store, &fx, "append, 1 task, fresh log".into(), first, 1).await?];
    store.close().await;

    // 3. The fixture.
    eprintln!("writing the fixture: {} records...", bulk.end - bulk.start);
    let started = Instant::now();
    let fx2 = fx.clone();
    let db2 = db.clone();
    let bulk2 = bulk.clone();
    tokio::task::spawn_blocking(move || write_fixture(&db2, &fx2, bulk2))
        .await
        .context("fixture writer panicked")??;
    let fixture = (bulk.end - bulk.start, started.elapsed());

    // 2b. Append rate on the full log, one task and several.
    let store = SqliteStore::open(&db)
        .await
        .map_err(|e| anyhow!("cannot open {}: {e}", db.display()))?;
    appends.push(append_phase(&store, &fx, "append, 1 task, full log".into(), second, 1).await?);
    appends.push(
        append_phase(
            &store,
            &fx,
            format!("append, {} tasks, full log", plan.tasks),
            third,
            plan.tasks,
        )
        .await?,
    );
    store.close().await;
    let db_size = DbSize::of(&data_dir);

    // 4. Checkpoint, then verify.
    let mut args = vec!["audit".to_owned(), "checkpoint".to_owned()];
    args.extend(data_arg(&data_dir));
    run_cli(server_bin, &args).await?;
    let mut args = vec!["audit".to_owned(), "verify".to_owned()];
    args.extend(data_arg(&data_dir));
    eprintln!("mamori audit verify...");
    let (verify_wall, out) = run_cli(server_bin, &args).await?;
    let out = String::from_utf8_lossy(&out);
    let (verified, checkpoints) = parse_verified(&out)
        .ok_or_else(|| anyhow!("`mamori audit verify` did not say the log is intact: {out}"))?;
    if verified < plan.records || checkpoints == 0 {
        bail!(
            "`mamori audit verify` checked {verified} records and {checkpoints} checkpoints: {out}"
        );
    }

    // 5. Breach scope, CLI (server stopped), then API.
    let mut queries = Vec::new();
    let wins = windows(&fx);
    for w in &wins {
        let expected = fx.expected(w.from, w.to, w.actor);
        let mut args = vec!["audit".to_owned(), "breach-scope".to_owned()];
        args.extend(data_arg(&data_dir));
        args.extend([
            "--from".to_owned(),
            rfc3339(w.from)?,
            "--to".to_owned(),
            rfc3339(w.to)?,
        ]);
        if let Some(a) = w.actor {
            args.extend(["--actor".to_owned(), fx.actor(a).to_owned()]);
        }
        eprintln!("breach-scope (CLI), {}...", w.name);
        let mut runs = Vec::new();
        let mut answer_bytes = 0;
        for _ in 0..plan.runs {
            let (wall, out) = run_cli(server_bin, &args).await?;
            let report: Value = serde_json::from_slice(&out)
                .with_context(|| format!("breach-scope {}: not JSON", w.name))?;
            expected
                .check(&report)
                .with_context(|| format!("breach-scope (CLI) {}", w.name))?;
            answer_bytes = out.len();
            runs.push(wall);
        }
        queries.push(QueryFigures {
            window: w.clone(),
            via: "CLI",
            runs,
            expected,
            answer_bytes,
            server_cpu: None,
            server_memory: None,
        });
    }
    eprintln!("restarting `mamori serve` for the API...");
    let server = Server::restart(server_bin, work_dir, &token, "server-api.log").await?;
    let ticks_per_s = procfs::clock_ticks_per_second();
    for w in &wins {
        let expected = fx.expected(w.from, w.to, w.actor);
        let mut path = format!(
            "/api/v1/reports/breach-scope?from={}&to={}",
            rfc3339(w.from)?,
            rfc3339(w.to)?
        );
        if let Some(a) = w.actor {
            let _ = write!(path, "&actor={}", fx.actor(a));
        }
        eprintln!("breach-scope (API), {}...", w.name);
        let mut runs = Vec::new();
        let mut answer_bytes = 0;
        let cpu_before = procfs::cpu_ticks(server.pid())?;
        for _ in 0..plan.runs {
            let start = Instant::now();
            let r = server
                .http
                .get(server.admin_url(&path))
                .bearer_auth(&server.token)
                .send()
                .await
                .with_context(|| format!("GET {path}"))?;
            let status = r.status();
            let body = r
                .bytes()
                .await
                .with_context(|| format!("GET {path}: body"))?;
            let wall = start.elapsed();
            if !status.is_success() {
                bail!("GET {path}: {status}: {}", String::from_utf8_lossy(&body));
            }
            let report: Value =
                serde_json::from_slice(&body).with_context(|| format!("GET {path}: not JSON"))?;
            expected
                .check(&report)
                .with_context(|| format!("breach-scope (API) {}", w.name))?;
            answer_bytes = body.len();
            runs.push(wall);
        }
        let cpu = procfs::ticks_to_duration(
            procfs::cpu_ticks(server.pid())?.saturating_sub(cpu_before),
            ticks_per_s,
        );
        queries.push(QueryFigures {
            window: w.clone(),
            via: "API",
            runs,
            expected,
            answer_bytes,
            server_cpu: Some(cpu),
            server_memory: Some(procfs::memory(server.pid())?),
        });
    }
    server.check_alive()?;
    drop(server);

    Ok(Figures {
        plan,
        span: (fx.start, fx.end),
        appends,
        fixture,
        verified,
        checkpoints,
        verify_wall,
        queries,
        db: db_size,
    })
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// The result lines (table and notes).
pub fn report(f: &Figures) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<50} {:>10} {:>9} {:>7}  {:<6}  rate / runs",
        "phase", "records", "wall", "target", "result"
    );
    let mut row =
        |phase: &str, n: u64, wall: Duration, what: String, target: &str, result: &str| {
            let _ = writeln!(
                out,
                "{phase:<50} {n:>10} {:>9} {target:>7}  {result:<6}  {what}",
                secs(wall)
            );
        };
    for a in &f.appends {
        let lat = a.latency.map_or(String::new(), |l| {
            format!(
                "; per record med {:.0} mean {:.0} p99 {:.0} max {:.0} µs",
                l.median, l.mean, l.p99, l.max
            )
        });
        row(
            &format!("{} (store, {} before)", a.name, a.log_before),
            a.records,
            a.wall,
            format!("{:.0} records/s{lat}", rate(a.records, a.wall)),
            "-",
            "",
        );
    }
    row(
        "fixture (rusqlite, not Mamori's code path)",
        f.fixture.0,
        f.fixture.1,
        format!(
            "{:.0} records/s (record_hash + INSERT)",
            rate(f.fixture.0, f.fixture.1)
        ),
        "-",
        "",
    );
    row(
        "audit verify (CLI, whole command)",
        f.verified,
        f.verify_wall,
        format!(
            "{:.0} records/s; {} checkpoint(s) verified",
            rate(f.verified, f.verify_wall),
            f.checkpoints
        ),
        "-",
        "",
    );
    let target = format!("< {} s", BREACH_SCOPE_TARGET.as_secs());
    for q in &f.queries {
        let mut sorted = q.runs.clone();
        sorted.sort();
        let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
        let median = sorted[sorted.len() / 2];
        let judged = q.window.from < q.window.to && q.expected.records > 0;
        let cpu = q.server_cpu.map_or(String::new(), |c| {
            format!(
                "; srv CPU {:.2} s/run",
                c.as_secs_f64() / q.runs.len().max(1) as f64
            )
        });
        let mem = q.server_memory.map_or(String::new(), |m| {
            format!("; RSS {:.0} (peak {:.0}) MB", m.rss_mib(), m.peak_mib())
        });
        row(
            &format!("breach-scope {}, {}", q.via, q.window.name),
            q.expected.records as u64,
            max,
            format!(
                "{} people; min {:.2} med {:.2} max {:.2} s; {:.1} MB{cpu}{mem}",
                q.expected.people,
                min.as_secs_f64(),
                median.as_secs_f64(),
                max.as_secs_f64(),
                q.answer_bytes as f64 / 1e6
            ),
            if judged { &target } else { "-" },
            if !judged {
                ""
            } else if max < BREACH_SCOPE_TARGET {
                "met"
            } else {
                "missed"
            },
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "log: {} records ({} appended through the store, {} written as fixture, the rest by \
         `mamori serve`/CLI); span {} to {}; database {:.2} GiB",
        f.verified,
        f.appends.iter().map(|a| a.records).sum::<u64>(),
        f.fixture.0,
        rfc3339(f.span.0).unwrap_or_default(),
        rfc3339(f.span.1).unwrap_or_default(),
        f.db.total_mib() / 1024.0
    );
    let _ = writeln!(
        out,
        "append: ChainWriter::append on a SqliteStore (record_hash in the writer; one transaction \
         per record: compare the last link, INSERT; WAL, synchronous=FULL: one fsync per commit), events built beforehand."
    );
    let _ = writeln!(
        out,
        "breach-scope: {} run(s) each; wall = whole command (CLI: process start, keys, query, JSON \
         on stdout; server stopped) or request until the whole answer is read (API, HTTPS); \
         every answer checked against the generator; the wall column and the target are the slowest run; \
         records = personal-data access records in scope.",
        f.plan.runs
    );
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_about_a_tenth_reads_and_spans_the_year() {
        let fx = Fixture::new(100_000, 1_800_000_123);
        assert_eq!(fx.end % DAY, 0);
        assert_eq!(fx.end - fx.start, DAYS * DAY);
        let reads = (0..100_000)
            .filter(|&i| fx.draw(i).kind == Kind::Read)
            .count();
        assert!((9_000..11_000).contains(&reads), "{reads}");
        assert_eq!(fx.at(0), fx.start);
        assert!(fx.at(99_999) < fx.end);
        assert!((1..100_000).all(|i| fx.at(i) >= fx.at(i - 1)));
        assert_eq!(fx.first_at_or_after(fx.start), 0);
        assert_eq!(fx.first_at_or_after(fx.end), 100_000);
        let e = fx.event(7).unwrap();
        assert_eq!(e, fx.event(7).unwrap(), "deterministic");
        assert_eq!(e.at.unix_timestamp(), fx.at(7));
    }

    #[test]
    fn expected_counts_people_per_field() {
        let fx = Fixture::new(50_000, 1_800_000_123);
        let all = fx.expected(fx.start, fx.end, None);
        let personal = (0..50_000)
            .filter(|&i| fx.draw(i).kind.is_personal())
            .count();
        assert_eq!(all.records, personal);
        assert_eq!(all.by_field["name"], all.people);
        assert!(all.by_field["phone"] <= all.people);
        assert_eq!(all.actors, ACTORS);
        let one = fx.expected(fx.start, fx.end, Some(1));
        assert_eq!(one.actors, 1);
        assert!(one.records < all.records);
        assert_eq!(fx.expected(fx.start - 10, fx.start, None).records, 0);
    }

    #[test]
    fn parses_the_verify_line() {
        assert_eq!(
            parse_verified(
                "audit log intact: 10000005 records checked (0 written before the chain began), 1 signed checkpoints verified\n"
            ),
            Some((10_000_005, 1))
        );
        assert_eq!(parse_verified("AUDIT LOG TAMPERED: record 3"), None);
    }

    #[test]
    fn the_parts_cover_the_log() {
        let p = Plan {
            records: 1_000,
            append: 100_000,
            tasks: 4,
            runs: 1,
        };
        let [a, b, c, d] = p.parts();
        assert_eq!(
            (a.start, a.end, b.end, c.end, d.end),
            (0, 250, 500, 750, 1_000)
        );
    }
}
