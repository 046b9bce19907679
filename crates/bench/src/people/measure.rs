//! The `--people` measurements against a running server: import, lookups
//! by e-mail, pages of the pseudonymous list, the purge with the CLI, and
//! the check of the result.

use super::data::{
    batches, csv, departed_count, email, is_departed, parse_purged, query_escape, sample,
};
use super::{DbSize, Figures, Latency, Plan, COUNT_PAGE, LOOKUP_SEED, PAGE_SIZE, WARMUP_LOOKUPS};
use crate::procfs;
use crate::server::{self, Server};
use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;
use std::time::{Duration, Instant};

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

    // 1. Import.
    let import = import(server, plan, ticks_per_s).await?;
    let db_loaded = DbSize::of(&server.data_dir);
    let memory_loaded = procfs::memory(server.pid())?;

    // 2. Lookups by e-mail, one at a time on the admin client's connection.
    let lookups = lookups(server, plan, ticks_per_s).await?;

    // 3. Pages of 100, walking `next_after` from the start.
    let pages = pages(server, plan, ticks_per_s).await?;
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
    let remaining = check_result(server, n).await?;

    Ok(Figures {
        plan,
        import_requests: batches(n, plan.batch).len(),
        import_wall: import.wall,
        import_slowest: import.slowest,
        import_cpu: import.cpu,
        lookup: lookups.latency,
        lookup_wall: lookups.wall,
        lookup_cpu: lookups.cpu,
        page: pages.latency,
        page_wall: pages.wall,
        page_cpu: pages.cpu,
        paged_people: pages.people,
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

/// What the import measured.
struct Import {
    /// Wall time of all import requests.
    wall: Duration,
    /// The slowest import request.
    slowest: Duration,
    /// Server CPU during the import.
    cpu: Duration,
}

/// Imports the plan's people over the API, in requests of `plan.batch`
/// rows; the bodies are built before the clock starts.
async fn import(server: &Server, plan: Plan, ticks_per_s: u64) -> anyhow::Result<Import> {
    let n = plan.people;
    let departed = departed_count(n);
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
    let mut wall = Duration::ZERO;
    let mut slowest = Duration::ZERO;
    for (k, (range, body)) in bodies.into_iter().enumerate() {
        let took = import_batch(server, &url, range.clone(), body).await?;
        wall += took;
        slowest = slowest.max(took);
        if (k + 1) % 5 == 0 {
            eprintln!("  imported {}/{n}", range.end);
        }
    }
    let cpu = cpu_since(server, cpu_before, ticks_per_s)?;
    server.check_alive()?;
    Ok(Import { wall, slowest, cpu })
}

/// One timed import request of the people `range`; fails unless all of
/// them were imported.
async fn import_batch(
    server: &Server,
    url: &str,
    range: Range<usize>,
    body: String,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let r = server
        .http
        .post(url)
        .bearer_auth(&server.token)
        .header("Content-Type", "text/csv")
        .body(body)
        .send()
        .await
        .context("POST /api/v1/people/import")?;
    let status = r.status().as_u16();
    let text = r.text().await.context("import answer body")?;
    let took = start.elapsed();
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
    Ok(took)
}

/// What a series of timed reads measured.
struct Reads {
    /// Their latencies.
    latency: Latency,
    /// Wall time of all of them.
    wall: Duration,
    /// Server CPU during them.
    cpu: Duration,
    /// People they returned.
    people: usize,
}

/// Random existing people looked up by e-mail, after a few untimed ones.
async fn lookups(server: &Server, plan: Plan, ticks_per_s: u64) -> anyhow::Result<Reads> {
    eprintln!(
        "{} lookups by e-mail ({WARMUP_LOOKUPS} untimed first)...",
        plan.lookups
    );
    let picks = sample(plan.people, WARMUP_LOOKUPS + plan.lookups, LOOKUP_SEED);
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
    let wall = batch_start.elapsed();
    let cpu = cpu_since(server, cpu_before, ticks_per_s)?;
    let latency = Latency::of(&lookup_ms).ok_or_else(|| anyhow!("no lookups timed"))?;
    Ok(Reads {
        latency,
        wall,
        cpu,
        people: timed.len(),
    })
}

/// Up to `plan.pages` pages of [`PAGE_SIZE`], walking `next_after` from
/// the start.
async fn pages(server: &Server, plan: Plan, ticks_per_s: u64) -> anyhow::Result<Reads> {
    eprintln!("{} pages of {PAGE_SIZE}...", plan.pages);
    let mut page_ms = Vec::with_capacity(plan.pages);
    let mut after: Option<String> = None;
    let mut people = 0;
    let cpu_before = procfs::cpu_ticks(server.pid())?;
    let batch_start = Instant::now();
    for _ in 0..plan.pages {
        let start = Instant::now();
        let (got, next) = page(server, PAGE_SIZE, after.as_deref()).await?;
        page_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        people += got;
        after = next;
        if after.is_none() {
            break;
        }
    }
    let wall = batch_start.elapsed();
    let cpu = cpu_since(server, cpu_before, ticks_per_s)?;
    let latency = Latency::of(&page_ms).ok_or_else(|| anyhow!("no pages timed"))?;
    Ok(Reads {
        latency,
        wall,
        cpu,
        people,
    })
}

/// Checks that the server sees the purge: a departed person is gone, an
/// active one is there, and the list holds exactly the people left, whose
/// number it returns.
async fn check_result(server: &Server, n: usize) -> anyhow::Result<usize> {
    let departed = departed_count(n);
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
    Ok(remaining)
}
