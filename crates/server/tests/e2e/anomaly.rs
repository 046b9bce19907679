//! Anomaly rules on the audit stream, end to end: a token used from a
//! network it never used raises `alert.new_network`; an actor locking many
//! devices at once raises `alert.mass_command` (high) and, by policy, is
//! suspended.

use crate::common::{client_from, role_token, spawn_with, TestApp};
use mamori_sim::{DeviceKind, SimOptions};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn records(app: &TestApp) -> Vec<Value> {
    let audit = app.audit_records().await;
    audit.clone()
}

async fn wait_for_record(app: &TestApp, action: &str, target: &str) -> Value {
    let start = Instant::now();
    loop {
        if let Some(r) = records(app)
            .await
            .into_iter()
            .find(|r| r["action"] == action && r["target"] == target)
        {
            return r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no {action} for {target}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn fast(c: &mut mamori::config::Config) {
    c.anomaly.poll = Duration::from_millis(50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_used_from_a_new_network_raises_an_alert() {
    let app = spawn_with(fast).await;
    let token = role_token(&app.running.services, "ci-bot", "device_admin").await;
    let profile = |http: reqwest::Client| {
        let url = app.admin_url("/api/v1/enrollment-profiles");
        let token = token.clone();
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for _ in 0..3 {
        assert_eq!(profile(client_from(&app, "127.0.0.1")).await, 200);
    }
    assert_eq!(profile(client_from(&app, "127.0.1.1")).await, 200);
    let tokens = app.running.services.store.list_tokens(None).await.unwrap();
    let t = tokens.iter().find(|t| t.name == "ci-bot token").unwrap();
    let label = format!("token:{}:ci-bot", t.id);
    let alert = wait_for_record(&app, "alert.new_network", &label).await;
    let detail = alert["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("severity=medium evidence=records "),
        "{detail}"
    );
    assert!(detail.contains("127.0.1.0/24"), "{detail}");
    // The evidence is the record made from the new network.
    let seq: i64 = detail
        .split("evidence=records ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let evidence = records(&app)
        .await
        .into_iter()
        .find(|r| r["seq"] == seq)
        .unwrap();
    assert_eq!(evidence["source"], "127.0.1.1");
    assert_eq!(evidence["actor"], label.as_str());
    // The old network raises nothing.
    assert_eq!(profile(client_from(&app, "127.0.0.1")).await, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let n = records(&app)
        .await
        .iter()
        .filter(|r| r["action"] == "alert.new_network")
        .count();
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locking_many_devices_at_once_suspends_the_actor() {
    let app = spawn_with(|c| {
        fast(c);
        c.anomaly.mass_command_devices = 3;
        c.anomaly.suspend_on_mass_command = true;
    })
    .await;
    let mut udids = Vec::new();
    for _ in 0..3 {
        let d = app
            .enrolled(DeviceKind::IPhone, SimOptions::default())
            .await;
        udids.push(d.info().udid.clone());
    }
    let token = role_token(&app.running.services, "rogue", "helpdesk").await;
    let lock = |devices: Vec<String>| {
        let http = app.http.clone();
        let url = app.admin_url("/api/v1/commands?push=false");
        let token = token.clone();
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({"devices": devices, "command": {"RequestType": "DeviceLock"}}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(lock(udids[..2].to_vec()).await, 200);
    assert_eq!(lock(udids[2..].to_vec()).await, 200);
    let tokens = app.running.services.store.list_tokens(None).await.unwrap();
    let t = tokens.iter().find(|t| t.name == "rogue token").unwrap();
    let label = format!("token:{}:rogue", t.id);
    let alert = wait_for_record(&app, "alert.mass_command", &label).await;
    assert!(alert["detail"]
        .as_str()
        .unwrap()
        .starts_with("severity=high"));
    let suspended = wait_for_record(&app, "actor.suspend", &label).await;
    assert!(suspended["detail"]
        .as_str()
        .unwrap()
        .contains("mass command"));
    assert_eq!(lock(udids[..1].to_vec()).await, 401, "the token is revoked");
}
