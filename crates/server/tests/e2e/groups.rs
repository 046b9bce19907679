//! Groups and desired state: a group of 50 simulated devices converges to
//! its policies (each device gets and installs the profiles), stays put
//! when reconciled again, and a device taken out of the group has the
//! profiles removed; a dynamic group follows the inventory; a policy
//! update reaches every device as a new version of the same profile.

use crate::common::{spawn_app, TestApp};
use mamori_sim::{DeviceKind, SimDevice, SimOptions};
use serde_json::{json, Value};

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    app.send(reqwest::Method::POST, path, Some(body)).await
}

async fn put(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    app.send(reqwest::Method::PUT, path, Some(body)).await
}

/// The Mamori policy profiles installed on a device, sorted.
pub(crate) fn installed(d: &SimDevice) -> Vec<String> {
    let mut ids: Vec<String> = d
        .state()
        .profiles
        .iter()
        .map(|p| p.identifier.clone())
        .filter(|i| i.starts_with("com.mamori.policy."))
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_fifty_devices_converges_to_its_policies() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let mut devices = Vec::new();
    for i in 0..50 {
        let kind = if i % 5 == 0 {
            DeviceKind::Mac
        } else {
            DeviceKind::IPhone
        };
        devices.push(app.enrolled(kind, SimOptions::default()).await);
    }
    let udids: Vec<String> = devices.iter().map(|d| d.udid().to_owned()).collect();
    let (st, pass) = post(&app, "/api/v1/policies", json!({"name": "Passcode", "kind": "passcode", "settings": {"forcePIN": true, "minLength": 8}})).await;
    assert_eq!(st, 201, "{pass}");
    let (st, wifi) = post(&app, "/api/v1/policies", json!({"name": "Corp Wi-Fi", "kind": "wifi", "settings": {"SSID_STR": "Corp", "EncryptionType": "WPA2", "Password": "corp-wifi-pass-77"}})).await;
    assert_eq!(st, 201, "{wifi}");
    let (st, group) = post(&app, "/api/v1/groups", json!({"name": "Fleet"})).await;
    assert_eq!(st, 201, "{group}");
    let gid = group["id"].as_str().unwrap().to_owned();
    let (st, g) = post(
        &app,
        &format!("/api/v1/groups/{gid}/devices"),
        json!({"add": udids}),
    )
    .await;
    assert_eq!(st, 200, "{g}");
    assert_eq!(g["members"].as_array().unwrap().len(), 50);
    let (st, g) = put(
        &app,
        &format!("/api/v1/groups/{gid}/policies"),
        json!({"policies": [pass["id"], wifi["id"]]}),
    )
    .await;
    assert_eq!(st, 200, "{g}");
    let (st, _) = put(
        &app,
        &format!("/api/v1/groups/{gid}/policies"),
        json!({"policies": ["nope"]}),
    )
    .await;
    assert_eq!(st, 404, "unknown policy");

    // One pass queues both profiles for all 50; a second queues nothing
    // while they are in flight.
    let (st, r) = post(&app, "/api/v1/reconcile", json!({})).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        (r["installs"].as_u64(), r["removals"].as_u64()),
        (Some(100), Some(0)),
        "{r}"
    );
    assert_eq!(
        s.reconcile_once(&crate::common::authorized(), 5000)
            .await
            .unwrap()
            .installs,
        0,
        "idempotent"
    );
    let expected = {
        let mut v = vec![
            format!("com.mamori.policy.{}", pass["id"].as_str().unwrap()),
            format!("com.mamori.policy.{}", wifi["id"].as_str().unwrap()),
        ];
        v.sort();
        v
    };
    for d in &mut devices {
        let handled = d.run_queue().await.unwrap();
        assert_eq!(handled.len(), 2);
        assert_eq!(installed(d), expected);
    }
    let (_, profiles) = app
        .get(&format!("/api/v1/devices/{}/profiles", udids[0]))
        .await;
    let states: Vec<&str> = profiles["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["installed", "installed"]);
    let again = s
        .reconcile_once(&crate::common::authorized(), 5000)
        .await
        .unwrap();
    assert_eq!((again.installs, again.removals), (0, 0), "converged");

    // One device leaves the group: its profiles are removed, no one else's.
    let (st, _) = post(
        &app,
        &format!("/api/v1/groups/{gid}/devices"),
        json!({"remove": [udids[7]]}),
    )
    .await;
    assert_eq!(st, 200);
    let r = s
        .reconcile_once(&crate::common::authorized(), 5000)
        .await
        .unwrap();
    assert_eq!((r.installs, r.removals), (0, 2));
    for (i, d) in devices.iter_mut().enumerate() {
        let handled = d.run_queue().await.unwrap();
        if i == 7 {
            assert_eq!(handled.len(), 2);
            assert!(installed(d).is_empty());
        } else {
            assert!(handled.is_empty());
            assert_eq!(installed(d), expected);
        }
    }
    let (_, profiles) = app
        .get(&format!("/api/v1/devices/{}/profiles", udids[7]))
        .await;
    assert_eq!(profiles["profiles"], json!([]));

    // A policy change reaches the 49 as a new version of the same profile.
    let (st, v2) = {
        let r = app
            .http
            .patch(app.admin_url(&format!(
                "/api/v1/policies/{}",
                pass["id"].as_str().unwrap()
            )))
            .bearer_auth(&app.token)
            .json(&json!({"settings": {"forcePIN": true, "minLength": 10}}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(st, 200, "{v2}");
    let r = s
        .reconcile_once(&crate::common::authorized(), 5000)
        .await
        .unwrap();
    assert_eq!((r.installs, r.removals), (49, 0));
    for (i, d) in devices.iter_mut().enumerate() {
        d.run_queue().await.unwrap();
        if i != 7 {
            let p = d
                .state()
                .profiles
                .iter()
                .find(|p| {
                    p.identifier
                        == expected
                            .iter()
                            .find(|e| e.ends_with(pass["id"].as_str().unwrap()))
                            .unwrap()
                            .as_str()
                })
                .unwrap();
            assert_eq!(p.uuid, v2["profile_uuid"].as_str().unwrap());
        }
    }

    // A dynamic group: every Mac, by inventory.
    let (st, macs) = post(
        &app,
        "/api/v1/groups",
        json!({"name": "Macs", "rule": {"model": "mac"}}),
    )
    .await;
    assert_eq!(st, 201, "{macs}");
    let (st, _) = post(
        &app,
        &format!("/api/v1/groups/{}/devices", macs["id"].as_str().unwrap()),
        json!({"add": [udids[1]]}),
    )
    .await;
    assert_eq!(st, 409, "dynamic groups have no listed members");
    let (st, vpn) = post(&app, "/api/v1/policies", json!({"name": "Mac VPN", "kind": "vpn", "settings": {"VPNType": "IKEv2", "UserDefinedName": "Office", "IKEv2": {"RemoteAddress": "vpn.example.com", "RemoteIdentifier": "vpn.example.com", "LocalIdentifier": "mac", "AuthenticationMethod": "SharedSecret", "SharedSecret": "s3"}}})).await;
    assert_eq!(st, 201, "{vpn}");
    put(
        &app,
        &format!("/api/v1/groups/{}/policies", macs["id"].as_str().unwrap()),
        json!({"policies": [vpn["id"]]}),
    )
    .await;
    let r = s
        .reconcile_once(&crate::common::authorized(), 5000)
        .await
        .unwrap();
    assert_eq!(r.installs, 10, "{r:?}");
    // A policy for iPhones only reaches the group's 39 iPhones.
    let (st, ios) = post(&app, "/api/v1/policies", json!({"name": "iPhone apps", "kind": "restrictions", "platforms": ["iOS"], "settings": {"allowAppInstallation": false}})).await;
    assert_eq!(st, 201, "{ios}");
    put(
        &app,
        &format!("/api/v1/groups/{gid}/policies"),
        json!({"policies": [pass["id"], wifi["id"], ios["id"]]}),
    )
    .await;
    let r = s
        .reconcile_once(&crate::common::authorized(), 5000)
        .await
        .unwrap();
    assert_eq!(r.installs, 39, "{r:?}");
    // Batches are bounded: nothing more than asked is queued.
    let audit = app.audit_records().await;
    assert!(audit.iter().any(|r| r["action"] == "policy.reconcile"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_the_user_removed_is_installed_again_after_profile_list() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let mut d = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let (_, pass) = post(
        &app,
        "/api/v1/policies",
        json!({"name": "Passcode", "kind": "passcode", "settings": {"forcePIN": true}}),
    )
    .await;
    let (_, g) = post(&app, "/api/v1/groups", json!({"name": "All"})).await;
    let gid = g["id"].as_str().unwrap();
    post(
        &app,
        &format!("/api/v1/groups/{gid}/devices"),
        json!({"add": [d.udid()]}),
    )
    .await;
    put(
        &app,
        &format!("/api/v1/groups/{gid}/policies"),
        json!({"policies": [pass["id"]]}),
    )
    .await;
    assert_eq!(
        s.reconcile_once(&crate::common::authorized(), 100)
            .await
            .unwrap()
            .installs,
        1
    );
    d.run_queue().await.unwrap();
    let ident = format!("com.mamori.policy.{}", pass["id"].as_str().unwrap());
    assert_eq!(installed(&d), vec![ident.clone()]);
    // The user removes it; Mamori learns it from the next ProfileList.
    d.state_mut().profiles.retain(|p| p.identifier != ident);
    assert_eq!(
        s.reconcile_once(&crate::common::authorized(), 100)
            .await
            .unwrap()
            .installs,
        0,
        "not known yet"
    );
    app.enqueue(&[d.udid()], json!({"RequestType": "ProfileList"}))
        .await;
    d.run_queue().await.unwrap();
    assert_eq!(
        s.reconcile_once(&crate::common::authorized(), 100)
            .await
            .unwrap()
            .installs,
        1
    );
    d.run_queue().await.unwrap();
    assert_eq!(installed(&d), vec![ident]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_group_follows_the_people_its_devices_are_assigned_to() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let mut sales_phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let mut eng_phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let person = |name: &str, dept: &str, udid: String| {
        let app = &app;
        let body = json!({"name": name, "user_id": name.to_lowercase(), "email": format!("{}@example.jp", name.to_lowercase()), "department": dept});
        async move {
            let (st, p) = post(app, "/api/v1/people", body).await;
            assert_eq!(st, 201, "{p}");
            let id = p["id"].as_str().unwrap().to_owned();
            assert_eq!(
                put(
                    app,
                    &format!("/api/v1/devices/{udid}/person"),
                    json!({"person_id": id})
                )
                .await
                .0,
                204
            );
        }
    };
    person("Aiko", "Sales", sales_phone.udid().to_owned()).await;
    person("Ben", "Engineering", eng_phone.udid().to_owned()).await;
    let (_, pass) = post(
        &app,
        "/api/v1/policies",
        json!({"name": "Sales passcode", "kind": "passcode", "settings": {"minLength": 6}}),
    )
    .await;
    let (st, g) = post(
        &app,
        "/api/v1/groups",
        json!({"name": "Sales", "rule": {"department": " sales "}}),
    )
    .await;
    assert_eq!(st, 201, "{g}");
    put(
        &app,
        &format!("/api/v1/groups/{}/policies", g["id"].as_str().unwrap()),
        json!({"policies": [pass["id"]]}),
    )
    .await;
    let r = s
        .reconcile_once(&crate::common::authorized(), 100)
        .await
        .unwrap();
    assert_eq!(r.installs, 1, "{r:?}");
    assert_eq!(sales_phone.run_queue().await.unwrap().len(), 1);
    assert!(eng_phone.run_queue().await.unwrap().is_empty());
    // People stored before the index existed are indexed at start.
    let c = rusqlite::Connection::open(app.dir.path().join("data/mamori.db")).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    c.execute("UPDATE people SET department_index = NULL", [])
        .unwrap();
    assert_eq!(
        s.index_departments(&crate::common::operator())
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.index_departments(&crate::common::operator())
            .await
            .unwrap(),
        0
    );
    let r = s
        .reconcile_once(&crate::common::authorized(), 100)
        .await
        .unwrap();
    assert_eq!((r.installs, r.removals), (0, 0), "{r:?}");
}
