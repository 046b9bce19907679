//! `--reconcile N`: policy reconciliation from scratch over N enrolled
//! devices.
//!
//! 1. `mamori serve` starts once on a new data directory, with APNs pointed
//!    at a local stand-in (`mamori-testkit`'s, in this process: it answers
//!    200 to every push); it creates the keys, the database with the real
//!    migrations, an owner account and an API token, and an APNs push
//!    certificate (issued by the stand-in's test "Apple" CA) is installed
//!    over the API. Then the server is stopped.
//! 2. **Fixture** (not a measurement): N enrolled iPhones are written
//!    straight into `devices` with rusqlite (status `enrolled`, the push
//!    certificate's topic, a push token and PushMagic, model, product and
//!    OS version), as check-in would have left them.
//! 3. The server starts again on that directory; [`POLICIES`] policies are
//!    created through the API (passcode, restrictions, Wi-Fi with a
//!    password, IKEv2 VPN with a shared secret, a second Wi-Fi), one
//!    dynamic group whose rule (`{"model": "iPhone"}`) matches every device,
//!    and the policies are assigned to it.
//! 4. `POST /api/v1/reconcile` is called until a pass queues nothing. Each
//!    pass queues at most 5,000 commands (what the route asks for) and
//!    pushes the devices it queued for; per pass: the request's wall time
//!    (commands queued per second), the server's CPU time (`utime + stime`
//!    from /proc) when the answer arrived and after the pass's pushes
//!    reached the stand-in, and RSS. Target: ≥ [`TARGET_PER_S`] commands
//!    queued per second.
//! 5. [`IDLE_PASSES`] more passes over the converged state (every profile
//!    in flight: nothing to queue): the cost of a pass that finds nothing.
//! 6. The server is stopped and the database is checked: N × 5
//!    InstallProfile commands and N × 5 `installing` profile rows.
//!
//! The server also reconciles by itself every 60 s (its first pass at
//! start, before any policy exists). The timed passes normally end well
//! within the first minute; the report says when they did not, and checks
//! that the timed passes queued everything themselves.

use crate::procfs::{self, Memory};
use crate::server::Server;
use anyhow::{anyhow, bail, Context};
use mamori_testkit::apns::{new_topic, Ca, StandIn};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Policies assigned to every device.
pub const POLICIES: usize = 5;
/// Commands queued per second the issue asks for.
pub const TARGET_PER_S: f64 = 5000.0;
/// Commands one `POST /api/v1/reconcile` queues at most (the server's).
pub const BATCH: usize = 5000;
/// Timed passes over the converged state.
pub const IDLE_PASSES: usize = 3;
/// The server's own reconciliation period.
const SERVER_PERIOD: Duration = Duration::from_secs(60);
/// How long a pass's pushes may take to reach the stand-in.
const PUSH_TIMEOUT: Duration = Duration::from_secs(60);
/// Wait after the pushes before reading /proc (the server finishes
/// handling the answers).
const SETTLE: Duration = Duration::from_millis(200);

/// What `POST /api/v1/reconcile` answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Enrolled devices looked at.
    pub devices: usize,
    /// InstallProfile commands queued.
    pub installs: usize,
    /// RemoveProfile commands queued.
    pub removals: usize,
    /// Changes left for the next pass.
    pub deferred: usize,
}

impl PassReport {
    /// Parses the route's JSON answer.
    pub fn parse(v: &Value) -> anyhow::Result<Self> {
        let n = |k: &str| -> anyhow::Result<usize> {
            v[k].as_u64()
                .map(|x| x as usize)
                .ok_or_else(|| anyhow!("no {k:?} in {v}"))
        };
        Ok(Self {
            devices: n("devices")?,
            installs: n("installs")?,
            removals: n("removals")?,
            deferred: n("deferred")?,
        })
    }

    /// Commands queued.
    pub fn queued(&self) -> usize {
        self.installs + self.removals
    }
}

