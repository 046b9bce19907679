//! Key material every server holds in memory, with two servers on one
//! PostgreSQL database (the second on a copy of the first's data
//! directory): a rotation of the people key leaves every person readable
//! on both, before, during and after it, and a push certificate installed
//! or renewed through one server wakes devices through the other.

use crate::common::{client_trusting, copy_keys, role_token, test_config_on};
use mamori::app::{self, Running};
use mamori::config::Config;
use mamori_sim::{DeviceKind, SimDevice, SimOptions};
use mamori_testkit::apns::{new_topic, Ca, StandIn};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A server's configuration on a fresh PostgreSQL database (reads of
/// personal data unlimited: the tests read everyone many times).
fn first_config(dir: &Path) -> Config {
    let mut config = test_config_on(dir, true);
    config.bulk_read_threshold = 1_000_000;
    config
}

/// Another server's configuration on the same database, its data
/// directory a copy of `from`'s (the same keys).
fn copy_config(from: &Config, dir: &Path) -> Config {
    let mut config = from.clone();
    config.data_dir = dir.join("data");
    copy_keys(&from.data_dir, &config.data_dir);
    config
}

fn database_url(config: &Config) -> String {
    match &config.database {
        mamori::config::Database::Postgres(url) => url.clone(),
        mamori::config::Database::Embedded => panic!("not on PostgreSQL"),
    }
}

