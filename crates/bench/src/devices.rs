//! The device benchmark (the default mode): N simulated devices enroll,
//! get one command and answer it, then poll idle; per phase the server's
//! CPU time and memory next to the targets.

use crate::procfs::{self, CpuSample};
use crate::report::{self, Row};
use crate::server::{self, Server};
use crate::workdir::WorkDir;
use crate::Args;
use anyhow::{bail, Context};
use futures::StreamExt as _;
use mamori_sim::{CommandStatus, DeviceKind, RsaPrivateKey, SimDevice, SimOptions};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Server CPU target per enrollment (SCEP + Authenticate + TokenUpdate), ms.
const ENROLL_TARGET_MS: f64 = 5.0;
/// Server CPU target per command round trip, ms.
const COMMAND_TARGET_MS: f64 = 0.5;
/// Server CPU target per idle poll, ms.
const IDLE_TARGET_MS: f64 = 0.2;
/// NanoMDM v0.9.0 (file storage) + micromdm/scep with a 2,048-bit CA,
/// 1,000 devices driven by an independent simulator, 2 cores, median of 3
/// runs: ms of server CPU per device, as given with issue 14 (not measured
/// by this benchmark). The first figures given (18 / 3.6 / 0.6) came from
/// a 4,096-bit SCEP CA.
const NANOMDM_ENROLL_MS: f64 = 8.3;
const NANOMDM_COMMAND_MS: f64 = 1.2;
const NANOMDM_IDLE_MS: f64 = 0.44;

/// Devices per enqueue call: the most the server takes in one.
const ENQUEUE_BATCH: usize = 50_000;

/// After a phase, wait this long before reading /proc so that the server
/// finishes tearing down the phase's connections (counted to the phase).
const SETTLE: Duration = Duration::from_millis(300);

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

/// Measures `phase` (wall time, the servers' CPU and the client's, the
/// servers' memory after).
async fn measure<T, Fut>(
    servers: &[Server],
    name: &str,
    ops: usize,
    target_ms: Option<f64>,
    nanomdm_ms: Option<f64>,
    phase: Fut,
) -> anyhow::Result<(Row, T)>
where
    Fut: Future<Output = anyhow::Result<T>>,
{
    let pids: Vec<u32> = servers.iter().map(Server::pid).collect();
    check_alive(servers)?;
    eprintln!("{name}...");
    let before = CpuSample::take(&pids)?;
    let start = Instant::now();
    let out = phase.await.with_context(|| format!("phase {name:?}"))?;
    let wall = start.elapsed();
    tokio::time::sleep(SETTLE).await;
    check_alive(servers)?;
    let after = CpuSample::take(&pids)?;
    let memory = total_memory(servers)?;
    let row = Row {
        phase: name.to_owned(),
        ops,
        wall,
        server_ticks: after.server.saturating_sub(before.server),
        client_ticks: after.client.saturating_sub(before.client),
        database_ticks: after
            .database
            .zip(before.database)
            .map(|(a, b)| a.saturating_sub(b)),
        memory,
        target_ms,
        nanomdm_ms,
    };
    Ok((row, out))
}

fn check_alive(servers: &[Server]) -> anyhow::Result<()> {
    servers.iter().try_for_each(Server::check_alive)
}

/// The servers' memory, added up.
fn total_memory(servers: &[Server]) -> anyhow::Result<procfs::Memory> {
    let mut total = procfs::Memory {
        rss_kib: 0,
        peak_kib: 0,
    };
    for s in servers {
        let m = procfs::memory(s.pid())?;
        total.rss_kib += m.rss_kib;
        total.peak_kib += m.peak_kib;
    }
    Ok(total)
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

/// What every device phase shares: the servers, the enrollment profile of
/// each (a device keeps to the server its profile names, as behind a load
/// balancer that hashes the source), the TLS CA the devices load, how the
/// devices talk to the servers, and the key pairs they share, if they do.
struct Fleet<'a> {
    servers: &'a [Server],
    profiles: Vec<Arc<[u8]>>,
    tls_ca: Arc<[u8]>,
    concurrency: usize,
    keep_alive: bool,
    shared_keys: Arc<[RsaPrivateKey]>,
}

impl Fleet<'_> {
    /// The profile of the server `udid` talks to.
    fn profile_for(&self, udid: &str) -> Arc<[u8]> {
        Arc::clone(&self.profiles[pick(udid, self.profiles.len())])
    }

    /// The key pair `udid` enrolls with when keys are shared.
    fn key_for(&self, udid: &str) -> Option<RsaPrivateKey> {
        (!self.shared_keys.is_empty())
            .then(|| self.shared_keys[pick(udid, self.shared_keys.len())].clone())
    }
}

/// A stable choice of one of `n` for a device (FNV-1a of its UDID).
fn pick(udid: &str, n: usize) -> usize {
    let h = udid.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (h % n.max(1) as u64) as usize
}

