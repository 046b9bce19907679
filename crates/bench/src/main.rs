//! `mamori-bench`: measures a real `mamori serve` process.
//!
//! It starts the server as a child process on two free loopback ports,
//! enrolls N simulated devices (`mamori-sim`) concurrently, queues one
//! DeviceInformation command to all of them in one API call, lets every
//! device fetch and answer it, then has every device poll idle. For each
//! phase it prints the wall time, the server's CPU time (`utime + stime` of
//! all its threads from `/proc/PID/stat`) in total and per device, and the
//! server's RSS (`/proc/PID/status`), next to the targets.
//!
//! The simulated devices run in this process and compete with the server
//! for the CPUs (each generates an RSA-2048 key during enrollment), so wall
//! times depend on the client too; the server CPU figures do not.
//!
//! With `--login-timing` it measures something else instead: whether a
//! failed login for an unknown administrator name takes as long as one for
//! a real account (see [`login_timing`]).
//!
//! With `--people N` it measures the people directory instead: import of N
//! synthetic people, lookups by e-mail, pages of 100, and the purge of the
//! departed tenth with `mamori people purge --due` (see [`people`]).
//!
//! With `--audit N` it measures the audit log instead: the append rate
//! through the store, `mamori audit verify` over N chained records, and
//! the breach-scope report over them through the CLI and the API (see
//! [`audit`]).
//!
//! With `--reconcile N` it measures policy reconciliation instead: N
//! enrolled devices (a fixture), 5 policies assigned to a dynamic group of
//! all of them, `POST /api/v1/reconcile` until it queues nothing: commands
//! queued per second, server CPU and RSS (see [`reconcile`]).

mod audit;
mod login_timing;
mod people;
mod procfs;
mod reconcile;
mod report;
mod server;

use anyhow::{bail, Context};
use clap::Parser;
use futures::StreamExt as _;
use mamori_sim::{CommandStatus, DeviceKind, SimDevice, SimOptions};
use procfs::CpuSample;
use report::Row;
use server::Server;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Server CPU target per enrollment (SCEP + Authenticate + TokenUpdate), ms.
const ENROLL_TARGET_MS: f64 = 5.0;
/// Server CPU target per command round trip, ms.
const COMMAND_TARGET_MS: f64 = 0.5;
/// Server CPU target per idle poll, ms.
const IDLE_TARGET_MS: f64 = 0.2;
/// NanoMDM + micromdm/scep, 1,000 devices, 2 cores (reference figures given
/// with the issue, not measured here), ms of server CPU per device.
const NANOMDM_ENROLL_MS: f64 = 18.0;
const NANOMDM_COMMAND_MS: f64 = 3.6;
const NANOMDM_IDLE_MS: f64 = 0.6;

/// After a phase, wait this long before reading /proc so that the server
/// finishes tearing down the phase's connections (counted to the phase).
const SETTLE: Duration = Duration::from_millis(300);

