//! The server on PostgreSQL (`MAMORI_DATABASE_URL`): devices enroll and
//! answer commands, administrators work, personal data stays sealed, the
//! audit chain verifies, and everything is still there after a restart.
//! The database lives in the test binary's throwaway cluster.

use crate::common::{client_trusting, copy_keys, role_token, spawn_on_postgres, test_config_on};
use mamori::app;
use mamori_sim::{DeviceKind, SimDevice, SimOptions};
use mamori_testkit::pg;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_postgres_enrolls_runs_commands_and_keeps_everything_across_a_restart() {
    let (app, mut config) = spawn_on_postgres().await;
    let mut phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let mut mac = app.enrolled(DeviceKind::Mac, SimOptions::default()).await;
    let (phone_id, mac_id) = (phone.udid().to_owned(), mac.udid().to_owned());
    let queued = app
        .enqueue(
            &[&phone_id, &mac_id],
            json!({"RequestType": "DeviceInformation", "Queries": ["DeviceName", "OSVersion"]}),
        )
        .await;
    assert_eq!(queued.len(), 2);
    for dev in [&mut phone, &mut mac] {
        let cmd = dev
            .connect_idle()
            .await
            .unwrap()
            .expect("the queued command");
        let answer = dev.builtin_response(&cmd);
        assert!(dev.respond(&cmd, answer).await.unwrap().is_none());
    }
    for (_, uuid) in &queued {
        assert_eq!(app.command(uuid).await["status"], "Acknowledged");
    }
    // A person, whose name and address are sealed in the database.
    let (st, person) = app
        .send(
            reqwest::Method::POST,
            "/api/v1/people",
            Some(json!({"name": "Hanako Yamada", "user_id": "hyamada",
                        "email": "hanako.yamada@example.jp", "department": "Sales"})),
        )
        .await;
    assert_eq!(st, 201, "{person}");
    let person_id = person["id"].as_str().unwrap().to_owned();
    let (st, _) = app
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/devices/{phone_id}/person"),
            Some(json!({"person_id": person["id"]})),
        )
        .await;
    assert_eq!(st, 204);
    let url = match &config.database {
        mamori::config::Database::Postgres(url) => url.clone(),
        mamori::config::Database::Embedded => panic!("the server is not on PostgreSQL"),
    };
    let dump = pg::shared().dump(pg::Cluster::database_of(&url));
    let dump = String::from_utf8_lossy(&dump);
    assert!(dump.contains(&phone_id), "the dump is of this installation");
    for secret in ["Hanako", "Yamada", "hanako.yamada@example.jp", "hyamada"] {
        assert!(!dump.contains(secret), "{secret} is stored in the clear");
    }
    let before = app.running.services.verify_audit().await.unwrap();
    assert!(before.fault.is_none(), "{:?}", before.fault);
    assert!(before.records > 5, "{before:?}");

    // Stopped and started again on the same database, data directory and
    // addresses.
    let _dir = app.dir;
    config.device_addr = app.running.device_addr;
    config.public_url = Some(app.running.public_url.clone());
    app.running.stop(Duration::from_secs(5)).await;
    let running = app::start(&config).await.unwrap();
    let token = role_token(&running.services, "after-restart", "owner").await;
    let http = client_trusting(&std::fs::read(running.tls_ca_path.as_ref().unwrap()).unwrap());
    let devices: serde_json::Value = http
        .get(format!("https://{}/api/v1/devices", running.admin_addr))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut listed: Vec<&str> = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["udid"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    let mut expected = vec![phone_id.as_str(), mac_id.as_str()];
    expected.sort_unstable();
    assert_eq!(listed, expected);
    // The person is read back (unsealed) by a security officer.
    let officer = role_token(&running.services, "officer", "security_officer").await;
    let person: serde_json::Value = http
        .get(format!(
            "https://{}/api/v1/people/{person_id}/personal-data",
            running.admin_addr
        ))
        .bearer_auth(&officer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(person["email"], "hanako.yamada@example.jp", "{person}");
    // The device goes on checking in with the identity it enrolled with.
    assert!(phone.connect_idle().await.unwrap().is_none());
    // The administration commands reach the same database.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mamori"))
        .args(["token", "list", "--data-dir"])
        .arg(&config.data_dir)
        .env("MAMORI_DATABASE_URL", &url)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && listed.contains("after-restart"),
        "{listed} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = running.services.verify_audit().await.unwrap();
    assert!(after.fault.is_none(), "{:?}", after.fault);
    assert!(after.records > before.records);
    running.stop(Duration::from_secs(5)).await;
}

/// A TCP proxy that sends each new connection to the backend a test
/// chooses: the load balancer in front of several servers, steered.
/// Switching closes the connections open so far (clients reconnect, to
/// the new backend).
struct Switch {
    addr: std::net::SocketAddr,
    target: Arc<std::sync::Mutex<std::net::SocketAddr>>,
    open: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Switch {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target = Arc::new(std::sync::Mutex::new(addr));
        let open = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (chosen, tracked) = (Arc::clone(&target), Arc::clone(&open));
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let to = *chosen.lock().unwrap();
                tracked.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                }));
            }
        });
        Self { addr, target, open }
    }

    async fn to(&self, backend: std::net::SocketAddr) {
        *self.target.lock().unwrap() = backend;
        for c in self.open.lock().unwrap().drain(..) {
            c.abort();
        }
        // The clients see their connections closed before they reuse them.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two servers on one database behind one address, as behind a load
/// balancer: a device enrolled through one is served by the other, and a
/// device identity retired on one is refused by the other at once — its
/// cache was told (LISTEN/NOTIFY), it did not wait for its entry to expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_server_is_refused_by_the_other_at_once() {
    let switch = Switch::start().await;
    let public = format!("https://{}", switch.addr);
    let dir_a = tempfile::tempdir().unwrap();
    let mut config_a = test_config_on(dir_a.path(), true);
    config_a.public_url = Some(public.clone());
    let a = app::start(&config_a).await.unwrap();
    // The second server: the same keys (a copy of the data directory), the
    // same database.
    let dir_b = tempfile::tempdir().unwrap();
    let mut config_b = test_config_on(dir_b.path(), false);
    config_b.database = config_a.database.clone();
    config_b.public_url = Some(public);
    copy_keys(&config_a.data_dir, &config_b.data_dir);
    let b = app::start(&config_b).await.unwrap();
    let token = role_token(&a.services, "two-servers", "owner").await;
    let ca = std::fs::read(a.tls_ca_path.as_ref().unwrap()).unwrap();
    let http = client_trusting(&ca);
    let profile = |admin: std::net::SocketAddr| {
        let http = http.clone();
        let token = token.clone();
        async move {
            http.post(format!("https://{admin}/api/v1/enrollment-profiles"))
                .bearer_auth(&token)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        }
    };

    // Enrolled through A, served by B (whose cache now holds the identity).
    switch.to(a.device_addr).await;
    let mut dev = SimDevice::new(DeviceKind::IPhone, SimOptions::default());
    dev.enroll(&profile(a.admin_addr).await, Some(&ca))
        .await
        .unwrap();
    switch.to(b.device_addr).await;
    let old = dev.credentials().unwrap();
    assert!(dev.connect_idle().await.unwrap().is_none());

    // On A, the device enrolls anew and an administrator approves it: the
    // old identity is retired there.
    switch.to(a.device_addr).await;
    let mut again = SimDevice::with_info(dev.info().clone(), SimOptions::default());
    again
        .enroll(&profile(a.admin_addr).await, Some(&ca))
        .await
        .unwrap();
    let r = http
        .post(format!(
            "https://{}/api/v1/devices/{}/reenrollment/approve",
            a.admin_addr,
            again.udid()
        ))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // B refuses the old identity now, not when its cache entry expires
    // (30 s); the new one is served.
    switch.to(b.device_addr).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    dev.set_credentials(old);
    loop {
        match dev.connect_idle().await {
            Err(e) => {
                assert_eq!(e.status(), Some(401));
                break;
            }
            Ok(_) => assert!(
                std::time::Instant::now() < deadline,
                "server B still serves the retired identity after 1 s"
            ),
        }
    }
    assert!(again.connect_idle().await.unwrap().is_none());
    a.stop(Duration::from_secs(5)).await;
    b.stop(Duration::from_secs(5)).await;
}

