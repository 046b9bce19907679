//! `--people N`: the people directory with N synthetic people.
//!
//! Against the real server (started with `--people-retention-days 0`, so
//! that departed people are due for purge at once) it:
//!
//! 1. imports N people over the API (`POST /api/v1/people/import`, CSV, in
//!    requests of `--people-batch` rows), every 10th of them `departed`;
//! 2. looks up random existing people by e-mail
//!    (`GET /api/v1/people/lookup?email=...`), one at a time on one
//!    keep-alive connection, after a few untimed warm-up lookups;
//! 3. walks the pseudonymous list a page of 100 at a time
//!    (`GET /api/v1/people?limit=100&after=ID`);
//! 4. runs `mamori people purge --due --retention-days 0` against the
//!    running server's data directory (the CLI opens the same SQLite
//!    database), then once more with nothing left due, as a baseline for
//!    process start and key loading;
//! 5. checks the result over the API: departed people are gone, the others
//!    are still there.
//!
//! Wall times are measured in this process; the server's CPU time is
//! `utime + stime` of all its threads from `/proc/PID/stat`.

use crate::login_timing::percentile;
use crate::procfs::{self, Memory};
use crate::server::{self, Server};
use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;
use std::time::{Duration, Instant};

/// Wall latency target per lookup, ms (judged on the median).
pub const LOOKUP_TARGET_MS: f64 = 1.0;
/// Wall time target for purging [`PURGE_TARGET_PEOPLE`] people.
pub const PURGE_TARGET: Duration = Duration::from_secs(10);
/// The number of purged people the purge target is stated for.
pub const PURGE_TARGET_PEOPLE: usize = 10_000;
/// People per listed page.
pub const PAGE_SIZE: usize = 100;
/// Untimed lookups before the timed ones (opens the connection, warms the
/// server's caches).
const WARMUP_LOOKUPS: usize = 20;
/// Seed of the lookup sample (the same e-mails every run).
const LOOKUP_SEED: u64 = 0x6d61_6d6f_7269_0001;
/// People per page when counting the survivors after the purge (untimed).
const COUNT_PAGE: usize = 1000;

/// The CSV header of every import request.
pub const CSV_HEADER: &str = "name,user_id,email,department,phone,status";

const DEPARTMENTS: [&str; 8] = [
    "Sales",
    "Engineering",
    "Finance",
    "Human Resources",
    "Marketing",
    "Operations",
    "Legal",
    "Customer Support",
];

/// What `--people` was asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// People to import.
    pub people: usize,
    /// Rows per import request.
    pub batch: usize,
    /// Timed lookups.
    pub lookups: usize,
    /// Timed pages of [`PAGE_SIZE`].
    pub pages: usize,
}

/// Person `i` is departed: every 10th (9, 19, 29, ...).
pub fn is_departed(i: usize) -> bool {
    i % 10 == 9
}

/// How many of people `0..n` are departed.
pub fn departed_count(n: usize) -> usize {
    n / 10
}

/// Person `i`'s e-mail address.
pub fn email(i: usize) -> String {
    format!("person.{i:06}@bench.example")
}

/// Appends person `i` as a CSV line (none of the values needs quoting).
pub fn push_csv_row(out: &mut String, i: usize) {
    let _ = writeln!(
        out,
        "Person {i:06},u{i:06},{},{},+81-3-{:04}-{:04},{}",
        email(i),
        DEPARTMENTS[i % DEPARTMENTS.len()],
        (i / 10_000) % 10_000,
        i % 10_000,
        if is_departed(i) { "departed" } else { "active" }
    );
}

/// One import request's body: the header and people `range`.
pub fn csv(range: Range<usize>) -> String {
    let mut out = String::with_capacity(80 * (range.len() + 1));
    out.push_str(CSV_HEADER);
    out.push('\n');
    for i in range {
        push_csv_row(&mut out, i);
    }
    out
}

/// `0..n` cut into ranges of at most `batch` (at least 1).
pub fn batches(n: usize, batch: usize) -> Vec<Range<usize>> {
    let batch = batch.max(1);
    (0..n)
        .step_by(batch)
        .map(|start| start..(start + batch).min(n))
        .collect()
}

/// SplitMix64: a small deterministic generator, so that every run looks up
/// the same people.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`; the modulo bias is negligible here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// `k` people out of `0..n`, drawn with replacement.
pub fn sample(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64::new(seed);
    (0..k).map(|_| rng.below(n)).collect()
}

