//! Three `mamori serve` processes on one PostgreSQL database behind a
//! round-robin TCP proxy (this file's own, as a load balancer passing TLS
//! through): 200 simulated devices enroll and answer commands through the
//! proxy while administrators work on every server; one server is killed
//! with SIGKILL mid-load. Nothing acknowledged is lost, the audit chain
//! verifies, and the dead server's jobs move to the others.

use crate::common::{client_trusting, copy_keys, role_token};
use mamori::config::{Config, ServeArgs};
use mamori_sim::{DeviceKind, SimDevice, SimOptions};
use mamori_testkit::pg;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

const BIN: &str = env!("CARGO_BIN_EXE_mamori");
const DEVICES: usize = 200;

/// A `mamori serve` child process.
struct Server {
    child: Child,
    device: SocketAddr,
    admin: SocketAddr,
    data: PathBuf,
}

impl Server {
    fn start(dir: &Path, url: &str, public: &str, log: &Path) -> Self {
        let device = free_addr();
        let admin = free_addr();
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--data-dir")
            .arg(dir)
            .args(["--device-addr", &device.to_string()])
            .args(["--admin-addr", &admin.to_string()])
            .args(["--public-url", public])
            // Every device comes from 127.0.0.1 through the proxy.
            .args(["--max-connections-per-ip", "100000"])
            .env("MAMORI_DATABASE_URL", url)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Self {
            child,
            device,
            admin,
            data: dir.to_owned(),
        }
    }

    async fn wait_healthy(&mut self) -> reqwest::Client {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "the server exited while starting"
            );
            if let Ok(pem) = std::fs::read(self.data.join("tls-ca.pem")) {
                let http = client_trusting(&pem);
                let ok = http
                    .get(format!("https://{}/healthz", self.admin))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    return http;
                }
            }
            assert!(Instant::now() < deadline, "the server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill(&mut self) {
        // SIGKILL: no shutdown, no lease released, connections cut.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A round-robin TCP proxy: each connection goes to the next backend that
/// accepts it (a dead one is skipped, as a load balancer's health check
/// would), bytes passed through untouched (TLS ends at the server).
async fn proxy(listener: TcpListener, backends: Arc<[SocketAddr]>) {
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        let backends = Arc::clone(&backends);
        let next = Arc::clone(&next);
        tokio::spawn(async move {
            for _ in 0..backends.len() {
                let i = next.fetch_add(1, Ordering::Relaxed) % backends.len();
                if let Ok(mut outbound) = TcpStream::connect(backends[i]).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    return;
                }
            }
        });
    }
}

/// Services over the first server's data directory and the database, as
/// a CLI command on the host builds them (no listeners).
async fn offline(dir: &Path, url: &str) -> mamori_core::Services {
    let config = Config::resolve(&ServeArgs {
        data_dir: Some(dir.to_owned()),
        database_url: Some(url.to_owned()),
        ..ServeArgs::default()
    })
    .unwrap();
    let pusher = Arc::new(mamori_push::ApnsPusher::new(&config.apns_url, Vec::new()).unwrap());
    // WebAuthn (an owner's first sign-in registers a passkey) needs a host
    // name, not an address.
    let (s, _, _) = mamori::app::build_services(
        &config,
        "https://localhost:8443",
        "https://localhost:8444",
        pusher,
        false,
    )
    .await
    .unwrap();
    s
}