/// The outside attack's findings on PostgreSQL, where an index entry over
/// about 2.7 KB is refused: a device's over-long strings made its own
/// writes fail with 500, and made-up user IDs grew `user_channels` without
/// end. Now a check-in string over 512 bytes is refused 400 before
/// anything is stored, and an inventory answer whose app identifier is
/// over 512 bytes keeps the last good inventory (the answer is taken).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_cannot_store_strings_postgres_cannot_index() {
    let (app, _config) = spawn_on_postgres().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let udid = dev.udid().to_owned();
    let mut dict = plist::Dictionary::new();
    dict.insert("MessageType".into(), "TokenUpdate".into());
    dict.insert("UDID".into(), udid.clone().into());
    dict.insert("UserID".into(), "u".repeat(3000).into());
    dict.insert("Token".into(), plist::Value::Data(vec![1; 32]));
    dict.insert("PushMagic".into(), "magic".into());
    dict.insert("Topic".into(), "com.apple.mgmt.test".into());
    let mut xml = Vec::new();
    plist::to_writer_xml(&mut xml, &plist::Value::Dictionary(dict)).unwrap();
    let answer = dev.checkin_raw(xml, None).await.unwrap();
    assert_eq!(
        answer.status,
        400,
        "{:?}",
        String::from_utf8_lossy(&answer.body)
    );

    let long_id = format!("com.example.{}", "x".repeat(4000));
    dev.state_mut().apps.push(mamori_sim::InstalledApp {
        identifier: long_id.clone(),
        name: "Long".into(),
        short_version: "1.0".into(),
        version: "1".into(),
        bundle_size: 1,
    });
    app.enqueue(&[&udid], json!({"RequestType": "InstalledApplicationList"}))
        .await;
    let handled = dev.run_queue().await.unwrap();
    assert_eq!(handled.len(), 1, "{handled:?}");
    let (st, apps) = app.get(&format!("/api/v1/devices/{udid}/apps")).await;
    assert_eq!(st, 200, "{apps}");
    assert!(!apps.to_string().contains(&long_id));
    // The device is still served.
    assert!(dev.connect_idle().await.unwrap().is_none());
}