/// `email` for a query string (only `@` and `+` need escaping in ours;
/// `%` is escaped in case).
pub fn query_escape(v: &str) -> String {
    v.replace('%', "%25")
        .replace('@', "%40")
        .replace('+', "%2B")
}

/// Order statistics of latencies, ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Number of values.
    pub n: usize,
    /// 50th percentile.
    pub median: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Largest value.
    pub max: f64,
}

impl Latency {
    /// `None` for an empty sample.
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            n: sorted.len(),
            median: percentile(&sorted, 50.0),
            p90: percentile(&sorted, 90.0),
            p99: percentile(&sorted, 99.0),
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
            max: sorted[sorted.len() - 1],
        })
    }
}

/// `N` of the `purged N people` line the CLI prints.
pub fn parse_purged(stdout: &str) -> Option<u64> {
    stdout.lines().find_map(|l| {
        l.trim()
            .strip_prefix("purged ")?
            .strip_suffix(" people")?
            .parse()
            .ok()
    })
}

/// Sizes of the database file and its WAL, bytes (0 for a missing file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbSize {
    /// `mamori.db`.
    pub db: u64,
    /// `mamori.db-wal`.
    pub wal: u64,
}

impl DbSize {
    /// Reads the sizes in `data_dir`.
    pub fn of(data_dir: &Path) -> Self {
        let size = |name: &str| {
            std::fs::metadata(data_dir.join(name))
                .map(|m| m.len())
                .unwrap_or(0)
        };
        Self {
            db: size("mamori.db"),
            wal: size("mamori.db-wal"),
        }
    }

    /// Both, MiB.
    pub fn total_mib(&self) -> f64 {
        (self.db + self.wal) as f64 / 1024.0 / 1024.0
    }

    fn describe(&self) -> String {
        format!(
            "{:.1} MiB (mamori.db {:.1} MiB + -wal {:.1} MiB)",
            self.total_mib(),
            self.db as f64 / 1024.0 / 1024.0,
            self.wal as f64 / 1024.0 / 1024.0
        )
    }
}

/// Everything measured.
#[derive(Debug, Clone)]
pub struct Figures {
    /// What was asked.
    pub plan: Plan,
    /// Import requests sent.
    pub import_requests: usize,
    /// Wall time of all import requests.
    pub import_wall: Duration,
    /// The slowest import request.
    pub import_slowest: Duration,
    /// Server CPU during the import.
    pub import_cpu: Duration,
    /// Lookup latencies.
    pub lookup: Latency,
    /// Wall time of all timed lookups.
    pub lookup_wall: Duration,
    /// Server CPU during the timed lookups.
    pub lookup_cpu: Duration,
    /// Page latencies.
    pub page: Latency,
    /// Wall time of all timed pages.
    pub page_wall: Duration,
    /// Server CPU during the timed pages.
    pub page_cpu: Duration,
    /// People on the timed pages.
    pub paged_people: usize,
    /// Wall time of `people purge --due` (whole command).
    pub purge_wall: Duration,
    /// What it purged.
    pub purged: u64,
    /// Wall time of the same command with nothing due.
    pub baseline_wall: Duration,
    /// People listed after the purge.
    pub remaining: usize,
    /// Database after the import.
    pub db_loaded: DbSize,
    /// Database after the purge.
    pub db_purged: DbSize,
    /// Server memory after the import.
    pub memory_loaded: Memory,
    /// Server CPU resolution, ms.
    pub tick_ms: f64,
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn ms(d: Duration, per: usize) -> f64 {
    d.as_secs_f64() * 1000.0 / per.max(1) as f64
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "missed"
    }
}

/// The purge's own time: the command's wall minus the baseline (never
/// below zero).
pub fn purge_only(purge: Duration, baseline: Duration) -> Duration {
    purge.saturating_sub(baseline)
}

