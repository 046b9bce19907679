//! `ApnsPusher` against a local HTTP/2 + mutual-TLS stand-in for APNs.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mamori_domain::DeviceKey;
use mamori_ports::{PushTarget, Pusher};
use mamori_push::{ApnsPusher, PushCredentials, PushError};
use mamori_testkit::apns::{new_topic, Ca, Reply, StandIn};
use rcgen::KeyPair;
use rustls_pki_types::CertificateDer;

/// Answers 400 BadDeviceToken for the given hex tokens.
fn bad_tokens<const N: usize>(tokens: [String; N]) -> HashMap<String, Reply> {
    tokens
        .into_iter()
        .map(|t| (t, Reply::bad_device_token()))
        .collect()
}

fn targets(topic: &str, n: u8) -> Vec<PushTarget> {
    (0..n)
        .map(|i| PushTarget {
            device: DeviceKey::parse(&format!("00008030-00000000000000{i:02X}")).unwrap(),
            token: vec![0xA0 + i; 32],
            push_magic: format!("MAGIC-{i}-{}", uuid::Uuid::new_v4()),
            topic: topic.to_owned(),
        })
        .collect()
}

/// An "Apple" CA signing the push certificate, a separate CA for the server.
struct Setup {
    apple: Ca,
    server_ca: Ca,
    topic: String,
    cert_pem: String,
    key_pem: String,
}

fn setup() -> Setup {
    let apple = Ca::new("Test Apple Push CA");
    let server_ca = Ca::new("Test APNs Server CA");
    let topic = new_topic();
    let (cert_pem, key_pem) = apple.push_cert(Some(&topic));
    Setup {
        apple,
        server_ca,
        topic,
        cert_pem,
        key_pem,
    }
}

fn pusher(s: &Setup, stand_in: &StandIn) -> ApnsPusher {
    ApnsPusher::new(&stand_in.url, vec![s.server_ca.der()]).unwrap()
}

fn pem_der(pem: &str) -> CertificateDer<'static> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

#[tokio::test]
async fn pushes_every_target_over_http2_with_the_push_certificate() {
    let s = setup();
    let stand_in = StandIn::start(&s.server_ca, &s.apple).await;
    let pusher = pusher(&s, &stand_in);
    pusher
        .set_credentials(PushCredentials::parse(&s.cert_pem, &s.key_pem).unwrap())
        .unwrap();
    assert_eq!(pusher.topic().as_deref(), Some(s.topic.as_str()));

    let targets = targets(&s.topic, 3);
    assert_eq!(pusher.push(&targets).await, 3);

    let mut recorded = stand_in.take();
    assert_eq!(recorded.len(), 3);
    recorded.sort_by(|a, b| a.path.cmp(&b.path));
    let push_cert = pem_der(&s.cert_pem);
    for (r, t) in recorded.iter().zip(&targets) {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, format!("/3/device/{}", hex::encode(&t.token)));
        assert_eq!(r.headers["apns-topic"], s.topic.as_str());
        assert_eq!(r.headers["apns-push-type"], "mdm");
        assert_eq!(r.headers["apns-priority"], "10");
        assert!(r.headers.get("apns-expiration").is_none());
        assert_eq!(
            r.headers["content-type"].to_str().unwrap(),
            "application/json"
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body, serde_json::json!({ "mdm": t.push_magic }));
        assert_eq!(r.client_cert.as_ref(), Some(&push_cert));
    }
}

#[tokio::test]
async fn counts_only_the_notifications_apns_accepts() {
    let s = setup();
    let targets = targets(&s.topic, 3);
    let bad = bad_tokens([hex::encode(&targets[1].token)]);
    let stand_in = StandIn::start_with(&s.server_ca, &s.apple, bad).await;
    let pusher = pusher(&s, &stand_in);
    pusher
        .set_credentials(PushCredentials::parse(&s.cert_pem, &s.key_pem).unwrap())
        .unwrap();

    assert_eq!(pusher.push(&targets).await, 2);
    assert_eq!(stand_in.take().len(), 3);
}

