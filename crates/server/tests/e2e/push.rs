//! APNs push through the real server: the push certificate installed over
//! the admin API, devices woken through a local HTTP/2 + mutual-TLS stand-in
//! for APNs, the certificate kept sealed across a restart.

use crate::common::{client_trusting, test_config, TestApp};
use mamori::config::Config;
use mamori_sim::{DeviceKind, SimDevice, SimOptions};
use mamori_testkit::apns::{new_topic, Ca, Recorded, StandIn};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};

/// The test "Apple" CA: signs the stand-in's TLS certificate and the push
/// certificates, and is the only client CA the stand-in accepts.
type Apple = Ca;

fn new_apple() -> Apple {
    Ca::new("Test Apple CA")
}

/// The APNs stand-in, serving and accepting certificates from `apple`;
/// answers 200 to everything and records it.
async fn start_stand_in(apple: &Apple) -> StandIn {
    StandIn::start(apple, apple).await
}

/// Starts the real server with APNs pointed at the stand-in; returns the app
/// and the config (to restart on the same data directory).
async fn spawn_app_with_apns(stand_in: &StandIn, apple: &Apple) -> (TestApp, Config) {
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("apns-ca.pem");
    std::fs::write(&ca_path, apple.pem()).unwrap();
    let mut config = test_config(dir.path());
    config.apns_url = stand_in.url.clone();
    config.apns_ca = Some(ca_path);
    let running = mamori::app::start(&config).await.unwrap();
    let token = super::common::role_token(&running.services, "e2e-push-owner", "owner").await;
    let tls_ca_pem = std::fs::read(running.tls_ca_path.as_ref().unwrap()).unwrap();
    let http = client_trusting(&tls_ca_pem);
    let app = TestApp {
        running,
        dir,
        token,
        tls_ca_pem,
        http,
    };
    (app, config)
}

async fn put_push_cert(app: &TestApp, cert_pem: &str, key_pem: &str) -> (u16, Value) {
    let r = app
        .http
        .put(app.admin_url("/api/v1/push-certificate"))
        .bearer_auth(&app.token)
        .json(&json!({ "certificate_pem": cert_pem, "private_key_pem": key_pem }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn enqueue(app: &TestApp, query: &str, devices: &[&str]) {
    let r = app
        .post(
            &format!("/api/v1/commands{query}"),
            json!({ "devices": devices, "command": {"RequestType": "ProfileList"} }),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// Asserts `r` is the MDM wake-up for `dev`, sent with the push certificate.
fn assert_push(r: &Recorded, dev: &SimDevice, topic: &str, push_cert: &CertificateDer<'_>) {
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.path,
        format!("/3/device/{}", hex::encode(dev.push_token()))
    );
    assert_eq!(r.headers["apns-topic"], topic);
    assert_eq!(r.headers["apns-push-type"], "mdm");
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body, json!({ "mdm": dev.push_magic() }));
    assert_eq!(r.client_cert.as_ref(), Some(push_cert), "push certificate");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_wake_devices_through_apns_with_the_installed_certificate() {
    let apple = new_apple();
    let stand_in = start_stand_in(&apple).await;
    let (app, config) = spawn_app_with_apns(&stand_in, &apple).await;
    let topic = new_topic();
    let (cert_pem, key_pem) = apple.push_cert(Some(&topic));
    let push_cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();

    // Install; then refusals leave the installed certificate in place.
    let (status, body) = put_push_cert(&app, &cert_pem, &key_pem).await;
    assert_eq!((status, body), (200, json!({ "topic": topic })));
    let other_topic = new_topic();
    let (other_cert, _) = apple.push_cert(Some(&other_topic));
    let (status, body) = put_push_cert(&app, &other_cert, &key_pem).await;
    assert_eq!(status, 400, "mismatched key: {body}");
    let (status, body) = put_push_cert(&app, "garbage", "more garbage").await;
    assert_eq!(status, 400, "garbage: {body}");
    assert_eq!(app.running.services.pusher.topic(), Some(topic.clone()));

    // New enrollment profiles name the push topic.
    let signed = app.profile(json!({})).await;
    let content = mamori_protocol::cms::verify_signed_data(&signed, None)
        .unwrap()
        .content;
    assert_eq!(
        mamori_sim::DeviceProfile::parse(&content).unwrap().topic,
        topic
    );

    let mut devices = Vec::new();
    for _ in 0..3 {
        devices.push(
            app.enrolled(DeviceKind::IPhone, SimOptions::default())
                .await,
        );
    }
    let udids: Vec<&str> = devices.iter().map(SimDevice::udid).collect();

    // A push-enabled enqueue wakes each device once.
    enqueue(&app, "", &udids).await;
    let recorded = stand_in.wait_for(3).await;
    assert_eq!(recorded.len(), 3, "one push per device");
    for dev in &devices {
        let path = format!("/3/device/{}", hex::encode(dev.push_token()));
        let r = recorded.iter().find(|r| r.path == path).expect(&path);
        assert_push(r, dev, &topic, &push_cert);
    }

    // ?push=false sends nothing (and nothing more came from the first).
    enqueue(&app, "?push=false", &udids).await;
    assert_eq!(stand_in.quiet_count().await, 0, "nothing pushed");

    // Restart on the same data directory: the certificate is reloaded.
    let TestApp {
        running,
        dir,
        token,
        ..
    } = app;
    running.shutdown();
    let running = mamori::app::start(&config).await.unwrap();
    let tls_ca_pem = std::fs::read(running.tls_ca_path.as_ref().unwrap()).unwrap();
    let app = TestApp {
        running,
        dir,
        token,
        http: client_trusting(&tls_ca_pem),
        tls_ca_pem,
    };
    assert_eq!(app.running.services.pusher.topic(), Some(topic.clone()));
    enqueue(&app, "", &[devices[1].udid()]).await;
    let recorded = stand_in.wait_for(1).await;
    assert_eq!(recorded.len(), 1, "pushed after restart");
    assert_push(&recorded[0], &devices[1], &topic, &push_cert);

    // The push key is stored sealed: neither its PEM body nor its DER
    // occurs in the database files (which do hold the device UDIDs).
    let data = app.dir.path().join("data");
    let mut raw = std::fs::read(data.join("mamori.db")).unwrap();
    if let Ok(wal) = std::fs::read(data.join("mamori.db-wal")) {
        raw.extend_from_slice(&wal);
    }
    assert!(contains(&raw, devices[0].udid().as_bytes()), "wrong file?");
    let key_line = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .max_by_key(|l| l.len())
        .unwrap();
    assert!(key_line.len() >= 40, "{key_line}");
    assert!(!contains(&raw, key_line.as_bytes()), "key PEM in plaintext");
    let key_der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let der = key_der.secret_der();
    assert!(
        !contains(&raw, &der[der.len() - 48..]),
        "key DER in plaintext"
    );
    app.running.shutdown();
}
