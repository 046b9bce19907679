//! Audit streaming: a webhook sink (HTTPS, HMAC-signed) that is down for a
//! while — first unreachable, then answering 503 — receives every record,
//! in order, once it is back; a syslog-over-TLS sink receives them too; the
//! status API shows the outage while it lasts.

use crate::common::{spawn_with, TestApp};
use mamori_testkit::apns::Ca;
use mamori_testkit::sink::{SyslogReceiver, WebhookReceiver};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn sink(app: &TestApp, name: &str) -> Value {
    let (status, body) = app.get("/api/v1/audit/sinks").await;
    assert_eq!(status, 200, "{body}");
    body["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap()
}

async fn wait_for(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn activity(app: &TestApp, n: usize) {
    for _ in 0..n {
        app.profile(json!({})).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_was_down_receives_every_record_once_it_is_back() {
    let ca = Ca::new("Sink test CA");
    let ca_dir = tempfile::tempdir().unwrap();
    let ca_path = ca_dir.path().join("sink-ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let syslog = SyslogReceiver::start(&ca).await;
    // A port nothing listens on yet: the webhook is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sinks = format!(
        "siem=https://127.0.0.1:{port}/hook?tenant=a,logs=syslog+tls://127.0.0.1:{}",
        syslog.port
    );
    let app = spawn_with(|c| {
        c.audit_sinks = mamori_sinks::SinkSpec::parse_list(&sinks).unwrap();
        c.audit_sink_ca = Some(ca_path.clone());
        c.audit_sink_poll = Duration::from_millis(50);
        c.audit_sink_max_backoff = Duration::from_millis(300);
    })
    .await;
    activity(&app, 4).await;

    // Down: the status says so; nothing is lost.
    wait_for("the webhook reported failing", async || {
        sink(&app, "siem").await["failing_since"].is_string()
    })
    .await;
    let s = sink(&app, "siem").await;
    assert_eq!(s["kind"], "webhook");
    assert_eq!(
        s["target"],
        format!("https://127.0.0.1:{port}/hook"),
        "no query string shown"
    );
    assert_eq!(s["last_error"], "cannot connect");
    assert_eq!(s["delivered_seq"], 0);
    assert!(s["behind"].as_i64().unwrap() > 0, "{s}");
    activity(&app, 4).await;

    // Back, but refusing the first two deliveries.
    let (hook, _) = WebhookReceiver::start(&ca, port, 2).await;
    activity(&app, 2).await;
    let last = app
        .running
        .services
        .store
        .last_audit_hash()
        .await
        .unwrap()
        .unwrap()
        .0;
    wait_for("both sinks caught up", async || {
        sink(&app, "siem").await["delivered_seq"].as_i64().unwrap() >= last
            && sink(&app, "logs").await["delivered_seq"].as_i64().unwrap() >= last
    })
    .await;
    let s = sink(&app, "siem").await;
    assert!(
        s["failing_since"].is_null() && s["last_error"].is_null(),
        "{s}"
    );

    // Every record, in order, each batch signed with the sink's key.
    let key = hex::decode(
        std::fs::read_to_string(app.dir.path().join("data/audit-sink-siem.key")).unwrap(),
    )
    .unwrap();
    let deliveries = hook.deliveries();
    assert_eq!(deliveries[0].status, 503);
    assert_eq!(deliveries[1].status, 503);
    let mut seqs = Vec::new();
    for d in &deliveries {
        let sig = d.headers["x-mamori-signature"].to_str().unwrap();
        assert!(
            mamori_sinks::format::verify_webhook_signature(&key, sig, &d.body),
            "bad signature"
        );
        assert!(!mamori_sinks::format::verify_webhook_signature(
            b"wrong key",
            sig,
            &d.body
        ));
        let body: Value = serde_json::from_slice(&d.body).unwrap();
        assert_eq!(body["sink"], "siem");
        if d.status == 200 {
            for r in body["records"].as_array().unwrap() {
                seqs.push(r["seq"].as_i64().unwrap());
            }
        }
    }
    let expected: Vec<i64> = (1..=last).collect();
    assert_eq!(
        &seqs[..last as usize],
        expected.as_slice(),
        "every record once, in order"
    );
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
    // The refused batches were sent again from the same record.
    let first_of = |i: usize| {
        serde_json::from_slice::<Value>(&deliveries[i].body).unwrap()["records"][0]["seq"].clone()
    };
    assert_eq!(first_of(0), json!(1));
    assert_eq!(first_of(2), json!(1));

    // Syslog got every record too, as RFC 5424 with its sequence number.
    let mut logged: Vec<i64> = syslog
        .messages()
        .iter()
        .map(|m| {
            assert!(m.starts_with('<') && m.contains(">1 "), "{m}");
            let at = m.find("seq=\"").unwrap() + 5;
            m[at..].split('"').next().unwrap().parse().unwrap()
        })
        .collect();
    logged.dedup();
    assert_eq!(&logged[..last as usize], expected.as_slice());
}