#[tokio::test]
async fn without_credentials_nothing_is_sent_until_configured() {
    let s = setup();
    let stand_in = StandIn::start(&s.server_ca, &s.apple).await;
    let pusher = pusher(&s, &stand_in);
    let targets = targets(&s.topic, 3);

    assert_eq!(pusher.topic(), None);
    assert_eq!(pusher.push(&targets).await, 0);
    assert_eq!(pusher.push(&targets).await, 0);
    assert!(stand_in.take().is_empty());

    // Through the port, as the core installs it.
    let port: &dyn Pusher = &pusher;
    assert_eq!(port.configure(&s.cert_pem, &s.key_pem), Ok(s.topic.clone()));
    assert_eq!(port.topic(), Some(s.topic.clone()));
    assert_eq!(port.push(&targets).await, 3);
    assert_eq!(stand_in.take().len(), 3);

    pusher.clear_credentials();
    assert_eq!(pusher.push(&targets).await, 0);
    assert!(stand_in.take().is_empty());
}

#[tokio::test]
async fn credentials_are_hot_swapped() {
    let s = setup();
    let stand_in = StandIn::start(&s.server_ca, &s.apple).await;
    let pusher = pusher(&s, &stand_in);
    pusher
        .set_credentials(PushCredentials::parse(&s.cert_pem, &s.key_pem).unwrap())
        .unwrap();
    assert_eq!(pusher.push(&targets(&s.topic, 1)).await, 1);

    let topic2 = new_topic();
    let (cert2, key2) = s.apple.push_cert(Some(&topic2));
    pusher
        .set_credentials(PushCredentials::parse(&cert2, &key2).unwrap())
        .unwrap();
    assert_eq!(pusher.topic(), Some(topic2.clone()));
    assert_eq!(pusher.push(&targets(&topic2, 2)).await, 2);
    // Devices enrolled under the old topic are not pushed with the new cert.
    assert_eq!(pusher.push(&targets(&s.topic, 1)).await, 0);

    let recorded = stand_in.take();
    assert_eq!(recorded.len(), 3);
    let new_cert = pem_der(&cert2);
    for r in &recorded[1..] {
        assert_eq!(r.headers["apns-topic"], topic2.as_str());
        assert_eq!(r.client_cert.as_ref(), Some(&new_cert));
    }
}

#[tokio::test]
async fn refuses_an_untrusted_apns_server() {
    let (logs, subscriber) = capture_logs();
    let _guard = tracing::subscriber::set_default(subscriber);
    let s = setup();
    let stand_in = StandIn::start(&s.server_ca, &s.apple).await;
    let other_root = Ca::new("Someone else");
    let pusher = ApnsPusher::new(&stand_in.url, vec![other_root.der()]).unwrap();
    pusher
        .set_credentials(PushCredentials::parse(&s.cert_pem, &s.key_pem).unwrap())
        .unwrap();
    assert_eq!(pusher.push(&targets(&s.topic, 2)).await, 0);
    assert!(stand_in.take().is_empty());
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("APNs request failed"), "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(!text.contains("/3/device/"), "{text}");
}

#[tokio::test]
async fn a_push_certificate_apns_does_not_trust_is_refused() {
    let s = setup();
    let stand_in = StandIn::start(&s.server_ca, &s.apple).await;
    let pusher = pusher(&s, &stand_in);
    let rogue = Ca::new("Not Apple");
    let (cert, key) = rogue.push_cert(Some(&s.topic));
    pusher
        .set_credentials(PushCredentials::parse(&cert, &key).unwrap())
        .unwrap();
    assert_eq!(pusher.push(&targets(&s.topic, 1)).await, 0);
    assert!(stand_in.take().is_empty());
}