#[derive(Debug, Parser)]
#[command(
    name = "mamori-bench",
    version,
    about = "Benchmark a real `mamori serve` process with N simulated devices",
    long_about = "Starts `SERVER_BIN serve` on two free loopback ports (RUST_LOG=warn), \
        enrolls N simulated devices concurrently (SCEP + Authenticate + TokenUpdate), \
        queues one DeviceInformation command to all of them in one API call (?push=false), \
        has every device connect, fetch and answer it, then has every device poll idle. \
        Prints per phase: wall time, the server's CPU time (utime+stime from /proc/PID/stat) \
        in total and per device, and the server's RSS (VmRSS), next to the targets. \
        Exits non-zero only on errors, not on missed targets. \
        With --login-timing: compares failed logins for real accounts (wrong password) with \
        logins for unknown names instead (latency on the client, server CPU per attempt). \
        With --people N: the people directory instead (server started with \
        --people-retention-days 0): imports N synthetic people (every 10th departed) over the \
        API, times lookups by e-mail and pages of 100, then purges the departed ones with \
        `SERVER_BIN people purge --due` on the running server's data directory. \
        With --audit N: the audit log instead: append rate through the store \
        (ChainWriter::append on the data directory's SqliteStore), then a chained \
        N-record log, `SERVER_BIN audit verify` over it, and the breach-scope report for \
        1 day, 30 days, 365 days and one actor over 365 days through \
        `SERVER_BIN audit breach-scope` and GET /api/v1/reports/breach-scope. \
        With --reconcile N: policy reconciliation instead: N enrolled devices written into \
        the data directory, 5 policies assigned to a dynamic group of every device, then \
        POST /api/v1/reconcile until a pass queues nothing (commands queued per second, \
        server CPU and RSS per pass) and passes over the converged state."
)]
struct Args {
    /// The `mamori` server binary to benchmark (e.g. target/release/mamori)
    #[arg(long, value_name = "PATH")]
    server_bin: PathBuf,
    /// Simulated devices
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    devices: u32,
    /// Devices talking to the server at the same time
    #[arg(long, value_name = "C", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: u32,
    /// Idle polls per device in the last phase
    #[arg(long, value_name = "K", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    idle_polls: u32,
    /// Keep the server's data directory and log in DIR (must be empty or
    /// absent) instead of a temporary directory that is removed at the end
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Keep each device's TLS connection open across phases (HTTP
    /// keep-alive). Default: like a real device woken by a push, each device
    /// opens a new TLS connection for each session and closes it afterwards
    /// (resuming its previous TLS session, as devices do)
    #[arg(long)]
    keep_alive: bool,
    /// Devices do not resume TLS sessions: every new connection is a full
    /// handshake (the server's worst case)
    #[arg(long)]
    no_tls_resumption: bool,
    /// Instead of the device benchmark: time failed logins for real
    /// administrator accounts (wrong password) against logins for names that
    /// match no account, alternately, one at a time, each from a loopback
    /// source address of its own group of 8 (127.0.0.2, ...) so that no
    /// throttling kicks in
    #[arg(long, conflicts_with_all = ["devices", "concurrency", "idle_polls", "keep_alive", "no_tls_resumption"])]
    login_timing: bool,
    /// --login-timing: real accounts to create; each gets 2 wrong passwords,
    /// and twice as many unknown names are tried once each
    #[arg(long, value_name = "K", default_value_t = 40, requires = "login_timing",
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    login_accounts: u32,
    /// Instead of the device benchmark: the people directory. Starts the
    /// server with --people-retention-days 0, imports N synthetic people
    /// over the API (POST /api/v1/people/import, CSV; every 10th departed),
    /// times lookups by e-mail one at a time, walks the list a page of 100
    /// at a time, then runs `SERVER_BIN people purge --due --retention-days
    /// 0` on the running server's data directory (and once more with
    /// nothing due, as a baseline) and checks the result over the API.
    /// Targets: lookup ≤ 1 ms, purge of 10,000 ≤ 10 s
    #[arg(long, value_name = "N",
          conflicts_with_all = ["devices", "concurrency", "idle_polls", "keep_alive", "no_tls_resumption", "login_timing"],
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    people: Option<u32>,
    /// --people: rows per import request (the server takes at most 200,000
    /// and 64 MiB per request)
    #[arg(long, value_name = "ROWS", default_value_t = 10_000, requires = "people",
          value_parser = clap::value_parser!(u32).range(1..=200_000))]
    people_batch: u32,
    /// --people: timed lookups by e-mail (random existing people, after 20
    /// untimed ones)
    #[arg(long, value_name = "K", default_value_t = 1000, requires = "people",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    people_lookups: u32,
    /// --people: timed pages of 100 (fewer if the list ends first)
    #[arg(long, value_name = "P", default_value_t = 200, requires = "people",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    people_pages: u32,
    /// Instead of the device benchmark: the audit log with N records
    /// (default 10,000,000). Times `ChainWriter::append` on the data
    /// directory's SqliteStore (records/s), writes the rest of a chained
    /// N-record log (10 % people.read over 100,000 people, 300 actors, 365
    /// days), then times `SERVER_BIN audit verify` and the breach-scope
    /// report (1 day, 30 days, 365 days, one actor) through the CLI and the
    /// API. Target: breach-scope under 2 s. Needs about 270 bytes of disk
    /// per record in the temporary directory (2.6 GiB for 10,000,000).
    /// Build the benchmark and SERVER_BIN from the same tree
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "10000000",
          conflicts_with_all = ["devices", "concurrency", "idle_polls", "keep_alive", "no_tls_resumption", "login_timing", "people"],
          value_parser = clap::value_parser!(u64).range(8..=200_000_000))]
    audit: Option<u64>,
    /// --audit: records appended through the store per timed append phase
    /// (three phases; at most N/4 each)
    #[arg(long, value_name = "M", default_value_t = 100_000, requires = "audit",
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    audit_append: u64,
    /// --audit: tasks appending at once in the concurrent append phase
    #[arg(long, value_name = "T", default_value_t = 16, requires = "audit",
          value_parser = clap::value_parser!(u32).range(2..=1_000))]
    audit_tasks: u32,
    /// --audit: runs of each breach-scope query (CLI and API)
    #[arg(long, value_name = "R", default_value_t = 3, requires = "audit",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    audit_runs: u32,
    /// Instead of the device benchmark: policy reconciliation from scratch
    /// over N enrolled devices (default 10,000). Writes N enrolled devices
    /// (with push tokens) into a data directory the server created, starts
    /// the server with APNs pointed at an in-process stand-in, creates 5
    /// policies (passcode, restrictions, 2 Wi-Fi with passwords, IKEv2 VPN
    /// with a shared secret) and a dynamic group of every device, then calls
    /// POST /api/v1/reconcile (5,000 commands at most per pass) until it
    /// queues nothing, and 3 more times. Target: ≥ 5,000 commands queued/s
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "10000",
          conflicts_with_all = ["devices", "concurrency", "idle_polls", "keep_alive", "no_tls_resumption", "login_timing", "people", "audit"],
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    reconcile: Option<u32>,
}

