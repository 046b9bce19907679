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
//!
//! With `--console N` it measures the web console instead: server time and
//! weight of each page with N enrolled devices and `--console-people`
//! people (see [`console`]).

mod audit;
mod console;
mod devices;
mod login_timing;
mod people;
mod pg;
mod procfs;
mod reconcile;
mod report;
mod server;
mod workdir;

use anyhow::Context;
use clap::Parser;
use server::Server;
use std::path::{Path, PathBuf};
use workdir::WorkDir;

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
    /// Wait this long before the round trip and before the idle polls, so
    /// that each device's previous request is that long ago, as in a fleet
    /// whose devices check in minutes apart (past the 30 s of the identity
    /// cache and the 60 s between last-seen writes)
    #[arg(long, value_name = "SECONDS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pause: u64,
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
    /// With --postgres: run this many servers on the one database (the
    /// first server's data directory copied to the others, as an operator
    /// adds servers); each device keeps to one of them
    #[arg(long, value_name = "S", default_value_t = 1, requires = "postgres",
          value_parser = clap::value_parser!(u32).range(1..=4))]
    servers: u32,
    /// Devices enroll with K key pairs generated before the run instead of
    /// a new RSA-2048 key each (generating one costs the simulator far more
    /// CPU than the server spends on the whole enrollment, which is the
    /// same either way); 0: a new key per device, as real devices do
    #[arg(long, value_name = "K", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    shared_keys: u32,
    /// Run the server (and the commands the benchmark runs) on PostgreSQL:
    /// a throwaway cluster of Debian's postgresql on a Unix socket,
    /// durable like the SQLite default (fsync and synchronous commit on);
    /// its CPU (every PostgreSQL process) is reported beside the server's.
    /// With the device benchmark and --people; with --audit and
    /// --reconcile, the fixture is written into SQLite as without it, then
    /// the installation is moved with `mamori migrate` (timed) and
    /// everything measured after that runs on PostgreSQL
    #[arg(long, conflicts_with_all = ["console", "login_timing"])]
    postgres: bool,
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
    /// Instead of the device benchmark: the web console with N enrolled
    /// devices (default 10,000) and --console-people people, the five
    /// policies of --reconcile on a group of every device, reconciled: each
    /// page asked for 3 times untimed then 20 times with the owner's token
    /// (wall time, server CPU per request), and its weight with the
    /// stylesheets and scripts it links. Targets: 50 ms, 150 KiB
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "10000",
          conflicts_with_all = ["devices", "concurrency", "idle_polls", "keep_alive", "no_tls_resumption", "login_timing", "people", "audit", "reconcile"],
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    console: Option<u32>,
    /// --console: people imported first
    #[arg(long, value_name = "P", default_value_t = 100_000, requires = "console",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    console_people: u32,
}

impl Args {
    /// `--server-bin`, as an absolute path (printed in every report).
    fn server_bin(&self) -> anyhow::Result<PathBuf> {
        std::fs::canonicalize(&self.server_bin)
            .with_context(|| format!("--server-bin {}", self.server_bin.display()))
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // Kept for the whole run; stopped and removed when dropped.
    let _cluster = if args.postgres {
        let cluster = mamori_testkit::pg::Cluster::start_durable();
        if let Err(e) = cluster.psql("postgres", "CREATE DATABASE mamori") {
            eprintln!("mamori-bench: error: cannot create the database: {e}");
            return std::process::ExitCode::FAILURE;
        }
        pg::set(cluster.url("mamori"));
        // The audit and reconcile benchmarks move to it after writing
        // their fixtures; the others start on it.
        if args.audit.is_none() && args.reconcile.is_none() {
            pg::use_from_now_on();
        }
        if let Some(pid) = cluster.pid() {
            let _ = procfs::DATABASE_PID.set(pid);
        }
        Some(cluster)
    } else {
        None
    };
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
            } else if let Some(n) = args.console {
                run_console(&args, n as usize).await
            } else {
                devices::run(&args).await
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
/// After a benchmark's headline: the command and the machine, the server
/// (with `note` before its data directory), the report, and where the
/// data directory was kept, if it was.
fn print_run(server_bin: &Path, note: &str, work: &WorkDir, report: &str) {
    report::print_command_and_machine();
    println!(
        "server:   {} (RUST_LOG={}; {note}data directory {})",
        server_bin.display(),
        server::SERVER_RUST_LOG,
        work.path().join("data").display()
    );
    println!();
    print!("{report}");
    if let WorkDir::Kept(dir) = work {
        println!("data directory and server logs kept in {}", dir.display());
    }
}

async fn run_login_timing(args: &Args) -> anyhow::Result<()> {
    let server_bin = args.server_bin()?;
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
    report::print_command_and_machine();
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
    let server_bin = args.server_bin()?;
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
    report::print_command_and_machine();
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
    let server_bin = args.server_bin()?;
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
    print_run(&server_bin, "", &work, &audit::report(&figures));
    Ok(())
}

async fn run_reconcile(args: &Args, n: usize) -> anyhow::Result<()> {
    let server_bin = args.server_bin()?;
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
    let apns = "APNs: in-process stand-in answering 200; ";
    print_run(&server_bin, apns, &work, &reconcile::report(&figures));
    Ok(())
}

async fn run_console(args: &Args, n: usize) -> anyhow::Result<()> {
    let server_bin = args.server_bin()?;
    let work = WorkDir::new(args.keep.as_ref())?;
    let people = args.console_people as usize;
    eprintln!(
        "console benchmark with {n} devices and {people} people in {}",
        work.path().display()
    );
    let figures = console::measure(&server_bin, work.path(), n, people).await?;
    println!(
        "mamori-bench --console: {n} enrolled devices, {people} people, 5 policies on a group \
         of every device (reconciled); each page {} times untimed, then {} times on one \
         keep-alive connection with the owner's API token",
        console::WARMUP,
        console::RUNS
    );
    print_run(&server_bin, "", &work, &console::report(&figures));
    Ok(())
}