/// The result lines (table and notes).
pub fn report(f: &Figures) -> String {
    let p = &f.plan;
    let departed = departed_count(p.people);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<34} {:>7} {:>9}  {:<46} {:>14}  {:>9}  result",
        "phase", "count", "wall", "per item (wall)", "srv CPU/item", "target"
    );
    let mut row = |phase: &str,
                   count: usize,
                   wall: Duration,
                   per_item: String,
                   cpu: String,
                   target: &str,
                   result: &str| {
        let _ = writeln!(
            out,
            "{phase:<34} {count:>7} {:>9}  {per_item:<46} {cpu:>14}  {target:>9}  {result}",
            secs(wall)
        );
    };
    row(
        &format!(
            "import (CSV, {} request{})",
            f.import_requests,
            if f.import_requests == 1 { "" } else { "s" }
        ),
        p.people,
        f.import_wall,
        format!(
            "{:.0} people/s; slowest request {}",
            p.people as f64 / f.import_wall.as_secs_f64().max(1e-9),
            secs(f.import_slowest)
        ),
        format!("{:.3} ms", ms(f.import_cpu, p.people)),
        "-",
        "",
    );
    let l = &f.lookup;
    row(
        "lookup by e-mail (one at a time)",
        l.n,
        f.lookup_wall,
        format!(
            "med {:.3} p90 {:.3} p99 {:.3} mean {:.3} ms",
            l.median, l.p90, l.p99, l.mean
        ),
        format!("{:.3} ms", ms(f.lookup_cpu, l.n)),
        &format!("≤ {LOOKUP_TARGET_MS} ms"),
        verdict(l.median <= LOOKUP_TARGET_MS),
    );
    let g = &f.page;
    row(
        &format!("list a page of {PAGE_SIZE}"),
        g.n,
        f.page_wall,
        format!(
            "med {:.3} p90 {:.3} p99 {:.3} mean {:.3} ms",
            g.median, g.p90, g.p99, g.mean
        ),
        format!("{:.3} ms", ms(f.page_cpu, g.n)),
        "-",
        "",
    );
    let judged = f.purged as usize >= PURGE_TARGET_PEOPLE;
    let purge_result = |wall: Duration| {
        if judged {
            verdict(wall <= PURGE_TARGET)
        } else {
            "not judged"
        }
    };
    let target = format!("≤ {} s", PURGE_TARGET.as_secs());
    row(
        "purge --due (CLI, whole command)",
        f.purged as usize,
        f.purge_wall,
        format!("{:.3} ms/person", ms(f.purge_wall, f.purged as usize)),
        "-".into(),
        &target,
        purge_result(f.purge_wall),
    );
    row(
        "purge --due, nothing due (baseline)",
        0,
        f.baseline_wall,
        "process start, key loading, empty query".into(),
        "-".into(),
        "-",
        "",
    );
    let only = purge_only(f.purge_wall, f.baseline_wall);
    row(
        "purge itself (command - baseline)",
        f.purged as usize,
        only,
        format!("{:.3} ms/person", ms(only, f.purged as usize)),
        "-".into(),
        &target,
        purge_result(only),
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "lookups: max {:.3} ms; p99 ≤ {LOOKUP_TARGET_MS} ms: {} (the target is judged on the median)",
        l.max,
        if l.p99 <= LOOKUP_TARGET_MS { "yes" } else { "no" }
    );
    let _ = writeln!(
        out,
        "pages: {} people on {} pages, max {:.3} ms per page",
        f.paged_people, g.n, g.max
    );
    let _ = writeln!(
        out,
        "purge: {} of {departed} departed people purged; {} of {} people left afterwards{}",
        f.purged,
        f.remaining,
        p.people - departed,
        if judged {
            String::new()
        } else {
            format!("; the purge target is stated for {PURGE_TARGET_PEOPLE} people, not judged")
        }
    );
    let _ = writeln!(
        out,
        "database after the import: {}; after the purge (WAL checkpointed): {}",
        f.db_loaded.describe(),
        f.db_purged.describe()
    );
    let _ = writeln!(
        out,
        "server RSS after the import: {:.1} MB (peak {:.1} MB)",
        f.memory_loaded.rss_mib(),
        f.memory_loaded.peak_mib()
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "wall = time in this process from sending a request to having read the whole answer (HTTPS, \
         one keep-alive connection, one request at a time; lookups after {WARMUP_LOOKUPS} untimed \
         warm-up lookups), or of the whole CLI command. srv CPU/item = server utime+stime (all \
         threads, /proc/PID/stat, resolution {:.0} ms) over the phase / count. Every lookup also \
         writes an audit record.",
        f.tick_ms
    );
    out
}