#[test]
fn parse_extracts_topic_and_expiry() {
    let s = setup();
    let creds = PushCredentials::parse(&s.cert_pem, &s.key_pem).unwrap();
    assert_eq!(creds.topic(), s.topic);
    // rcgen's default validity ends in 4096.
    assert!(creds.not_after() > time::OffsetDateTime::now_utc());
    assert!(!creds.is_expired(time::OffsetDateTime::now_utc()));
    assert_eq!(creds.cert_pem(), s.cert_pem);

    // A chain (leaf first) is accepted; the topic is the leaf's.
    let chain = format!("{}{}", s.cert_pem, s.apple.pem());
    assert_eq!(
        PushCredentials::parse(&chain, &s.key_pem).unwrap().topic(),
        s.topic
    );
}

#[test]
fn parse_refuses_a_key_that_is_not_the_certificates() {
    let s = setup();
    let other = KeyPair::generate().unwrap().serialize_pem();
    assert!(matches!(
        PushCredentials::parse(&s.cert_pem, &other),
        Err(PushError::KeyMismatch)
    ));
}

#[test]
fn parse_refuses_garbage_and_non_mdm_certificates() {
    let s = setup();
    assert!(matches!(
        PushCredentials::parse("", &s.key_pem),
        Err(PushError::NoCertificate)
    ));
    assert!(matches!(
        PushCredentials::parse(&s.cert_pem, "not a key"),
        Err(PushError::BadKey(_))
    ));
    let (cert, key) = s.apple.push_cert(None);
    assert!(matches!(
        PushCredentials::parse(&cert, &key),
        Err(PushError::NoTopic)
    ));
    let (cert, key) = s.apple.push_cert(Some("com.example.app"));
    assert!(matches!(
        PushCredentials::parse(&cert, &key),
        Err(PushError::NotMdmTopic(t)) if t == "com.example.app"
    ));
}

#[test]
fn debug_never_shows_the_key() {
    let s = setup();
    let creds = PushCredentials::parse(&s.cert_pem, &s.key_pem).unwrap();
    let shown = format!("{creds:?}");
    assert!(shown.contains(&s.topic));
    assert!(!shown.contains("PRIVATE KEY"));
    let body = s.key_pem.lines().nth(1).unwrap();
    assert!(!shown.contains(body));
}

#[test]
fn pusher_refuses_non_https_base_urls() {
    assert!(matches!(
        ApnsPusher::new("http://api.push.apple.com", Vec::new()),
        Err(PushError::BadUrl(_))
    ));
    assert!(matches!(
        ApnsPusher::new("not a url", Vec::new()),
        Err(PushError::BadUrl(_))
    ));
    let p = ApnsPusher::new(&format!("{}/", mamori_push::DEFAULT_BASE_URL), Vec::new()).unwrap();
    assert_eq!(p.base_url(), "https://api.push.apple.com");
}

/// Collects log output.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> (LogBuf, impl tracing::Subscriber + Send + Sync) {
    let logs = LogBuf::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (logs, subscriber)
}

#[tokio::test]
async fn refusals_are_logged_without_the_token_or_push_magic() {
    let (logs, subscriber) = capture_logs();
    let _guard = tracing::subscriber::set_default(subscriber);

    let s = setup();
    let targets = targets(&s.topic, 2);
    let bad_hex = hex::encode(&targets[0].token);
    let stand_in = StandIn::start_with(&s.server_ca, &s.apple, bad_tokens([bad_hex.clone()])).await;
    let pusher = pusher(&s, &stand_in);
    assert_eq!(pusher.push(&targets).await, 0);
    pusher
        .set_credentials(PushCredentials::parse(&s.cert_pem, &s.key_pem).unwrap())
        .unwrap();
    assert_eq!(pusher.push(&targets).await, 1);

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("no APNs push certificate installed"),
        "{text}"
    );
    assert!(text.contains("BadDeviceToken"), "{text}");
    assert!(text.contains("status=400"), "{text}");
    assert!(text.contains(&bad_hex[..8]), "{text}");
    for t in &targets {
        assert!(!text.contains(&hex::encode(&t.token)), "{text}");
        assert!(!text.contains(&t.push_magic), "{text}");
    }
    assert!(!text.contains("PRIVATE KEY"));
}