/// One timed pass.
#[derive(Debug, Clone)]
pub struct Pass {
    /// What the server answered.
    pub report: PassReport,
    /// Wall time of the request.
    pub wall: Duration,
    /// Server CPU (clock ticks) from the request until its answer.
    pub ticks: u64,
    /// Server CPU (clock ticks) from the request until its pushes arrived.
    pub ticks_with_push: u64,
    /// Pushes that reached the stand-in.
    pub pushes: usize,
    /// From the request until the last push arrived.
    pub push_wall: Duration,
    /// Server memory after the pass.
    pub memory: Memory,
    /// Time since the server started when the pass ended.
    pub since_start: Duration,
}

/// Everything `--reconcile` measured.
#[derive(Debug, Clone)]
pub struct Figures {
    /// Enrolled devices.
    pub devices: usize,
    /// Writing the fixture.
    pub fixture: Duration,
    /// The passes that queued commands.
    pub passes: Vec<Pass>,
    /// The passes over the converged state.
    pub idle: Vec<Pass>,
    /// Clock ticks per second.
    pub ticks_per_s: u64,
    /// Server memory before the first pass.
    pub start_memory: Memory,
    /// InstallProfile commands in the database at the end.
    pub db_installs: u64,
    /// `installing` profile rows in the database at the end.
    pub db_installing: u64,
}

/// A UDID-shaped identifier for fixture device `i`.
pub fn udid(i: usize) -> String {
    format!("00008110-{:016X}", 0x000A_0000_0000_0000u64 + i as u64)
}