/// The outside attack's finding: a server started on the database with a
/// new data directory, given only `master.key` and `people.key`, ran with
/// a device CA, SCEP RA and audit key of its own, turning real devices
/// away. The database records the installation's keys; such a server is
/// refused at start, naming what differs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_other_keys_cannot_join_the_database() {
    let dir_a = tempfile::tempdir().unwrap();
    let config_a = test_config_on(dir_a.path(), true);
    let a = app::start(&config_a).await.unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let mut config_b = test_config_on(dir_b.path(), false);
    config_b.database = config_a.database.clone();
    std::fs::create_dir_all(&config_b.data_dir).unwrap();
    for f in ["master.key", "people.key"] {
        std::fs::copy(config_a.data_dir.join(f), config_b.data_dir.join(f)).unwrap();
    }
    let Err(refused) = app::start(&config_b).await else {
        panic!("a server with another device CA joined the database");
    };
    let why = format!("{refused:#}");
    assert!(
        why.contains("device-ca") && why.contains("audit-key"),
        "{why}"
    );
    // With a copy of the whole data directory, it joins.
    let dir_c = tempfile::tempdir().unwrap();
    let mut config_c = test_config_on(dir_c.path(), false);
    config_c.database = config_a.database.clone();
    copy_keys(&config_a.data_dir, &config_c.data_dir);
    let c = app::start(&config_c).await.unwrap();
    drop((a, c));
}