/// A person created through the server at `admin`: (ID, e-mail).
async fn create(
    http: &reqwest::Client,
    token: &str,
    admin: SocketAddr,
    tag: &str,
) -> (String, String) {
    let email = format!("{tag}@example.jp");
    let r = http
        .post(format!("https://{admin}/api/v1/people"))
        .bearer_auth(token)
        .json(&json!({"name": format!("Person {tag}"), "user_id": tag, "email": email}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 201, "creating {tag} through {admin}: {body}");
    (body["id"].as_str().unwrap().to_owned(), email)
}

/// Every person of `people` reads back, unsealed, through every server:
/// one by one, and all in one page.
async fn all_readable(
    http: &reqwest::Client,
    token: &str,
    servers: &[SocketAddr],
    people: &[(String, String)],
) {
    for admin in servers {
        for (id, email) in people {
            let r = http
                .get(format!("https://{admin}/api/v1/people/{id}/personal-data"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            assert_eq!(status, 200, "{id} through {admin}: {body}");
            assert_eq!(body["email"], email.as_str(), "{id} through {admin}");
        }
        let r = http
            .get(format!(
                "https://{admin}/api/v1/people/personal-data?limit=1000"
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the page through {admin}");
        let page: Value = r.json().await.unwrap();
        assert_eq!(page["people"].as_array().unwrap().len(), people.len());
    }
}

/// `mamori keys rotate` on `config`'s data directory and database.
async fn rotate(config: &Config, extra: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mamori"));
    cmd.args(["keys", "rotate", "--settle-secs", "5", "--data-dir"])
        .arg(&config.data_dir)
        .args(extra)
        .env("MAMORI_DATABASE_URL", database_url(config))
        .env_remove("MAMORI_PEOPLE_KEY");
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// The IDs of the keys in a data directory's `people.key`, in order.
fn key_ids(dir: &Path) -> Vec<String> {
    mamori::keys::read_people_key_file(dir)
        .unwrap()
        .unwrap()
        .iter()
        .map(|k| mamori_core::people::vault::LocalKeyring::key_id(k))
        .collect()
}

/// Waits (at most 10 s) for `done`.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not within 10 s: {what}");
}

/// Creates people through both servers in turn until stopped.
fn arrivals(
    http: &reqwest::Client,
    token: &str,
    servers: [SocketAddr; 2],
    tag: &'static str,
) -> (
    Arc<AtomicBool>,
    tokio::task::JoinHandle<Vec<(String, String)>>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let (http, token, stopped) = (http.clone(), token.to_owned(), Arc::clone(&stop));
    let task = tokio::spawn(async move {
        let mut made = Vec::new();
        for n in 0.. {
            if stopped.load(Ordering::Relaxed) {
                break;
            }
            let admin = servers[n % 2];
            made.push(create(&http, &token, admin, &format!("{tag}-{n}")).await);
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        made
    });
    (stop, task)
}

// Length: one scenario, before, during and after a rotation, told in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_of_the_people_key_leaves_every_person_readable_on_both_servers() {
    let (dir_a, dir_b, dir_c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let config_a = first_config(dir_a.path());
    let a = app::start(&config_a).await.unwrap();
    let config_b = copy_config(&config_a, dir_b.path());
    let b = app::start(&config_b).await.unwrap();
    let owner = role_token(&a.services, "rotation-owner", "owner").await;
    let officer = role_token(&a.services, "rotation-officer", "security_officer").await;
    let http = client_trusting(&std::fs::read(a.tls_ca_path.as_ref().unwrap()).unwrap());
    let both = [a.admin_addr, b.admin_addr];
    let old = key_ids(&config_a.data_dir);
    assert_eq!(old.len(), 1);

    // Before: a person made through each server reads on both.
    let mut people = vec![
        create(&http, &owner, a.admin_addr, "before-a").await,
        create(&http, &owner, b.admin_addr, "before-b").await,
    ];
    all_readable(&http, &officer, &both, &people).await;

    // The rotation is prepared on A's host: a new key in A's people.key
    // (A loads it), B named as lacking it. Rotating now is refused, naming
    // B: nothing is re-wrapped, every server still wraps with the old key.
    let out = rotate(&config_a, &["--prepare"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(b.job_holder()), "{stdout}");
    assert!(!stdout.contains(a.job_holder()), "{stdout}");
    let out = rotate(&config_a, &[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(b.job_holder()), "{stderr}");
    assert!(!stderr.contains(a.job_holder()), "{stderr}");
    assert!(
        stderr.contains("Copy") && stderr.contains(&*config_a.data_dir.to_string_lossy()),
        "{stderr}"
    );
    let prepared = key_ids(&config_a.data_dir);
    assert_eq!(prepared.len(), 2);
    assert_eq!(prepared[0], old[0], "the current key stays first");
    let new = prepared[1].clone();
    assert_eq!(a.services.store.people_keys_wrapping().await.unwrap(), old);
    assert_eq!(
        a.services.store.people_key_choice().await.unwrap(),
        mamori_ports::PeopleKeyChoice {
            current: Some(old[0].clone()),
            next: Some(new.clone())
        }
    );

    // During (prepared): people made through either server read on both.
    people.push(create(&http, &owner, b.admin_addr, "prepared-b").await);
    people.push(create(&http, &owner, a.admin_addr, "prepared-a").await);
    all_readable(&http, &officer, &both, &people).await;
    assert_eq!(a.services.store.people_keys_wrapping().await.unwrap(), old);

    // A third server with the old people.key is refused: it could not
    // read people once the prepared key is current.
    let config_c = copy_config(&config_b, dir_c.path());
    let refused = app::start(&config_c).await.unwrap_err().to_string();
    assert!(
        refused.contains(&new) && refused.contains("prepared") && refused.contains("people.key"),
        "{refused}"
    );

    // B gets A's people.key; the rotation runs again while people keep
    // arriving through both servers.
    std::fs::copy(
        config_a.data_dir.join("people.key"),
        config_b.data_dir.join("people.key"),
    )
    .unwrap();
    eventually("B loads the new key", || b.services.vault.has(&new)).await;
    let (stop, during) = arrivals(&http, &owner, both, "during");
    let out = rotate(&config_a, &[]).await;
    stop.store(true, Ordering::Relaxed);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("current {new}")), "{stdout}");
    assert!(stdout.contains(b.job_holder()), "{stdout}");
    let during = during.await.unwrap();
    assert!(during.len() >= 4, "{during:?}");
    people.extend(during);

    // After: A's people.key holds the new key alone (the old one is in its
    // retired file); B's copy still holds both; every person's data key is
    // under the new key, and both servers wrap with it.
    assert_eq!(key_ids(&config_a.data_dir), vec![new.clone()]);
    assert_eq!(key_ids(&config_b.data_dir).len(), 2);
    for s in [&a, &b] {
        assert_eq!(s.services.vault.current_id(), new);
    }
    people.push(create(&http, &owner, a.admin_addr, "after-a").await);
    people.push(create(&http, &owner, b.admin_addr, "after-b").await);
    assert_eq!(
        a.services.store.people_keys_wrapping().await.unwrap(),
        vec![new.clone()]
    );
    all_readable(&http, &officer, &both, &people).await;

    // B gets the final people.key: the retired key leaves its memory too,
    // and everyone still reads.
    std::fs::copy(
        config_a.data_dir.join("people.key"),
        config_b.data_dir.join("people.key"),
    )
    .unwrap();
    eventually("B drops the retired key", || !b.services.vault.has(&old[0])).await;
    all_readable(&http, &officer, &both, &people).await;
    stop_both(a, b).await;
}

async fn stop_both(a: Running, b: Running) {
    a.stop(Duration::from_secs(5)).await;
    b.stop(Duration::from_secs(5)).await;
}

/// A server's people.key rewritten without a key the database needs is
/// not loaded: the server keeps its keys and goes on reading everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_people_key_file_without_the_keys_in_use_is_not_loaded() {
    let dir_a = tempfile::tempdir().unwrap();
    let config_a = first_config(dir_a.path());
    let a = app::start(&config_a).await.unwrap();
    let owner = role_token(&a.services, "reload-owner", "owner").await;
    let officer = role_token(&a.services, "reload-officer", "security_officer").await;
    let http = client_trusting(&std::fs::read(a.tls_ca_path.as_ref().unwrap()).unwrap());
    let people = vec![create(&http, &owner, a.admin_addr, "kept").await];
    let before = key_ids(&config_a.data_dir);
    let stray = zeroize::Zeroizing::new(vec![7u8; 32]);
    mamori::keys::write_people_keys(&config_a.data_dir, std::slice::from_ref(&stray)).unwrap();
    let stray_id = mamori_core::people::vault::LocalKeyring::key_id(&stray);
    // Three looks at the file later, the ring is what it was.
    tokio::time::sleep(app::KEY_POLL * 3).await;
    assert_eq!(a.services.vault.current_id(), before[0]);
    assert!(!a.services.vault.has(&stray_id));
    all_readable(&http, &officer, &[a.admin_addr], &people).await;
    a.stop(Duration::from_secs(5)).await;
}

/// Two servers on one database, both pointed at the APNs stand-in: a push
/// certificate installed through A, then renewed through A, wakes the
/// device for a command queued through B, each time with the certificate
/// just installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_certificate_installed_on_one_server_wakes_devices_through_the_other() {
    let apple = Ca::new("Test Apple CA");
    let stand_in = StandIn::start(&apple, &apple).await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ca_path = dir_a.path().join("apns-ca.pem");
    std::fs::write(&ca_path, apple.pem()).unwrap();
    let mut config_a = first_config(dir_a.path());
    config_a.apns_url = stand_in.url.clone();
    config_a.apns_ca = Some(ca_path);
    let a = app::start(&config_a).await.unwrap();
    let config_b = copy_config(&config_a, dir_b.path());
    let b = app::start(&config_b).await.unwrap();
    assert_eq!(b.services.pusher.topic(), None);
    let owner = role_token(&a.services, "push-owner", "owner").await;
    let ca = std::fs::read(a.tls_ca_path.as_ref().unwrap()).unwrap();
    let http = client_trusting(&ca);
    let install = |cert: String, key: String| {
        let (http, owner) = (http.clone(), owner.clone());
        async move {
            let r = http
                .put(format!("https://{}/api/v1/push-certificate", a.admin_addr))
                .bearer_auth(&owner)
                .json(&json!({ "certificate_pem": cert, "private_key_pem": key }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    };
    let topic = new_topic();
    let (first, first_key) = apple.push_cert(Some(&topic));
    install(first.clone(), first_key).await;

    // A device enrolled through A (its profile names the topic).
    let profile = http
        .post(format!(
            "https://{}/api/v1/enrollment-profiles",
            a.admin_addr
        ))
        .bearer_auth(&owner)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut dev = SimDevice::new(DeviceKind::IPhone, SimOptions::default());
    dev.enroll(&profile, Some(&ca)).await.unwrap();

    // A command queued through B wakes it with the certificate A installed,
    // within seconds (B follows the stored certificate); then again with
    // the renewal A installed.
    let through_b = Woken {
        http: &http,
        token: &owner,
        admin: b.admin_addr,
        dev: &dev,
        topic: &topic,
        stand_in: &stand_in,
    };
    through_b.with(&first, "installed").await;
    assert_eq!(b.services.pusher.topic(), Some(topic.clone()));
    let (renewed, renewed_key) = apple.push_cert(Some(&topic));
    install(renewed.clone(), renewed_key).await;
    through_b.with(&renewed, "renewed").await;
    stop_both(a, b).await;
}

/// Commands queued through one server, and the device they must wake.
struct Woken<'a> {
    http: &'a reqwest::Client,
    token: &'a str,
    admin: SocketAddr,
    dev: &'a SimDevice,
    topic: &'a str,
    stand_in: &'a StandIn,
}

impl Woken<'_> {
    /// Queues a command until the device is woken with `cert` (PEM); at
    /// most 10 s.
    async fn with(&self, cert: &str, round: &str) {
        let want = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        let path = format!("/3/device/{}", hex::encode(self.dev.push_token()));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let r = self
                .http
                .post(format!("https://{}/api/v1/commands", self.admin))
                .bearer_auth(self.token)
                .json(&json!({
                    "devices": [self.dev.udid()],
                    "command": {"RequestType": "ProfileList"}
                }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let pushed = self.stand_in.wait_for(1).await;
            let woke = pushed.iter().any(|p| {
                p.path == path
                    && p.headers["apns-topic"] == self.topic
                    && p.client_cert.as_ref() == Some(&want)
            });
            if woke {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the device was not woken with the {round} certificate within 10 s"
            );
        }
    }
}

/// Keys from `MAMORI_PEOPLE_KEY`: the new key is named (`--next`), the
/// database makes it current, everyone is re-wrapped, and a server holding
/// the new key alone reads everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_the_environment_rotate_to_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::common::test_config(dir.path());
    config.bulk_read_threshold = 1_000_000;
    let a = app::start(&config).await.unwrap();
    let owner = role_token(&a.services, "env-owner", "owner").await;
    let officer = role_token(&a.services, "env-officer", "security_officer").await;
    let http = client_trusting(&std::fs::read(a.tls_ca_path.as_ref().unwrap()).unwrap());
    let people = vec![create(&http, &owner, a.admin_addr, "env").await];
    a.stop(Duration::from_secs(5)).await;
    let old_hex = std::fs::read_to_string(config.data_dir.join("people.key")).unwrap();
    let old = key_ids(&config.data_dir);
    let new_key = zeroize::Zeroizing::new(vec![9u8; 32]);
    let new = mamori_core::people::vault::LocalKeyring::key_id(&new_key);
    let ring = format!("{},{}", old_hex.trim(), hex::encode(new_key.as_slice()));
    let run = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mamori"));
        cmd.args(["keys", "rotate", "--settle-secs", "1", "--data-dir"])
            .arg(&config.data_dir)
            .args(extra)
            .env("MAMORI_PEOPLE_KEY", &ring);
        if let mamori::config::Database::Postgres(url) = &config.database {
            cmd.env("MAMORI_DATABASE_URL", url);
        }
        cmd.output().unwrap()
    };
    // Which key is new is the operator's to say: refused, the IDs listed.
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("--next") && stderr.contains(&new) && stderr.contains(&old[0]),
        "{stderr}"
    );
    let out = run(&["--next", &new]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("current {new}")), "{stdout}");
    assert!(
        stdout.contains("Remove") && stdout.contains(&old[0]),
        "{stdout}"
    );
    // The data directory's file is the operator's too: left as it was.
    assert_eq!(key_ids(&config.data_dir), old);

    // A server with the new key alone reads everyone and makes more; one
    // with the old key alone is refused.
    mamori::keys::write_people_keys(&config.data_dir, std::slice::from_ref(&new_key)).unwrap();
    let b = app::start(&config).await.unwrap();
    assert_eq!(b.services.vault.current_id(), new);
    let mut people = people;
    people.push(create(&http, &owner, b.admin_addr, "env-after").await);
    all_readable(&http, &officer, &[b.admin_addr], &people).await;
    b.stop(Duration::from_secs(5)).await;
    std::fs::write(config.data_dir.join("people.key"), &old_hex).unwrap();
    let refused = app::start(&config).await.unwrap_err().to_string();
    assert!(refused.contains("people key"), "{refused}");
}