/// Writes `n` enrolled iPhones under push topic `topic` into `devices`.
fn write_devices(db: &Path, n: usize, topic: &str) -> anyhow::Result<()> {
    let mut c =
        rusqlite::Connection::open(db).with_context(|| format!("cannot open {}", db.display()))?;
    c.busy_timeout(Duration::from_secs(30))?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let tx = c.transaction()?;
    {
        let mut ins = tx.prepare(
            "INSERT INTO devices (udid, status, topic, serial_number, model, model_name,
                 product_name, os_version, build_version, push_token, push_magic,
                 enrolled_at, last_seen_at)
             VALUES (?, 'enrolled', ?, ?, 'iPhone', 'iPhone', 'iPhone15,4', '17.5.1', '21F90',
                 ?, ?, ?, ?)",
        )?;
        for i in 0..n {
            let mut token = [0x5au8; 32];
            token[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let magic = format!("{:08X}-6D61-4D6F-9269-{:012X}", i, i);
            ins.execute(rusqlite::params![
                udid(i),
                topic,
                format!("F{:010}", i),
                token.as_slice(),
                magic,
                now - 86_400,
                now - 60,
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// (InstallProfile commands, `installing` profile rows) in the database.
fn count_rows(db: &Path) -> anyhow::Result<(u64, u64)> {
    let c =
        rusqlite::Connection::open(db).with_context(|| format!("cannot open {}", db.display()))?;
    let installs: i64 = c.query_row(
        "SELECT COUNT(*) FROM commands WHERE request_type = 'InstallProfile'",
        [],
        |r| r.get(0),
    )?;
    let rows: i64 = c.query_row(
        "SELECT COUNT(*) FROM device_profiles WHERE state = 'installing'",
        [],
        |r| r.get(0),
    )?;
    Ok((installs.max(0) as u64, rows.max(0) as u64))
}

/// `method path` with the owner token and a JSON body; the JSON answer.
async fn call(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut req = server
        .http
        .request(method.clone(), server.admin_url(path))
        .bearer_auth(&server.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req
        .send()
        .await
        .with_context(|| format!("{method} {path}"))?;
    let status = r.status();
    let text = r.text().await.with_context(|| format!("{method} {path}"))?;
    if !status.is_success() {
        bail!("{method} {path}: {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{method} {path}: answer {text:?}"))
}

/// The five policies: (name, kind, settings).
pub fn policies() -> [(&'static str, &'static str, Value); POLICIES] {
    [
        (
            "Passcode",
            "passcode",
            json!({"forcePIN": true, "minLength": 8, "maxFailedAttempts": 10}),
        ),
        (
            "Restrictions",
            "restrictions",
            json!({"allowOpenFromManagedToUnmanaged": false, "allowAppInstallation": true}),
        ),
        (
            "Corp Wi-Fi",
            "wifi",
            json!({"SSID_STR": "Corp", "EncryptionType": "WPA2",
                   "Password": "bench-wifi-password-1", "AutoJoin": true}),
        ),
        (
            "Office VPN",
            "vpn",
            json!({"VPNType": "IKEv2", "UserDefinedName": "Office", "IKEv2": {
                "RemoteAddress": "vpn.example.com", "RemoteIdentifier": "vpn.example.com",
                "LocalIdentifier": "client", "AuthenticationMethod": "SharedSecret",
                "SharedSecret": "bench-ike-secret"}}),
        ),
        (
            "Guest Wi-Fi",
            "wifi",
            json!({"SSID_STR": "Guest", "EncryptionType": "WPA2",
                   "Password": "bench-guest-password", "AutoJoin": false}),
        ),
    ]
}

/// Takes what reached the stand-in until at least `expected` pushes
/// arrived (or [`PUSH_TIMEOUT`]); returns the count.
async fn collect_pushes(apns: &StandIn, expected: usize) -> usize {
    let deadline = Instant::now() + PUSH_TIMEOUT;
    let mut got = 0;
    loop {
        got += apns.take().len();
        if got >= expected || Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One timed `POST /api/v1/reconcile`, with its pushes.
async fn timed_pass(server: &Server, apns: &StandIn, started: Instant) -> anyhow::Result<Pass> {
    server.check_alive()?;
    let pid = server.pid();
    let before = procfs::cpu_ticks(pid)?;
    let t = Instant::now();
    let answer = call(server, reqwest::Method::POST, "/api/v1/reconcile", None).await?;
    let wall = t.elapsed();
    let at_answer = procfs::cpu_ticks(pid)?;
    let report = PassReport::parse(&answer)?;
    // Every device gets all its profiles in one pass (the batch is a
    // multiple of POLICIES): one push per POLICIES commands.
    let mut pushes = collect_pushes(apns, report.queued().div_ceil(POLICIES)).await;
    let push_wall = t.elapsed();
    tokio::time::sleep(SETTLE).await;
    pushes += apns.take().len();
    server.check_alive()?;
    let after = procfs::cpu_ticks(pid)?;
    Ok(Pass {
        report,
        wall,
        ticks: at_answer.saturating_sub(before),
        ticks_with_push: after.saturating_sub(before),
        pushes,
        push_wall,
        memory: procfs::memory(pid)?,
        since_start: started.elapsed(),
    })
}

/// Runs the benchmark in `work_dir` with `devices` devices.
pub async fn measure(
    server_bin: &Path,
    work_dir: &Path,
    devices: usize,
) -> anyhow::Result<Figures> {
    let ticks_per_s = procfs::clock_ticks_per_second();
    // The APNs stand-in and its test "Apple" CA.
    let apple = Ca::new("mamori-bench test Apple CA");
    let apns = StandIn::start(&apple, &apple).await;
    let ca_path = work_dir.join("apns-ca.pem");
    std::fs::write(&ca_path, apple.pem())
        .with_context(|| format!("cannot write {}", ca_path.display()))?;
    let ca_arg = ca_path
        .to_str()
        .ok_or_else(|| anyhow!("non-UTF-8 path {}", ca_path.display()))?
        .to_owned();
    let serve_args = [
        "--apns-url",
        apns.url.as_str(),
        "--apns-ca",
        ca_arg.as_str(),
    ];

    // 1. The data directory, by the real server, and a push certificate.
    eprintln!("creating the data directory with `mamori serve`...");
    let server = Server::start_with(server_bin, work_dir, &serve_args).await?;
    let token = server.token.clone();
    let topic = new_topic();
    let (cert_pem, key_pem) = apple.push_cert(Some(&topic));
    let answer = call(
        &server,
        reqwest::Method::PUT,
        "/api/v1/push-certificate",
        Some(json!({ "certificate_pem": cert_pem, "private_key_pem": key_pem })),
    )
    .await?;
    if answer["topic"] != topic.as_str() {
        bail!("push certificate installed with topic {}", answer["topic"]);
    }
    let db = server.data_dir.join("mamori.db");
    drop(server);

    // 2. The fixture.
    eprintln!("writing the fixture: {devices} enrolled devices...");
    let t = Instant::now();
    let (db2, topic2) = (db.clone(), topic.clone());
    tokio::task::spawn_blocking(move || write_devices(&db2, devices, &topic2))
        .await
        .context("fixture writer panicked")??;
    let fixture = t.elapsed();

    // 3. Policies, a group of every device, assignment.
    let server = Server::restart_with(
        server_bin,
        work_dir,
        &token,
        "server-reconcile.log",
        &serve_args,
    )
    .await?;
    let started = Instant::now();
    let mut ids = Vec::new();
    for (name, kind, settings) in policies() {
        let p = call(
            &server,
            reqwest::Method::POST,
            "/api/v1/policies",
            Some(json!({ "name": name, "kind": kind, "settings": settings })),
        )
        .await?;
        ids.push(
            p["id"]
                .as_str()
                .ok_or_else(|| anyhow!("policy without id: {p}"))?
                .to_owned(),
        );
    }
    let g = call(
        &server,
        reqwest::Method::POST,
        "/api/v1/groups",
        Some(json!({ "name": "every iPhone", "rule": { "model": "iPhone" } })),
    )
    .await?;
    let gid = g["id"]
        .as_str()
        .ok_or_else(|| anyhow!("group without id: {g}"))?
        .to_owned();
    call(
        &server,
        reqwest::Method::PUT,
        &format!("/api/v1/groups/{gid}/policies"),
        Some(json!({ "policies": ids })),
    )
    .await?;
    let start_memory = procfs::memory(server.pid())?;

    // 4. Passes until one queues nothing.
    let mut passes = Vec::new();
    let max_passes = (devices * POLICIES).div_ceil(BATCH) + 3;
    let mut idle = Vec::new();
    loop {
        let pass = timed_pass(&server, &apns, started).await?;
        eprintln!(
            "  pass {}: {:?} in {:.3} s",
            passes.len() + 1,
            pass.report,
            pass.wall.as_secs_f64()
        );
        if pass.report.queued() == 0 {
            idle.push(pass);
            break;
        }
        passes.push(pass);
        if passes.len() > max_passes {
            bail!("still queueing after {} passes", passes.len());
        }
    }
    // 5. More passes over the converged state.
    while idle.len() < IDLE_PASSES {
        let pass = timed_pass(&server, &apns, started).await?;
        if pass.report.queued() != 0 {
            bail!("a pass over the converged state queued {:?}", pass.report);
        }
        idle.push(pass);
    }
    drop(server);

    // 6. What the database holds.
    let (db_installs, db_installing) = count_rows(&db)?;
    Ok(Figures {
        devices,
        fixture,
        passes,
        idle,
        ticks_per_s,
        start_memory,
        db_installs,
        db_installing,
    })
}

fn secs(ticks: u64, per_s: u64) -> f64 {
    procfs::ticks_to_duration(ticks, per_s).as_secs_f64()
}

/// The result tables.
pub fn report(f: &Figures) -> String {
    let tps = f.ticks_per_s;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "fixture: {} enrolled devices written with rusqlite in {:.2} s (not measured); \
         server RSS before the first pass {:.1} MB",
        f.devices,
        f.fixture.as_secs_f64(),
        f.start_memory.rss_mib()
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<8} {:>8} {:>9} {:>8} {:>12} {:>10} {:>10} {:>12} {:>7} {:>11} {:>8}",
        "pass",
        "devices",
        "queued",
        "wall s",
        "commands/s",
        "srv CPU s",
        "µs/cmd",
        "+push CPU s",
        "pushes",
        "push wall s",
        "RSS MB"
    );
    let row = |out: &mut String, label: &str, p: &Pass| {
        let q = p.report.queued();
        let rate = q as f64 / p.wall.as_secs_f64().max(1e-9);
        let per_cmd = if q == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}", secs(p.ticks, tps) * 1e6 / q as f64)
        };
        let _ = writeln!(
            out,
            "{:<8} {:>8} {:>9} {:>8.3} {:>12.0} {:>10.2} {:>10} {:>12.2} {:>7} {:>11.3} {:>8.1}",
            label,
            p.report.devices,
            q,
            p.wall.as_secs_f64(),
            rate,
            secs(p.ticks, tps),
            per_cmd,
            secs(p.ticks_with_push, tps),
            p.pushes,
            p.push_wall.as_secs_f64(),
            p.memory.rss_mib()
        );
    };
    for (i, p) in f.passes.iter().enumerate() {
        row(&mut out, &format!("{}", i + 1), p);
    }
    let total = |ps: &[Pass]| -> Option<Pass> {
        let last = ps.last()?;
        Some(Pass {
            report: PassReport {
                devices: last.report.devices,
                installs: ps.iter().map(|p| p.report.installs).sum(),
                removals: ps.iter().map(|p| p.report.removals).sum(),
                deferred: last.report.deferred,
            },
            wall: ps.iter().map(|p| p.wall).sum(),
            ticks: ps.iter().map(|p| p.ticks).sum(),
            ticks_with_push: ps.iter().map(|p| p.ticks_with_push).sum(),
            pushes: ps.iter().map(|p| p.pushes).sum(),
            push_wall: ps.iter().map(|p| p.push_wall).sum(),
            memory: last.memory,
            since_start: last.since_start,
        })
    };
    if let Some(t) = total(&f.passes) {
        row(&mut out, "total", &t);
    }
    for (i, p) in f.idle.iter().enumerate() {
        row(&mut out, &format!("idle {}", i + 1), p);
    }
    let _ = writeln!(out);
    let queued: usize = f.passes.iter().map(|p| p.report.queued()).sum();
    let wall: Duration = f.passes.iter().map(|p| p.wall).sum();
    let rate = queued as f64 / wall.as_secs_f64().max(1e-9);
    let slowest = f
        .passes
        .iter()
        .map(|p| p.report.queued() as f64 / p.wall.as_secs_f64().max(1e-9))
        .fold(f64::INFINITY, f64::min);
    let verdict = if rate >= TARGET_PER_S && slowest >= TARGET_PER_S {
        "met"
    } else {
        "MISSED"
    };
    let _ = writeln!(
        out,
        "target ≥ {TARGET_PER_S:.0} commands queued/s: {verdict} (overall {rate:.0}/s, \
         slowest pass {slowest:.0}/s)"
    );
    let expected = f.devices * POLICIES;
    let _ = writeln!(
        out,
        "queued by the timed passes: {queued} of {expected} ({} devices × {POLICIES} policies); \
         database after: {} InstallProfile commands, {} profile rows installing{}",
        f.devices,
        f.db_installs,
        f.db_installing,
        if queued == expected && f.db_installs == expected as u64 {
            ""
        } else {
            " — MISMATCH (did the server's own 60 s pass run in between?)"
        }
    );
    let last = f.idle.last().or(f.passes.last());
    if let Some(last) = last {
        let peak = f
            .passes
            .iter()
            .chain(&f.idle)
            .map(|p| p.memory.peak_mib())
            .fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "server RSS after the last pass {:.1} MB (peak {:.1} MB); last pass ended {:.1} s \
             after the server started{}",
            last.memory.rss_mib(),
            peak,
            last.since_start.as_secs_f64(),
            if last.since_start >= SERVER_PERIOD {
                " — the server's own 60 s reconciliation may have run meanwhile"
            } else {
                " (before the server's own 60 s pass)"
            }
        );
    }
    let _ = writeln!(
        out,
        "wall = the POST /api/v1/reconcile request (commands/s = queued / wall); srv CPU = server \
         utime+stime from the request until its answer; +push CPU = until the pass's pushes \
         reached the APNs stand-in (in this process) and {} ms more. CPU resolution {:.0} ms.",
        SETTLE.as_millis(),
        1000.0 / tps.max(1) as f64
    );
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fixture_udids_are_device_keys() {
        for i in [0, 1, 9_999, 999_999] {
            mamori_domain::DeviceKey::parse(&udid(i)).unwrap();
        }
        assert!(udid(1) < udid(2));
    }

    #[test]
    fn parses_the_report() {
        let v = json!({"devices": 10, "installs": 5, "removals": 1, "deferred": 2});
        let r = PassReport::parse(&v).unwrap();
        assert_eq!(r.queued(), 6);
        assert!(PassReport::parse(&json!({})).is_err());
    }

    #[test]
    fn the_batch_holds_whole_devices() {
        assert_eq!(BATCH % POLICIES, 0);
    }
}
