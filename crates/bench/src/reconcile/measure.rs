//! The `--reconcile` run: the APNs stand-in, the data directory and its
//! device fixture, the policies, and the timed reconciliation passes.

use super::{
    policies, udid, Figures, Pass, PassReport, BATCH, IDLE_PASSES, POLICIES, PUSH_TIMEOUT, SETTLE,
};
use crate::procfs;
use crate::server::Server;
use anyhow::{anyhow, bail, Context};
use mamori_testkit::apns::{new_topic, Ca, StandIn};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// The APNs stand-in (in this process, answering 200) and its test
/// "Apple" CA, written where `--apns-ca` reads it.
pub(crate) struct Apns {
    /// The CA that issues push certificates and the stand-in's TLS one.
    pub(crate) apple: Ca,
    /// The stand-in.
    pub(crate) stand_in: StandIn,
    /// The CA file's path.
    ca_path: String,
}

impl Apns {
    /// Starts the stand-in and writes its CA into `work_dir`.
    pub(crate) async fn start(work_dir: &Path) -> anyhow::Result<Self> {
        let apple = Ca::new("mamori-bench test Apple CA");
        let stand_in = StandIn::start(&apple, &apple).await;
        let path = work_dir.join("apns-ca.pem");
        std::fs::write(&path, apple.pem())
            .with_context(|| format!("cannot write {}", path.display()))?;
        let ca_path = path
            .to_str()
            .ok_or_else(|| anyhow!("non-UTF-8 path {}", path.display()))?
            .to_owned();
        Ok(Self {
            apple,
            stand_in,
            ca_path,
        })
    }

    /// The `mamori serve` arguments that point it at the stand-in.
    pub(crate) fn serve_args(&self) -> [&str; 4] {
        [
            "--apns-url",
            self.stand_in.url.as_str(),
            "--apns-ca",
            self.ca_path.as_str(),
        ]
    }
}

/// Writes `n` enrolled iPhones under push topic `topic` into `devices`.
pub(crate) fn write_devices(db: &Path, n: usize, topic: &str) -> anyhow::Result<()> {
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

const INSTALLS_SQL: &str = "SELECT COUNT(*) FROM commands WHERE request_type = 'InstallProfile'";
const INSTALLING_SQL: &str = "SELECT COUNT(*) FROM device_profiles WHERE state = 'installing'";

/// The data directory of the database file `db`.
fn db_dir(db: &Path) -> PathBuf {
    db.parent().map_or_else(PathBuf::new, Path::to_path_buf)
}

/// (InstallProfile commands, `installing` profile rows) in the database.
fn count_rows(db: &Path) -> anyhow::Result<(u64, u64)> {
    let c =
        rusqlite::Connection::open(db).with_context(|| format!("cannot open {}", db.display()))?;
    let installs: i64 = c.query_row(INSTALLS_SQL, [], |r| r.get(0))?;
    let rows: i64 = c.query_row(INSTALLING_SQL, [], |r| r.get(0))?;
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
    let push = Apns::start(work_dir).await?;
    let apns = &push.stand_in;
    let serve_args = push.serve_args();

    // 1. The data directory, by the real server, and a push certificate.
    let (token, topic, db) =
        create_data_dir(server_bin, work_dir, &serve_args, &push.apple).await?;

    // 2. The fixture.
    eprintln!("writing the fixture: {devices} enrolled devices...");
    let t = Instant::now();
    let (db2, topic2) = (db.clone(), topic.clone());
    tokio::task::spawn_blocking(move || write_devices(&db2, devices, &topic2))
        .await
        .context("fixture writer panicked")??;
    let fixture = t.elapsed();
    // With --postgres: the server runs on PostgreSQL from here on.
    let migrated = match crate::pg::url() {
        Some(_) => Some(crate::pg::migrate(server_bin, &db_dir(&db))?.wall),
        None => None,
    };

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
    assign_policies(&server).await?;
    let start_memory = procfs::memory(server.pid())?;

    // 4. and 5. Passes until one queues nothing, then more.
    let (passes, idle) = converge(&server, apns, started, devices).await?;
    drop(server);

    // 6. What the database holds.
    let (db_installs, db_installing) = match migrated {
        Some(_) => (
            crate::pg::number(INSTALLS_SQL)?,
            crate::pg::number(INSTALLING_SQL)?,
        ),
        None => count_rows(&db)?,
    };
    Ok(Figures {
        devices,
        fixture,
        migrated,
        passes,
        idle,
        ticks_per_s,
        start_memory,
        db_installs,
        db_installing,
    })
}

/// Starts `mamori serve` once on a new data directory and installs a push
/// certificate from `apple`; returns the owner token, the push topic and
/// the database's path, with the server stopped.
pub(crate) async fn create_data_dir(
    server_bin: &Path,
    work_dir: &Path,
    serve_args: &[&str],
    apple: &Ca,
) -> anyhow::Result<(String, String, PathBuf)> {
    eprintln!("creating the data directory with `mamori serve`...");
    let server = Server::start_with(server_bin, work_dir, serve_args).await?;
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
    Ok((token, topic, db))
}

/// Creates the policies and a dynamic group of every iPhone, and assigns
/// the policies to the group.
pub(crate) async fn assign_policies(server: &Server) -> anyhow::Result<()> {
    let mut ids = Vec::new();
    for (name, kind, settings) in policies() {
        let p = call(
            server,
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
        server,
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
        server,
        reqwest::Method::PUT,
        &format!("/api/v1/groups/{gid}/policies"),
        Some(json!({ "policies": ids })),
    )
    .await?;
    Ok(())
}

/// Timed passes until one queues nothing, then more over the converged
/// state: (the passes that queued, the passes that found nothing).
async fn converge(
    server: &Server,
    apns: &StandIn,
    started: Instant,
    devices: usize,
) -> anyhow::Result<(Vec<Pass>, Vec<Pass>)> {
    let mut passes = Vec::new();
    let max_passes = (devices * POLICIES).div_ceil(BATCH) + 3;
    let mut idle = Vec::new();
    loop {
        let pass = timed_pass(server, apns, started).await?;
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
        let pass = timed_pass(server, apns, started).await?;
        if pass.report.queued() != 0 {
            bail!("a pass over the converged state queued {:?}", pass.report);
        }
        idle.push(pass);
    }
    Ok((passes, idle))
}