/// The server's settings for this benchmark: no automatic inventory
/// refresh, whose commands (due 5 minutes after the start) would otherwise
/// mix with the benchmark's own in a run that long.
const SERVE_ARGS: [&str; 2] = ["--inventory-refresh-hours", "0"];

/// The server before any device: idle CPU ticks in one second, and memory.
struct Baseline {
    ticks_per_s: u64,
    idle_ticks: u64,
    memory: procfs::Memory,
}

/// Runs the device benchmark and prints its report.
pub async fn run(args: &Args) -> anyhow::Result<()> {
    let n = args.devices as usize;
    let server_bin = args.server_bin()?;
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
    let mut servers = vec![Server::start_with(&server_bin, work.path(), &SERVE_ARGS).await?];
    for k in 2..=args.servers as usize {
        let next = Server::start_sharing(&server_bin, &servers[0], work.path(), k, &SERVE_ARGS);
        servers.push(next.await?);
    }
    let mut profiles = Vec::new();
    for server in &servers {
        profiles.push(Arc::from(server.enrollment_profile(n).await?));
    }
    let shared_keys = (0..args.shared_keys)
        .map(|_| RsaPrivateKey::generate_2048().context("cannot generate a key pair"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let fleet = Fleet {
        servers: &servers,
        profiles,
        tls_ca: Arc::from(servers[0].tls_ca_pem.clone()),
        concurrency: args.concurrency as usize,
        keep_alive: args.keep_alive,
        shared_keys: Arc::from(shared_keys),
    };

    // Idle baseline: what the servers burn doing nothing.
    let pids: Vec<u32> = servers.iter().map(Server::pid).collect();
    let idle_before = CpuSample::take(&pids)?.server;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline = Baseline {
        ticks_per_s,
        idle_ticks: CpuSample::take(&pids)?.server.saturating_sub(idle_before),
        memory: total_memory(&servers)?,
    };

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
    let (row, devices) = enroll(&fleet, devices).await?;
    rows.push(row);
    pause(args.pause).await;
    let (command_rows, devices) = command_round_trip(&fleet, devices).await?;
    rows.extend(command_rows);
    pause(args.pause).await;
    rows.push(idle_polls(&fleet, devices, args.idle_polls as usize).await?);
    let final_memory = servers
        .iter()
        .map(|s| procfs::memory(s.pid()))
        .collect::<anyhow::Result<Vec<_>>>()?;

    print_report(args, &server_bin, &servers, &baseline, &rows, &final_memory);
    if let WorkDir::Kept(dir) = &work {
        println!("data directory and server log kept in {}", dir.display());
    }
    drop(servers);
    Ok(())
}

/// 1. Enrollment: SCEP (GetCACaps, GetCACert, PKIOperation), then
///    Authenticate and TokenUpdate on a new connection, authenticated with
///    the new identity.
async fn enroll(
    fleet: &Fleet<'_>,
    devices: Vec<SimDevice>,
) -> anyhow::Result<(Row, Vec<SimDevice>)> {
    let n = devices.len();
    let keep_alive = fleet.keep_alive;
    let (row, (devices, _)) = measure(
        fleet.servers,
        "enroll (SCEP+Auth+TokenUpdate)",
        n,
        Some(ENROLL_TARGET_MS),
        Some(NANOMDM_ENROLL_MS),
        run_phase("enroll", devices, fleet.concurrency, |mut d| {
            let (profile, tls_ca) = (fleet.profile_for(d.udid()), Arc::clone(&fleet.tls_ca));
            let key = fleet.key_for(d.udid());
            async move {
                let udid = d.udid().to_owned();
                async {
                    d.load_profile(&profile, Some(&tls_ca))?;
                    match &key {
                        Some(key) => d.scep_enroll_with_key(key).await?,
                        None => d.scep_enroll().await?,
                    }
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
    Ok((row, devices))
}

/// Phases 2 and 3. Enqueue one command for all devices in one API call;
/// then every device connects, gets the command, answers it, and is told
/// the queue is empty. Rows: the enqueue, the round trip, and both
/// together.
async fn command_round_trip(
    fleet: &Fleet<'_>,
    devices: Vec<SimDevice>,
) -> anyhow::Result<(Vec<Row>, Vec<SimDevice>)> {
    let n = devices.len();
    // The API call goes to the first server; with several, most devices
    // fetch the command from another.
    let (server, keep_alive) = (&fleet.servers[0], fleet.keep_alive);
    let udids: Vec<String> = devices.iter().map(|d| d.udid().to_owned()).collect();
    let command = serde_json::json!({
        "RequestType": "DeviceInformation",
        "Queries": ["OSVersion", "SerialNumber", "ModelName", "DeviceName"],
    });
    // One API call takes at most 50,000 devices (the server's cap).
    let calls = udids.chunks(ENQUEUE_BATCH).count();
    let (enqueue_row, queued) = measure(
        fleet.servers,
        &format!(
            "enqueue ({calls} API call{})",
            if calls == 1 { "" } else { "s" }
        ),
        n,
        None,
        None,
        async {
            let mut queued = 0;
            for chunk in udids.chunks(ENQUEUE_BATCH) {
                queued += server.enqueue(chunk, command.clone()).await?;
            }
            anyhow::Ok(queued)
        },
    )
    .await?;
    if queued != n {
        bail!("enqueue queued {queued} commands for {n} devices");
    }

    let (rt_row, (devices, _)) = measure(
        fleet.servers,
        "round trip (2 connects)",
        n,
        Some(COMMAND_TARGET_MS),
        None,
        run_phase("round trip", devices, fleet.concurrency, |mut d| {
            let (profile, tls_ca) = (fleet.profile_for(d.udid()), Arc::clone(&fleet.tls_ca));
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
    Ok((vec![enqueue_row, rt_row, both], devices))
}

/// `--pause`: waits between phases (not counted in any phase).
async fn pause(seconds: u64) {
    if seconds > 0 {
        eprintln!("pausing {seconds} s...");
        tokio::time::sleep(Duration::from_secs(seconds)).await;
    }
}

/// 4. Idle polls: the server has nothing for them.
async fn idle_polls(
    fleet: &Fleet<'_>,
    devices: Vec<SimDevice>,
    idle_polls: usize,
) -> anyhow::Result<Row> {
    let n = devices.len();
    let keep_alive = fleet.keep_alive;
    let (row, (_devices, _)) = measure(
        fleet.servers,
        "idle poll",
        n * idle_polls,
        Some(IDLE_TARGET_MS),
        Some(NANOMDM_IDLE_MS),
        run_phase("idle poll", devices, fleet.concurrency, |mut d| {
            let (profile, tls_ca) = (fleet.profile_for(d.udid()), Arc::clone(&fleet.tls_ca));
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
    Ok(row)
}

/// How the devices connect.
fn connections(args: &Args) -> &'static str {
    match (args.keep_alive, args.no_tls_resumption) {
        (true, _) => "kept open across phases (HTTP keep-alive)",
        (false, false) => {
            "a new TLS connection per device session, closed afterwards; TLS sessions resumed"
        }
        (false, true) => {
            "a new TLS connection per device session, closed afterwards; full handshake every time"
        }
    }
}

/// Prints the run's description, the table and the notes under it.
fn print_report(
    args: &Args,
    server_bin: &std::path::Path,
    servers: &[Server],
    baseline: &Baseline,
    rows: &[Row],
    final_memory: &[procfs::Memory],
) {
    let n = args.devices as usize;
    let ticks_per_s = baseline.ticks_per_s;
    println!(
        "mamori-bench: {n} devices, concurrency {}, {} idle poll(s) per device",
        args.concurrency, args.idle_polls
    );
    report::print_command_and_machine();
    for (k, server) in servers.iter().enumerate() {
        println!(
            "server {}: {} serve {} (RUST_LOG={}; device listener {}, admin listener {}; log in {})",
            k + 1,
            server_bin.display(),
            SERVE_ARGS.join(" "),
            server::SERVER_RUST_LOG,
            server.device_addr,
            server.admin_addr,
            server.log_path.display()
        );
    }
    if servers.len() > 1 {
        println!(
            "{} servers on one PostgreSQL database; each device keeps to one (chosen by a hash \
             of its UDID); the command is queued through server 1. CPU and RSS: the servers' sum",
            servers.len()
        );
    }
    println!("connections: {}", connections(args));
    if args.shared_keys > 0 {
        println!(
            "device key pairs: {} generated before the run and shared (each device still gets \
             its own certificate; the server's work is the same)",
            args.shared_keys
        );
    }
    println!(
        "server at start: {:.1} MB RSS; idle CPU {:.2} s in 1 s; clock ticks {ticks_per_s}/s (CPU resolution {:.0} ms)",
        baseline.memory.rss_mib(),
        procfs::ticks_to_duration(baseline.idle_ticks, ticks_per_s).as_secs_f64(),
        1000.0 / ticks_per_s as f64
    );
    println!();
    print!("{}", report::table(rows, ticks_per_s));
    println!();
    for (k, memory) in final_memory.iter().enumerate() {
        let prefix = if servers.len() > 1 {
            format!("server {}: ", k + 1)
        } else {
            String::new()
        };
        let per_server = n.div_ceil(servers.len().max(1));
        println!("{prefix}{}", report::rss_line(*memory, per_server));
    }
    println!(
        "ms/op = server CPU (utime+stime, all threads) / ops. Wall times include the simulated \
         devices, which run in this process on the same CPUs (unless --shared-keys, each \
         generates an RSA-2048 key while enrolling: bench CPU s)."
    );
    println!(
        "* NanoMDM v0.9.0 + micromdm/scep (2,048-bit CA), 1,000 devices, 2 cores, median of 3: \
         figures given with issue 14 (enqueue + round trip: 1.2 ms), not measured here."
    );
}