/// Where the server's data and log live for the run.
enum WorkDir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl WorkDir {
    fn new(keep: Option<&PathBuf>) -> anyhow::Result<Self> {
        match keep {
            None => Ok(Self::Temp(
                tempfile::Builder::new()
                    .prefix("mamori-bench-")
                    .tempdir()
                    .context("cannot create a temporary directory")?,
            )),
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                if std::fs::read_dir(dir)?.next().is_some() {
                    bail!("--keep {}: the directory is not empty", dir.display());
                }
                Ok(Self::Kept(std::fs::canonicalize(dir)?))
            }
        }
    }

    fn path(&self) -> &std::path::Path {
        match self {
            Self::Temp(t) => t.path(),
            Self::Kept(p) => p,
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // reqwest needs a process-wide rustls provider for clients that are not
    // preconfigured; the clients that talk to the server bring their own.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let result = tokio::select! {
        r = async {
            if args.login_timing {
                run_login_timing(&args).await
            } else if let Some(n) = args.people {
                run_people(&args, n as usize).await
            } else if let Some(n) = args.audit {
                run_audit(&args, n).await
            } else if let Some(n) = args.reconcile {
                run_reconcile(&args, n as usize).await
            } else {
                run(&args).await
            }
        } => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    // `run` has returned (or been dropped): the server is killed and the
    // temporary directory removed by now.
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mamori-bench: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs `f` for every device, at most `concurrency` at a time, each on its
/// own task; returns the devices (in completion order) and the results.
async fn run_phase<T, F, Fut>(
    name: &str,
    devices: Vec<SimDevice>,
    concurrency: usize,
    f: F,
) -> anyhow::Result<(Vec<SimDevice>, Vec<T>)>
where
    F: Fn(SimDevice) -> Fut,
    Fut: Future<Output = anyhow::Result<(SimDevice, T)>> + Send + 'static,
    T: Send + 'static,
{
    let n = devices.len();
    let step = (n / 10).max(1);
    let mut done_devices = Vec::with_capacity(n);
    let mut results = Vec::with_capacity(n);
    let mut tasks = futures::stream::iter(devices.into_iter().map(|d| tokio::spawn(f(d))))
        .buffer_unordered(concurrency.max(1));
    while let Some(joined) = tasks.next().await {
        let (dev, r) = joined.context("device task panicked")??;
        done_devices.push(dev);
        results.push(r);
        let k = done_devices.len();
        if k % step == 0 && k < n {
            eprintln!("  {name}: {k}/{n}");
        }
    }
    Ok((done_devices, results))
}

/// Measures `phase` (wall time, server and client CPU, server memory after).
async fn measure<T, Fut>(
    server: &Server,
    name: &str,
    ops: usize,
    target_ms: Option<f64>,
    nanomdm_ms: Option<f64>,
    phase: Fut,
) -> anyhow::Result<(Row, T)>
where
    Fut: Future<Output = anyhow::Result<T>>,
{
    server.check_alive()?;
    eprintln!("{name}...");
    let before = CpuSample::take(server.pid())?;
    let start = Instant::now();
    let out = phase.await.with_context(|| format!("phase {name:?}"))?;
    let wall = start.elapsed();
    tokio::time::sleep(SETTLE).await;
    server.check_alive()?;
    let after = CpuSample::take(server.pid())?;
    let memory = procfs::memory(server.pid())?;
    let row = Row {
        phase: name.to_owned(),
        ops,
        wall,
        server_ticks: after.server.saturating_sub(before.server),
        client_ticks: after.client.saturating_sub(before.client),
        memory,
        target_ms,
        nanomdm_ms,
    };
    Ok((row, out))
}

/// Drops the device's TLS connections (its HTTP clients): the next request
/// opens a new one. Reloading the profile does that and keeps the
/// credentials. (With the server's profiles, `SignMessage` is set, so the
/// device authenticates with the `Mdm-Signature` header over a connection
/// without client certificate.)
fn disconnect(dev: &mut SimDevice, profile: &[u8], tls_ca: &[u8]) -> anyhow::Result<()> {
    dev.load_profile(profile, Some(tls_ca))?;
    Ok(())
}

async fn run_login_timing(args: &Args) -> anyhow::Result<()> {
    let server_bin = std::fs::canonicalize(&args.server_bin)
        .with_context(|| format!("--server-bin {}", args.server_bin.display()))?;
    let work = WorkDir::new(args.keep.as_ref())?;
    eprintln!(
        "starting {} serve (RUST_LOG={}) in {}",
        server_bin.display(),
        server::SERVER_RUST_LOG,
        work.path().display()
    );
    let server = Server::start(&server_bin, work.path()).await?;
    let report = login_timing::measure(&server, &server_bin, args.login_accounts as usize).await?;
    println!(
        "mamori-bench --login-timing: failed administrator logins, real account vs unknown name"
    );
    println!(
        "command:  {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    println!("machine:  {}", procfs::machine_description());
    println!(
        "server:   {} (RUST_LOG={}; POST https://{}/api/v1/auth/login; log in {})",
        server_bin.display(),
        server::SERVER_RUST_LOG,
        server.admin_addr,
        server.log_path.display()
    );
    print!("{report}");
    if let WorkDir::Kept(dir) = &work {
        println!("data directory and server log kept in {}", dir.display());
    }
    drop(server);
    Ok(())
}

async fn run_people(args: &Args, n: usize) -> anyhow::Result<()> {
    let server_bin = std::fs::canonicalize(&args.server_bin)
        .with_context(|| format!("--server-bin {}", args.server_bin.display()))?;
    let work = WorkDir::new(args.keep.as_ref())?;
    eprintln!(
        "starting {} serve {} (RUST_LOG={}) in {}",
        server_bin.display(),
        people::SERVE_ARGS.join(" "),
        server::SERVER_RUST_LOG,
        work.path().display()
    );
    let server = Server::start_with(&server_bin, work.path(), &people::SERVE_ARGS).await?;
    let plan = people::Plan {
        people: n,
        batch: args.people_batch as usize,
        lookups: args.people_lookups as usize,
        pages: args.people_pages as usize,
    };
    let figures = people::measure(&server, &server_bin, plan).await?;
    println!(
        "mamori-bench --people: {n} synthetic people ({} departed), {} lookups by e-mail, \
         up to {} pages of {}",
        people::departed_count(n),
        plan.lookups,
        plan.pages,
        people::PAGE_SIZE
    );
    println!(
        "command:  {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    println!("machine:  {}", procfs::machine_description());
    println!(
        "server:   {} serve {} (RUST_LOG={}; admin listener {}; log in {})",
        server_bin.display(),
        people::SERVE_ARGS.join(" "),
        server::SERVER_RUST_LOG,
        server.admin_addr,
        server.log_path.display()
    );
    println!(
        "purge:    {} people purge --due --retention-days 0 --data-dir {} (while the server runs)",
        server_bin.display(),
        server.data_dir.display()
    );
    println!();
    print!("{}", people::report(&figures));
    if let WorkDir::Kept(dir) = &work {
        println!("data directory and server log kept in {}", dir.display());
    }
    drop(server);
    Ok(())
}

async fn run_audit(args: &Args, n: u64) -> anyhow::Result<()> {
    let server_bin = std::fs::canonicalize(&args.server_bin)
        .with_context(|| format!("--server-bin {}", args.server_bin.display()))?;
    let work = WorkDir::new(args.keep.as_ref())?;
    let plan = audit::Plan {
        records: n,
        append: args.audit_append,
        tasks: args.audit_tasks as usize,
        runs: args.audit_runs as usize,
    };
    eprintln!(
        "audit log benchmark with {n} records in {}",
        work.path().display()
    );
    let figures = audit::measure(&server_bin, work.path(), plan).await?;
    println!(
        "mamori-bench --audit: {n} chained audit records; append rate through the store, \
         `mamori audit verify`, breach-scope over {} days",
        audit::DAYS
    );
    println!(
        "command:  {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    println!("machine:  {}", procfs::machine_description());
    println!(
        "server:   {} (RUST_LOG={}; data directory {})",
        server_bin.display(),
        server::SERVER_RUST_LOG,
        work.path().join("data").display()
    );
    println!();
    print!("{}", audit::report(&figures));
    if let WorkDir::Kept(dir) = &work {
        println!("data directory and server logs kept in {}", dir.display());
    }
    Ok(())
}

async fn run_reconcile(args: &Args, n: usize) -> anyhow::Result<()> {
    let server_bin = std::fs::canonicalize(&args.server_bin)
        .with_context(|| format!("--server-bin {}", args.server_bin.display()))?;
    let work = WorkDir::new(args.keep.as_ref())?;
    eprintln!(
        "policy reconciliation benchmark with {n} devices in {}",
        work.path().display()
    );
    let figures = reconcile::measure(&server_bin, work.path(), n).await?;
    println!(
        "mamori-bench --reconcile: {n} enrolled devices × {} policies (one dynamic group of \
         every device), reconciled from scratch with POST /api/v1/reconcile ({} commands at \
         most per pass)",
        reconcile::POLICIES,
        reconcile::BATCH
    );
    println!(
        "command:  {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    println!("machine:  {}", procfs::machine_description());
    println!(
        "server:   {} (RUST_LOG={}; APNs: in-process stand-in answering 200; data directory {})",
        server_bin.display(),
        server::SERVER_RUST_LOG,
        work.path().join("data").display()
    );
    println!();
    print!("{}", reconcile::report(&figures));
    if let WorkDir::Kept(dir) = &work {
        println!("data directory and server logs kept in {}", dir.display());
    }
    Ok(())
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let n = args.devices as usize;
    let concurrency = args.concurrency as usize;
    let idle_polls = args.idle_polls as usize;
    let keep_alive = args.keep_alive;
    let server_bin = std::fs::canonicalize(&args.server_bin)
        .with_context(|| format!("--server-bin {}", args.server_bin.display()))?;
    let ticks_per_s = procfs::clock_ticks_per_second();

    // Declared before the server so that it is dropped (removed) after the
    // server process is killed.
    let work = WorkDir::new(args.keep.as_ref())?;
    eprintln!(
        "starting {} serve (RUST_LOG={}) in {}",
        server_bin.display(),
        server::SERVER_RUST_LOG,
        work.path().display()
    );
    let server = Server::start(&server_bin, work.path()).await?;
    let profile = Arc::new(server.enrollment_profile(n).await?);
    let tls_ca = Arc::new(server.tls_ca_pem.clone());

    // Idle baseline: what the server burns doing nothing.
    let idle_before = procfs::cpu_ticks(server.pid())?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_ticks = procfs::cpu_ticks(server.pid())?.saturating_sub(idle_before);
    let start_memory = procfs::memory(server.pid())?;

    let devices: Vec<SimDevice> = (0..n)
        .map(|_| {
            SimDevice::new(
                DeviceKind::IPhone,
                SimOptions {
                    tls_resumption: !args.no_tls_resumption,
                    ..SimOptions::default()
                },
            )
        })
        .collect();
    let mut rows = Vec::new();

    // 1. Enrollment: SCEP (GetCACaps, GetCACert, PKIOperation), then
    //    Authenticate and TokenUpdate on a new connection, authenticated with
    //    the new identity.
    let (row, (devices, _)) = measure(
        &server,
        "enroll (SCEP+Auth+TokenUpdate)",
        n,
        Some(ENROLL_TARGET_MS),
        Some(NANOMDM_ENROLL_MS),
        run_phase("enroll", devices, concurrency, |mut d| {
            let (profile, tls_ca) = (Arc::clone(&profile), Arc::clone(&tls_ca));
            async move {
                let udid = d.udid().to_owned();
                async {
                    d.load_profile(&profile, Some(&tls_ca))?;
                    d.scep_enroll().await?;
                    // Loading the profile again drops the SCEP connection
                    // (the credentials stay).
                    d.load_profile(&profile, Some(&tls_ca))?;
                    d.authenticate().await?;
                    d.token_update().await?;
                    if !keep_alive {
                        disconnect(&mut d, &profile, &tls_ca)?;
                    }
                    anyhow::Ok(())
                }
                .await
                .with_context(|| format!("device {udid}"))?;
                Ok((d, ()))
            }
        }),
    )
    .await?;
    rows.push(row);

    // 2. Enqueue one command for all devices in one API call.
    let udids: Vec<String> = devices.iter().map(|d| d.udid().to_owned()).collect();
    let command = serde_json::json!({
        "RequestType": "DeviceInformation",
        "Queries": ["OSVersion", "SerialNumber", "ModelName", "DeviceName"],
    });
    let (enqueue_row, queued) = measure(
        &server,
        "enqueue (1 API call)",
        n,
        None,
        None,
        server.enqueue(&udids, command),
    )
    .await?;
    if queued != n {
        bail!("enqueue queued {queued} commands for {n} devices");
    }

    // 3. Every device connects, gets the command, answers it, and is told
    //    the queue is empty.
    let (rt_row, (devices, _)) = measure(
        &server,
        "round trip (2 connects)",
        n,
        Some(COMMAND_TARGET_MS),
        None,
        run_phase("round trip", devices, concurrency, |mut d| {
            let (profile, tls_ca) = (Arc::clone(&profile), Arc::clone(&tls_ca));
            async move {
                let handled = d
                    .run_queue()
                    .await
                    .with_context(|| format!("device {}", d.udid()))?;
                match handled.as_slice() {
                    [e] if e.request_type == "DeviceInformation"
                        && e.status == CommandStatus::Acknowledged => {}
                    other => bail!(
                        "device {}: expected one DeviceInformation, got {other:?}",
                        d.udid()
                    ),
                }
                if !keep_alive {
                    disconnect(&mut d, &profile, &tls_ca)?;
                }
                Ok((d, ()))
            }
        }),
    )
    .await?;
    let both = Row {
        nanomdm_ms: Some(NANOMDM_COMMAND_MS),
        ..Row::combined(
            "enqueue + round trip",
            &enqueue_row,
            &rt_row,
            Some(COMMAND_TARGET_MS),
        )
    };
    rows.extend([enqueue_row, rt_row, both]);

    // 4. Idle polls: the server has nothing for them.
    let (row, (_devices, _)) = measure(
        &server,
        "idle poll",
        n * idle_polls,
        Some(IDLE_TARGET_MS),
        Some(NANOMDM_IDLE_MS),
        run_phase("idle poll", devices, concurrency, |mut d| {
            let (profile, tls_ca) = (Arc::clone(&profile), Arc::clone(&tls_ca));
            async move {
                for _ in 0..idle_polls {
                    let next = d
                        .connect_idle()
                        .await
                        .with_context(|| format!("device {}", d.udid()))?;
                    if let Some(cmd) = next {
                        bail!(
                            "device {}: idle poll got a command: {}",
                            d.udid(),
                            cmd.request_type
                        );
                    }
                    if !keep_alive {
                        disconnect(&mut d, &profile, &tls_ca)?;
                    }
                }
                Ok((d, ()))
            }
        }),
    )
    .await?;
    rows.push(row);
    let final_memory = procfs::memory(server.pid())?;

    println!(
        "mamori-bench: {n} devices, concurrency {concurrency}, {idle_polls} idle poll(s) per device"
    );
    println!(
        "command:  {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    println!("machine:  {}", procfs::machine_description());
    println!(
        "server:   {} (RUST_LOG={}; device listener {}, admin listener {}; log in {})",
        server_bin.display(),
        server::SERVER_RUST_LOG,
        server.device_addr,
        server.admin_addr,
        server.log_path.display()
    );
    println!(
        "connections: {}",
        match (keep_alive, args.no_tls_resumption) {
            (true, _) => "kept open across phases (HTTP keep-alive)",
            (false, false) => {
                "a new TLS connection per device session, closed afterwards; TLS sessions resumed"
            }
            (false, true) => {
                "a new TLS connection per device session, closed afterwards; full handshake every time"
            }
        }
    );
    println!(
        "server at start: {:.1} MB RSS; idle CPU {:.2} s in 1 s; clock ticks {ticks_per_s}/s (CPU resolution {:.0} ms)",
        start_memory.rss_mib(),
        procfs::ticks_to_duration(idle_ticks, ticks_per_s).as_secs_f64(),
        1000.0 / ticks_per_s as f64
    );
    println!();
    print!("{}", report::table(&rows, ticks_per_s));
    println!();
    println!("{}", report::rss_line(final_memory, n));
    println!(
        "ms/op = server CPU (utime+stime, all threads) / ops. Wall times include the simulated \
         devices, which run in this process on the same CPUs (each generates an RSA-2048 key \
         while enrolling: bench CPU s)."
    );
    println!(
        "* NanoMDM + micromdm/scep, 1,000 devices, 2 cores: reference figures given with the \
         issue (enqueue + connect: 3.6 ms), not measured here."
    );
    if let WorkDir::Kept(dir) = &work {
        println!("data directory and server log kept in {}", dir.display());
    }
    drop(server);
    Ok(())
}