/// Server CPU time since `before` (clock ticks).
fn cpu_since(server: &Server, before: u64, ticks_per_s: u64) -> anyhow::Result<Duration> {
    let now = procfs::cpu_ticks(server.pid())?;
    Ok(procfs::ticks_to_duration(
        now.saturating_sub(before),
        ticks_per_s,
    ))
}

/// `GET path`, expecting 200 and JSON.
async fn get_json(server: &Server, path: &str) -> anyhow::Result<(u16, Value)> {
    let r = server
        .http
        .get(server.admin_url(path))
        .bearer_auth(&server.token)
        .send()
        .await
        .with_context(|| format!("GET {path}"))?;
    let status = r.status().as_u16();
    let body = r
        .bytes()
        .await
        .with_context(|| format!("GET {path}: body"))?;
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status == 200 && json.is_null() {
        bail!(
            "GET {path}: 200 without JSON: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok((status, json))
}

/// Looks up person `i`; fails unless it is found with the right status.
async fn lookup_one(server: &Server, i: usize) -> anyhow::Result<()> {
    let path = format!("/api/v1/people/lookup?email={}", query_escape(&email(i)));
    let (status, body) = get_json(server, &path).await?;
    if status != 200 {
        bail!("lookup of person {i}: {status}: {body}");
    }
    let want = if is_departed(i) { "departed" } else { "active" };
    if body["id"].as_str().is_none() || body["status"].as_str() != Some(want) {
        bail!("lookup of person {i}: expected a {want} person, got {body}");
    }
    Ok(())
}

/// One page of the pseudonymous list: how many people, and `next_after`.
async fn page(
    server: &Server,
    limit: usize,
    after: Option<&str>,
) -> anyhow::Result<(usize, Option<String>)> {
    let mut path = format!("/api/v1/people?limit={limit}");
    if let Some(a) = after {
        let _ = write!(path, "&after={a}");
    }
    let (status, body) = get_json(server, &path).await?;
    if status != 200 {
        bail!("GET {path}: {status}: {body}");
    }
    let n = body["people"]
        .as_array()
        .map(Vec::len)
        .ok_or_else(|| anyhow!("GET {path}: no `people` array"))?;
    Ok((n, body["next_after"].as_str().map(str::to_owned)))
}

/// Runs `server_bin people purge --due --retention-days 0` against the
/// server's data directory; returns its wall time and the purged count.
async fn purge_due(server: &Server, server_bin: &Path) -> anyhow::Result<(Duration, u64)> {
    let start = Instant::now();
    let out = tokio::process::Command::new(server_bin)
        .args([
            "people",
            "purge",
            "--due",
            "--retention-days",
            "0",
            "--data-dir",
        ])
        .arg(&server.data_dir)
        .env("RUST_LOG", server::SERVER_RUST_LOG)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .context("cannot run `people purge --due`")?;
    let wall = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "`people purge --due` failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let n = parse_purged(&stdout)
        .ok_or_else(|| anyhow!("`people purge --due` printed no `purged N people`: {stdout}"))?;
    Ok((wall, n))
}

/// With `server` running (with `--people-retention-days 0`): loads,
/// measures, purges, checks; returns the figures.
pub async fn measure(server: &Server, server_bin: &Path, plan: Plan) -> anyhow::Result<Figures> {
    let ticks_per_s = procfs::clock_ticks_per_second();
    let n = plan.people;
    let departed = departed_count(n);
    if n == 0 {
        bail!("no people to load");
    }

    // 1. Import. The bodies are built before the clock starts.
    let bodies: Vec<(Range<usize>, String)> = batches(n, plan.batch)
        .into_iter()
        .map(|r| {
            let body = csv(r.clone());
            (r, body)
        })
        .collect();
    eprintln!(
        "importing {n} people ({departed} departed) in {} request(s)...",
        bodies.len()
    );
    let url = server.admin_url("/api/v1/people/import");
    let cpu_before = procfs::cpu_ticks(server.pid())?;
    let mut import_wall = Duration::ZERO;
    let mut import_slowest = Duration::ZERO;
    for (k, (range, body)) in bodies.into_iter().enumerate() {
        let start = Instant::now();
        let r = server
            .http
            .post(&url)
            .bearer_auth(&server.token)
            .header("Content-Type", "text/csv")
            .body(body)
            .send()
            .await
            .context("POST /api/v1/people/import")?;
        let status = r.status().as_u16();
        let text = r.text().await.context("import answer body")?;
        let took = start.elapsed();
        import_wall += took;
        import_slowest = import_slowest.max(took);
        let imported = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["imported"].as_u64());
        if status != 201 || imported != Some(range.len() as u64) {
            bail!(
                "import of people {range:?}: expected 201 {{\"imported\": {}}}, got {status}: {}",
                range.len(),
                text.chars().take(2000).collect::<String>()
            );
        }
        if (k + 1) % 5 == 0 {
            eprintln!("  imported {}/{n}", range.end);
        }
    }
    let import_cpu = cpu_since(server, cpu_before, ticks_per_s)?;
    server.check_alive()?;
    let db_loaded = DbSize::of(&server.data_dir);
    let memory_loaded = procfs::memory(server.pid())?;

    // 2. Lookups by e-mail, one at a time on the admin client's connection.
    eprintln!(
        "{} lookups by e-mail ({WARMUP_LOOKUPS} untimed first)...",
        plan.lookups
    );
    let picks = sample(n, WARMUP_LOOKUPS + plan.lookups, LOOKUP_SEED);
    let (warmup, timed) = picks.split_at(WARMUP_LOOKUPS.min(picks.len()));
    for &i in warmup {
        lookup_one(server, i).await?;
    }
    let mut lookup_ms = Vec::with_capacity(timed.len());
    let cpu_before = procfs::cpu_ticks(server.pid())?;
    let batch_start = Instant::now();
    for &i in timed {
        let start = Instant::now();
        lookup_one(server, i).await?;
        lookup_ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let lookup_wall = batch_start.elapsed();
    let lookup_cpu = cpu_since(server, cpu_before, ticks_per_s)?;
    let lookup = Latency::of(&lookup_ms).ok_or_else(|| anyhow!("no lookups timed"))?;

    // 3. Pages of 100, walking `next_after` from the start.
    eprintln!("{} pages of {PAGE_SIZE}...", plan.pages);
    let mut page_ms = Vec::with_capacity(plan.pages);
    let mut after: Option<String> = None;
    let mut paged_people = 0;
    let cpu_before = procfs::cpu_ticks(server.pid())?;
    let batch_start = Instant::now();
    for _ in 0..plan.pages {
        let start = Instant::now();
        let (got, next) = page(server, PAGE_SIZE, after.as_deref()).await?;
        page_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        paged_people += got;
        after = next;
        if after.is_none() {
            break;
        }
    }
    let page_wall = batch_start.elapsed();
    let page_cpu = cpu_since(server, cpu_before, ticks_per_s)?;
    let page_latency = Latency::of(&page_ms).ok_or_else(|| anyhow!("no pages timed"))?;
    server.check_alive()?;

    // 4. Purge with the CLI, then the same with nothing due.
    eprintln!("mamori people purge --due ({departed} due)...");
    let (purge_wall, purged) = purge_due(server, server_bin).await?;
    if purged != departed as u64 {
        bail!("`people purge --due` purged {purged} people, expected {departed}");
    }
    eprintln!("mamori people purge --due again (nothing due)...");
    let (baseline_wall, again) = purge_due(server, server_bin).await?;
    if again != 0 {
        bail!("the second `people purge --due` purged {again} people, expected 0");
    }
    server.check_alive()?;
    let db_purged = DbSize::of(&server.data_dir);

    // 5. The server sees the result: departed people gone, the rest there.
    eprintln!("checking the result...");
    if let Some(i) = (0..n).find(|&i| is_departed(i)) {
        let path = format!("/api/v1/people/lookup?email={}", query_escape(&email(i)));
        let (status, body) = get_json(server, &path).await?;
        if status != 404 {
            bail!("lookup of purged person {i}: expected 404, got {status}: {body}");
        }
    }
    if let Some(i) = (0..n).find(|&i| !is_departed(i)) {
        lookup_one(server, i).await?;
    }
    let mut remaining = 0;
    let mut after: Option<String> = None;
    loop {
        let (got, next) = page(server, COUNT_PAGE, after.as_deref()).await?;
        remaining += got;
        match next {
            Some(a) => after = Some(a),
            None => break,
        }
    }
    if remaining != n - departed {
        bail!(
            "after the purge the server lists {remaining} people, expected {}",
            n - departed
        );
    }

    Ok(Figures {
        plan,
        import_requests: batches(n, plan.batch).len(),
        import_wall,
        import_slowest,
        import_cpu,
        lookup,
        lookup_wall,
        lookup_cpu,
        page: page_latency,
        page_wall,
        page_cpu,
        paged_people,
        purge_wall,
        purged,
        baseline_wall,
        remaining,
        db_loaded,
        db_purged,
        memory_loaded,
        tick_ms: 1000.0 / ticks_per_s.max(1) as f64,
    })
}

/// The server's extra `serve` arguments for this mode.
pub const SERVE_ARGS: [&str; 2] = ["--people-retention-days", "0"];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn csv_rows_are_valid_and_distinct() {
        let body = csv(0..1000);
        let mut lines = body.lines();
        assert_eq!(lines.next(), Some(CSV_HEADER));
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len(), 1000);
        assert!(rows.iter().all(|r| r.len() == 6));
        assert_eq!(
            rows[123],
            [
                "Person 000123",
                "u000123",
                "person.000123@bench.example",
                "Human Resources",
                "+81-3-0000-0123",
                "active"
            ]
        );
        assert_eq!(rows[9][5], "departed");
        for col in 0..3 {
            let distinct: HashSet<&str> = rows.iter().map(|r| r[col]).collect();
            assert_eq!(distinct.len(), 1000, "column {col} repeats");
        }
        // Phones: digits, '+' and '-' only, within the server's 32 characters.
        assert!(rows
            .iter()
            .all(|r| r[4].len() <= 32
                && r[4].chars().all(|c| c.is_ascii_digit() || "+-".contains(c))));
        // Nothing needs quoting.
        assert!(!body.contains('"'));
        let departed = rows.iter().filter(|r| r[5] == "departed").count();
        assert_eq!(departed, departed_count(1000));
        // Large indices keep the same shape.
        let big = csv(123_456..123_457);
        assert!(big.contains("Person 123456,u123456,person.123456@bench.example,"));
        assert!(big.contains(",+81-3-0012-3456,"));
    }

    #[test]
    fn departed_count_matches_rows() {
        for n in [0, 1, 9, 10, 19, 20, 99, 100, 100_000] {
            assert_eq!(
                (0..n).filter(|&i| is_departed(i)).count(),
                departed_count(n),
                "n={n}"
            );
        }
        assert_eq!(departed_count(100_000), PURGE_TARGET_PEOPLE);
    }

    #[test]
    fn batches_cover_everything_once() {
        assert_eq!(batches(25, 10), vec![0..10, 10..20, 20..25]);
        assert_eq!(batches(20, 10), vec![0..10, 10..20]);
        assert_eq!(batches(3, 0), vec![0..1, 1..2, 2..3]);
        assert!(batches(0, 10).is_empty());
        let b = batches(100_000, 10_000);
        assert_eq!(b.len(), 10);
        assert_eq!(b.iter().map(ExactSizeIterator::len).sum::<usize>(), 100_000);
        assert_eq!(
            csv(b[3].clone()).lines().count(),
            10_001,
            "header + one line per person"
        );
    }

    #[test]
    fn samples_are_deterministic_and_in_range() {
        let a = sample(100_000, 1000, 42);
        assert_eq!(a, sample(100_000, 1000, 42));
        assert_ne!(a, sample(100_000, 1000, 43));
        assert!(a.iter().all(|&i| i < 100_000));
        // Spread out, not a handful of values.
        assert!(a.iter().collect::<HashSet<_>>().len() > 900);
        assert!(sample(1, 10, 7).iter().all(|&i| i == 0));
        assert!(sample(10, 0, 7).is_empty());
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(
            query_escape("person.000001@bench.example"),
            "person.000001%40bench.example"
        );
        assert_eq!(query_escape("a+b%c"), "a%2Bb%25c");
    }

    #[test]
    fn latency_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let l = Latency::of(&values).unwrap();
        assert_eq!(l.n, 100);
        assert!((l.median - 50.5).abs() < 1e-9);
        assert!((l.p90 - 90.1).abs() < 1e-9);
        assert!((l.p99 - 99.01).abs() < 1e-9);
        assert!((l.mean - 50.5).abs() < 1e-9);
        assert_eq!(l.max, 100.0);
        assert_eq!(Latency::of(&[]), None);
        assert_eq!(Latency::of(&[2.0]).unwrap().p99, 2.0);
    }

    #[test]
    fn purged_count_is_parsed() {
        assert_eq!(parse_purged("purged 10000 people\n"), Some(10_000));
        assert_eq!(parse_purged("note\npurged 0 people\n"), Some(0));
        assert_eq!(parse_purged("purged person abc\n"), None);
        assert_eq!(parse_purged(""), None);
    }

    #[test]
    fn db_size_of_missing_files_is_zero() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(DbSize::of(dir.path()), DbSize::default());
        std::fs::write(dir.path().join("mamori.db"), vec![0u8; 1024 * 1024]).unwrap();
        std::fs::write(dir.path().join("mamori.db-wal"), vec![0u8; 512 * 1024]).unwrap();
        let s = DbSize::of(dir.path());
        assert_eq!((s.db, s.wal), (1024 * 1024, 512 * 1024));
        assert!((s.total_mib() - 1.5).abs() < 1e-9);
    }

    fn figures(purge_wall: Duration, purged: u64, median: f64) -> Figures {
        let lat = |median: f64| Latency {
            n: 1000,
            median,
            p90: median * 1.5,
            p99: median * 2.0,
            mean: median * 1.1,
            max: median * 5.0,
        };
        Figures {
            plan: Plan {
                people: 100_000,
                batch: 10_000,
                lookups: 1000,
                pages: 200,
            },
            import_requests: 10,
            import_wall: Duration::from_secs(20),
            import_slowest: Duration::from_secs(3),
            import_cpu: Duration::from_secs(10),
            lookup: lat(median),
            lookup_wall: Duration::from_millis(600),
            lookup_cpu: Duration::from_millis(400),
            page: Latency { n: 200, ..lat(2.0) },
            page_wall: Duration::from_millis(500),
            page_cpu: Duration::from_millis(300),
            paged_people: 20_000,
            purge_wall,
            purged,
            baseline_wall: Duration::from_millis(500),
            remaining: 90_000,
            db_loaded: DbSize {
                db: 50 << 20,
                wal: 10 << 20,
            },
            db_purged: DbSize {
                db: 55 << 20,
                wal: 0,
            },
            memory_loaded: Memory {
                rss_kib: 40 << 10,
                peak_kib: 80 << 10,
            },
            tick_ms: 10.0,
        }
    }

    #[test]
    fn report_judges_targets() {
        let r = report(&figures(Duration::from_secs(3), 10_000, 0.5));
        assert!(r.contains("5000 people/s"), "{r}");
        assert!(r.contains("0.100 ms"), "{r}");
        let lookup_line = r.lines().find(|l| l.starts_with("lookup")).unwrap();
        assert!(lookup_line.ends_with("met"), "{lookup_line}");
        assert!(lookup_line.contains("0.400 ms"), "{lookup_line}");
        let purge_line = r.lines().find(|l| l.starts_with("purge --due (")).unwrap();
        assert!(purge_line.ends_with("met"), "{purge_line}");
        assert!(purge_line.contains("0.300 ms/person"), "{purge_line}");
        let only = r.lines().find(|l| l.starts_with("purge itself")).unwrap();
        assert!(only.contains("2.50 s"), "{only}");
        assert!(
            r.contains("60.0 MiB (mamori.db 50.0 MiB + -wal 10.0 MiB)"),
            "{r}"
        );
        assert!(r.contains("p99 ≤ 1 ms: yes"), "{r}");

        let slow = report(&figures(Duration::from_millis(10_300), 10_000, 1.5));
        let lookup_line = slow.lines().find(|l| l.starts_with("lookup")).unwrap();
        assert!(lookup_line.ends_with("missed"), "{lookup_line}");
        let purge_line = slow
            .lines()
            .find(|l| l.starts_with("purge --due ("))
            .unwrap();
        assert!(purge_line.ends_with("missed"), "{purge_line}");
        let only = slow
            .lines()
            .find(|l| l.starts_with("purge itself"))
            .unwrap();
        assert!(only.ends_with("met"), "{only}");

        let small = report(&figures(Duration::from_secs(1), 10, 0.5));
        assert!(small.contains("not judged"), "{small}");
    }

    #[test]
    fn purge_only_never_negative() {
        assert_eq!(
            purge_only(Duration::from_secs(3), Duration::from_secs(1)),
            Duration::from_secs(2)
        );
        assert_eq!(
            purge_only(Duration::from_secs(1), Duration::from_secs(2)),
            Duration::ZERO
        );
    }
}
