//! The `--audit` measurements: append phases through the store, the
//! fixture, `mamori audit verify`, and the breach-scope report through the
//! CLI and the API.

use super::fixture::{rfc3339, windows, write_fixture, Expected, Fixture, Window};
use super::Plan;
use crate::people::{DbSize, Latency};
use crate::procfs;
use crate::server::{self, Server};
use anyhow::{anyhow, bail, Context};
use mamori_core::audit::chain::ChainWriter;
use mamori_domain::AuditEvent;
use mamori_ports::AuditStore;
use mamori_store::SqliteStore;
use serde_json::Value;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

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
    /// With --postgres: the move of the installation onto PostgreSQL,
    /// before verify and the breach-scope reports.
    pub migrated: Option<crate::pg::Migrated>,
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
    // The server's path: the store reads the chain's end under its write
    // lock and links the records with the service layer's hash.
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

    // 1. The data directory, by the real server.
    eprintln!("creating the data directory with `mamori serve`...");
    let server = Server::start(server_bin, work_dir).await?;
    let token = server.token.clone();
    let data_dir: PathBuf = server.data_dir.clone();
    drop(server);

    // 2. and 3. Append phases and the fixture.
    let log = build_log(&data_dir, &fx, plan).await?;

    // With --postgres: everything from here on runs on PostgreSQL.
    let migrated = match crate::pg::url() {
        Some(_) => Some(crate::pg::migrate(server_bin, &data_dir)?),
        None => None,
    };

    // 4. Checkpoint, then verify.
    let (verified, checkpoints, verify_wall) = verify(server_bin, &data_dir, plan).await?;

    // 5. Breach scope, CLI (server stopped), then API.
    let wins = windows(&fx);
    let mut queries = breach_scope_cli(server_bin, &data_dir, &fx, &wins, plan.runs).await?;
    eprintln!("restarting `mamori serve` for the API...");
    let server = Server::restart(server_bin, work_dir, &token, "server-api.log").await?;
    queries.extend(breach_scope_api(&server, &fx, &wins, plan.runs).await?);
    server.check_alive()?;
    drop(server);

    Ok(Figures {
        plan,
        span: (fx.start, fx.end),
        appends: log.appends,
        fixture: log.fixture,
        verified,
        checkpoints,
        verify_wall,
        queries,
        db: log.db,
        migrated,
    })
}

/// What building the log measured.
struct Log {
    /// The append phases.
    appends: Vec<AppendFigures>,
    /// Records written as fixture, and how long that took.
    fixture: (u64, Duration),
    /// Database after the fixture.
    db: DbSize,
}

/// Builds the log in `data_dir`: the first append phase on the fresh log,
/// the fixture, then the append phases on the full log.
async fn build_log(data_dir: &Path, fx: &Fixture, plan: Plan) -> anyhow::Result<Log> {
    let [first, bulk, second, third] = plan.parts();
    let db = data_dir.join("mamori.db");

    // 2. Append rate through the store, on the fresh log.
    let store = SqliteStore::open(&db)
        .await
        .map_err(|e| anyhow!("cannot open {}: {e}", db.display()))?;
    let mut appends =
        vec![append_phase(&store, fx, "append, 1 task, fresh log".into(), first, 1).await?];
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
    appends.push(append_phase(&store, fx, "append, 1 task, full log".into(), second, 1).await?);
    appends.push(
        append_phase(
            &store,
            fx,
            format!("append, {} tasks, full log", plan.tasks),
            third,
            plan.tasks,
        )
        .await?,
    );
    store.close().await;
    Ok(Log {
        appends,
        fixture,
        db: DbSize::of(data_dir),
    })
}

/// Signs a checkpoint, then runs `mamori audit verify`: the records and
/// checkpoints it verified, and its wall time.
async fn verify(
    server_bin: &Path,
    data_dir: &Path,
    plan: Plan,
) -> anyhow::Result<(u64, u64, Duration)> {
    let mut args = vec!["audit".to_owned(), "checkpoint".to_owned()];
    args.extend(data_arg(data_dir));
    run_cli(server_bin, &args).await?;
    let mut args = vec!["audit".to_owned(), "verify".to_owned()];
    args.extend(data_arg(data_dir));
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
    Ok((verified, checkpoints, verify_wall))
}

/// The breach-scope report for each window through the CLI (the server
/// stopped), `runs` times each, every answer checked.
async fn breach_scope_cli(
    server_bin: &Path,
    data_dir: &Path,
    fx: &Fixture,
    wins: &[Window],
    runs_each: usize,
) -> anyhow::Result<Vec<QueryFigures>> {
    let mut queries = Vec::new();
    for w in wins {
        let expected = fx.expected(w.from, w.to, w.actor);
        let mut args = vec!["audit".to_owned(), "breach-scope".to_owned()];
        args.extend(data_arg(data_dir));
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
        for _ in 0..runs_each {
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
    Ok(queries)
}

/// The breach-scope report for each window through the API of the running
/// `server`, `runs` times each, every answer checked.
async fn breach_scope_api(
    server: &Server,
    fx: &Fixture,
    wins: &[Window],
    runs_each: usize,
) -> anyhow::Result<Vec<QueryFigures>> {
    let ticks_per_s = procfs::clock_ticks_per_second();
    let mut queries = Vec::new();
    for w in wins {
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
        for _ in 0..runs_each {
            let (wall, len) = api_query(server, &path, &expected, w).await?;
            answer_bytes = len;
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
    Ok(queries)
}

/// One timed `GET path` of the breach-scope report, its answer checked:
/// the wall time until the whole answer was read, and its size.
async fn api_query(
    server: &Server,
    path: &str,
    expected: &Expected,
    w: &Window,
) -> anyhow::Result<(Duration, usize)> {
    let start = Instant::now();
    let r = server
        .http
        .get(server.admin_url(path))
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
    Ok((wall, body.len()))
}
