//! Compliance: a device on an OS version known to be vulnerable is
//! quarantined (its Wi-Fi profile withheld, or removed) and reported, and
//! gets the profile back once it has updated.

use crate::common::{spawn_app, TestApp};
use mamori_sim::{DeviceKind, SimDevice, SimOptions};
use serde_json::{json, Value};

async fn put(app: &TestApp, path: &str, body: Value) -> u16 {
    app.send(reqwest::Method::PUT, path, Some(body)).await.0
}

fn has(d: &SimDevice, ident: &str) -> bool {
    d.state().profiles.iter().any(|p| p.identifier == ident)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vulnerable_device_is_quarantined_and_restored_after_updating() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let mut good = SimDevice::new(DeviceKind::IPhone, SimOptions::default());
    good.set_os_version("18.6.2");
    let profile = app.profile(json!({})).await;
    good.enroll(&profile, Some(&app.tls_ca_pem)).await.unwrap();
    // The simulator's iPhone runs iOS 18.1: before the fix of CVE-2025-43300.
    let mut old = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let r = app
        .post(
            "/api/v1/policies",
            json!({"name": "Passcode", "kind": "passcode", "settings": {"forcePIN": true}}),
        )
        .await;
    let pass: Value = r.json().await.unwrap();
    let r = app.post("/api/v1/policies", json!({"name": "Corp Wi-Fi", "kind": "wifi", "settings": {"SSID_STR": "Corp", "EncryptionType": "WPA2", "Password": "corp-pass-5511"}})).await;
    let wifi: Value = r.json().await.unwrap();
    let wifi_ident = format!("com.mamori.policy.{}", wifi["id"].as_str().unwrap());
    let r = app.post("/api/v1/groups", json!({"name": "Fleet"})).await;
    let g: Value = r.json().await.unwrap();
    let gid = g["id"].as_str().unwrap();
    app.post(
        &format!("/api/v1/groups/{gid}/devices"),
        json!({"add": [good.udid(), old.udid()]}),
    )
    .await;
    assert_eq!(
        put(
            &app,
            &format!("/api/v1/groups/{gid}/policies"),
            json!({"policies": [pass["id"], wifi["id"]]})
        )
        .await,
        200
    );
    assert_eq!(
        put(
            &app,
            &format!("/api/v1/groups/{gid}/compliance"),
            json!({"min_os": {"iOS": "17.0"}, "quarantine": true})
        )
        .await,
        204
    );
    assert_eq!(
        put(
            &app,
            &format!("/api/v1/groups/{gid}/compliance"),
            json!({"min_os": {"Windows": "11"}})
        )
        .await,
        400
    );

    let r = s
        .reconcile_once(&crate::common::authorized(), 5000)
        .await
        .unwrap();
    assert_eq!(r.installs, 3, "Wi-Fi withheld from the old one: {r:?}");
    good.run_queue().await.unwrap();
    old.run_queue().await.unwrap();
    assert!(has(&good, &wifi_ident));
    assert!(!has(&old, &wifi_ident));
    let (st, rep) = app.get("/api/v1/reports/compliance").await;
    assert_eq!(st, 200, "{rep}");
    assert_eq!(
        (
            rep["devices"].as_u64(),
            rep["compliant"].as_u64(),
            rep["quarantined"].as_u64()
        ),
        (Some(2), Some(1), Some(1)),
        "{rep}"
    );
    assert_eq!(rep["by_reason"]["os_vulnerable"], 1);
    let bad = &rep["non_compliant"][0];
    assert_eq!(bad["udid"], old.udid());
    assert!(
        bad["reasons"].to_string().contains("CVE-2025-43300"),
        "{bad}"
    );

    // The old one updates; the next inventory shows it; it gets Wi-Fi.
    old.set_os_version("18.6.2");
    app.enqueue(
        &[old.udid()],
        json!({"RequestType": "DeviceInformation", "Queries": ["OSVersion"]}),
    )
    .await;
    old.run_queue().await.unwrap();
    let r = s
        .reconcile_once(&crate::common::authorized(), 5000)
        .await
        .unwrap();
    assert_eq!((r.installs, r.removals), (1, 0), "{r:?}");
    old.run_queue().await.unwrap();
    assert!(has(&old, &wifi_ident));
    let (_, rep) = app.get("/api/v1/reports/compliance").await;
    assert_eq!(rep["compliant"], 2, "{rep}");

    // A stricter rule makes both non-compliant: Wi-Fi is taken away from
    // devices that have it, and comes back when the rule is relaxed.
    assert_eq!(
        put(
            &app,
            &format!("/api/v1/groups/{gid}/compliance"),
            json!({"min_os": {"iOS": "19.0"}, "quarantine": true})
        )
        .await,
        204
    );
    let r = s
        .reconcile_once(&crate::common::authorized(), 5000)
        .await
        .unwrap();
    assert_eq!((r.installs, r.removals), (0, 2), "{r:?}");
    good.run_queue().await.unwrap();
    old.run_queue().await.unwrap();
    assert!(!has(&good, &wifi_ident) && !has(&old, &wifi_ident));
    assert!(
        good.state()
            .profiles
            .iter()
            .any(|p| p.identifier.ends_with(pass["id"].as_str().unwrap())),
        "the passcode stays"
    );
    let (_, rep) = app.get("/api/v1/reports/compliance").await;
    assert_eq!(rep["by_reason"]["os_below_minimum"], 2, "{rep}");
    assert_eq!(
        put(
            &app,
            &format!("/api/v1/groups/{gid}/compliance"),
            json!(null)
        )
        .await,
        204
    );
    let r = s
        .reconcile_once(&crate::common::authorized(), 5000)
        .await
        .unwrap();
    assert_eq!(r.installs, 2, "{r:?}");
}