/// A device answers every command waiting for it, trying again when a
/// request fails (its server died: the next connection reaches another).
/// Returns the commands whose answers the server acknowledged.
async fn answer_all(dev: &mut SimDevice) -> Vec<String> {
    let mut acknowledged = Vec::new();
    for _ in 0..20 {
        let mut next = match dev.connect_idle().await {
            Ok(n) => n,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut failed = false;
        while let Some(cmd) = next {
            let answer = dev.builtin_response(&cmd);
            match dev.respond(&cmd, answer).await {
                Ok(n) => {
                    acknowledged.push(cmd.command_uuid.clone());
                    next = n;
                }
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if !failed {
            return acknowledged;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("device {} could not finish its queue", dev.udid());
}

async fn admin_get(http: &reqwest::Client, server: SocketAddr, token: &str, path: &str) -> Value {
    let r = http
        .get(format!("https://{server}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

// Length: one scenario, in the order it must happen: start three servers,
// enroll through the proxy, load, kill one mid-load, then check what was
// acknowledged, the audit chain and the jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_servers_behind_a_proxy_lose_nothing_when_one_is_killed() {
    let url = pg::shared().fresh_database();
    let work = tempfile::tempdir().unwrap();
    let proxy_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("https://{}", proxy_listener.local_addr().unwrap());
    let dirs: Vec<PathBuf> = (0..3).map(|i| work.path().join(format!("s{i}"))).collect();

    // The first server makes the installation (keys, schema); the others
    // get copies of its keys.
    let mut servers = vec![Server::start(
        &dirs[0],
        &url,
        &public,
        &work.path().join("s0.log"),
    )];
    let http = servers[0].wait_healthy().await;
    for (i, dir) in dirs.iter().enumerate().skip(1) {
        copy_keys(&dirs[0], dir);
        let mut s = Server::start(dir, &url, &public, &work.path().join(format!("s{i}.log")));
        s.wait_healthy().await;
        servers.push(s);
    }
    let backends: Arc<[SocketAddr]> = servers.iter().map(|s| s.device).collect();
    tokio::spawn(proxy(proxy_listener, backends));
    let admins: Vec<SocketAddr> = servers.iter().map(|s| s.admin).collect();
    let token = role_token(&offline(&dirs[0], &url).await, "cluster-owner", "owner").await;
    let ca = std::fs::read(dirs[0].join("tls-ca.pem")).unwrap();

    // 200 devices enroll through the proxy, each with a profile from the
    // next server's admin API.
    let mut devices = Vec::new();
    for chunk in 0..DEVICES / 20 {
        let mut batch = Vec::new();
        for i in 0..20 {
            let admin = admins[(chunk * 20 + i) % admins.len()];
            let profile = http
                .post(format!("https://{admin}/api/v1/enrollment-profiles"))
                .bearer_auth(&token)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let ca = ca.clone();
            let kind = if i % 4 == 0 {
                DeviceKind::Mac
            } else {
                DeviceKind::IPhone
            };
            batch.push(tokio::spawn(async move {
                let mut dev = SimDevice::new(kind, SimOptions::default());
                dev.enroll(&profile, Some(&ca)).await.unwrap();
                dev
            }));
        }
        for b in batch {
            devices.push(b.await.unwrap());
        }
    }
    let listed = admin_get(&http, admins[1], &token, "/api/v1/devices?limit=500").await;
    assert_eq!(listed["devices"].as_array().unwrap().len(), DEVICES);

    // Two commands for every device, queued on different servers.
    let udids: Vec<String> = devices.iter().map(|d| d.udid().to_owned()).collect();
    let mut queued = Vec::new();
    let requests = [
        json!({"RequestType": "DeviceInformation", "Queries": ["DeviceName", "OSVersion"]}),
        json!({"RequestType": "InstalledApplicationList"}),
    ];
    for (i, request) in requests.iter().enumerate() {
        let r: Value = http
            .post(format!(
                "https://{}/api/v1/commands?push=false",
                admins[i % admins.len()]
            ))
            .bearer_auth(&token)
            .json(&json!({"devices": udids, "command": request}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let Some(commands) = r["commands"].as_array() else {
            panic!("{request}: {r}");
        };
        for c in commands {
            queued.push(c["command_uuid"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(queued.len(), 2 * DEVICES);

    // The server running the jobs is the one to die (the first to start
    // took every lease).
    let name = pg::Cluster::database_of(&url).to_owned();
    let holders = pg::shared()
        .psql(&name, "SELECT holder FROM job_leases")
        .unwrap();
    let victim = servers
        .iter()
        .position(|s| holders.contains(&format!(":{}:", s.child.id())))
        .expect("a server holds the jobs");
    let living: Vec<SocketAddr> = (0..servers.len())
        .filter(|i| *i != victim)
        .map(|i| admins[i])
        .collect();

    // The devices answer through the proxy; administrators read on the
    // living servers meanwhile; the victim dies with SIGKILL halfway.
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for mut dev in devices {
        let acknowledged = Arc::clone(&acknowledged);
        let answered = Arc::clone(&answered);
        load.push(tokio::spawn(async move {
            let got = answer_all(&mut dev).await;
            answered.fetch_add(1, Ordering::Relaxed);
            acknowledged.lock().unwrap().extend(got);
            dev
        }));
    }
    let watchers = {
        let http = http.clone();
        let token = token.clone();
        let living = living.clone();
        tokio::spawn(async move {
            for i in 0..30 {
                let admin = living[i % living.len()];
                admin_get(&http, admin, &token, "/api/v1/devices?limit=10").await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    while answered.load(Ordering::Relaxed) < DEVICES / 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dead = format!(":{}:", servers[victim].child.id());
    servers[victim].kill();
    let mut devices = Vec::new();
    for l in load {
        devices.push(l.await.unwrap());
    }
    watchers.await.unwrap();

    // Nothing is lost: every command was answered and its answer stored,
    // those whose acknowledgement the device received included. (An
    // answer stored by the server that died before its reply left is
    // stored all the same: the device, seeing its request fail, asks
    // again and finds nothing more to do.)
    let acknowledged = acknowledged.lock().unwrap().clone();
    let cut = 2 * DEVICES - acknowledged.len();
    println!(
        "answers acknowledged: {}, cut off by the kill: {cut}",
        acknowledged.len()
    );
    assert!(cut <= DEVICES / 2, "{cut} answers without a reply");
    for uuid in &acknowledged {
        assert!(queued.contains(uuid), "{uuid} was never queued");
    }
    for (i, uuid) in queued.iter().enumerate() {
        let c = admin_get(
            &http,
            living[i % living.len()],
            &token,
            &format!("/api/v1/commands/{uuid}"),
        )
        .await;
        assert_eq!(c["status"], "Acknowledged", "{uuid}: {c}");
    }

    // The audit chain of all three servers' records is one, intact.
    let s = offline(&dirs[0], &url).await;
    let v = s.verify_audit().await.unwrap();
    assert!(v.fault.is_none(), "{:?}", v.fault);
    assert!(v.records > (2 * DEVICES) as u64, "{v:?}");

    // The dead server's jobs moved to the living: a lease runs 30 s and
    // servers look for free ones every 10 s.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let held = pg::shared()
            .psql(
                &name,
                "SELECT name || '=' || holder FROM job_leases ORDER BY name",
            )
            .unwrap();
        let jobs: Vec<&str> = held.lines().collect();
        if !jobs.is_empty() && jobs.iter().all(|j| !j.contains(&dead)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dead server still holds jobs: {held}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for mut s in servers {
        s.kill();
    }
}
