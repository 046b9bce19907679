//! Policies: typed settings checked against Apple's schema (a bad value
//! gets a 400 naming the key), secrets sealed at rest and never returned,
//! versions that keep the profile's identity, and a profile built from
//! them that holds the secret for the device.

use crate::common::{role_token, spawn_app};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_are_validated_and_their_secrets_never_leave() {
    let app = spawn_app().await;
    let post = reqwest::Method::POST;
    // Each kind, valid.
    for (name, kind, settings) in [
        (
            "Passcode 8",
            "passcode",
            json!({"forcePIN": true, "minLength": 8, "maxFailedAttempts": 10}),
        ),
        (
            "No unmanaged open-in",
            "restrictions",
            json!({"allowOpenFromManagedToUnmanaged": false, "allowAppInstallation": false}),
        ),
        (
            "Office VPN",
            "vpn",
            json!({"VPNType": "IKEv2", "UserDefinedName": "Office", "IKEv2": {"RemoteAddress": "vpn.example.com", "RemoteIdentifier": "vpn.example.com", "LocalIdentifier": "client", "AuthenticationMethod": "SharedSecret", "SharedSecret": "ike-secret-9Q"}}),
        ),
    ] {
        let (st, p) = app
            .send(
                post.clone(),
                "/api/v1/policies",
                Some(json!({"name": name, "kind": kind, "settings": settings})),
            )
            .await;
        assert_eq!(st, 201, "{kind}: {p}");
    }
    // Invalid: out of range, wrong type, unknown key, unknown kind — each
    // refused with the key named, nothing stored.
    for (settings, kind, key) in [
        (
            json!({"maxFailedAttempts": 20}),
            "passcode",
            "maxFailedAttempts",
        ),
        (json!({"forcePIN": "yes"}), "passcode", "forcePIN"),
        (
            json!({"allowEverything": true}),
            "restrictions",
            "allowEverything",
        ),
        (
            json!({"SSID_STR": "Corp", "EncryptionType": "ROT13"}),
            "wifi",
            "EncryptionType",
        ),
    ] {
        let (st, e) = app
            .send(
                post.clone(),
                "/api/v1/policies",
                Some(json!({"name": format!("bad {key}"), "kind": kind, "settings": settings})),
            )
            .await;
        assert_eq!(st, 400, "{key}");
        assert!(e["error"].as_str().unwrap().contains(key), "{e}");
    }
    let (st, _) = app
        .send(
            post.clone(),
            "/api/v1/policies",
            Some(json!({"name": "x", "kind": "firewall", "settings": {}})),
        )
        .await;
    assert_eq!(st, 400);
    // A key that does not exist on a target platform: 400 naming it.
    let (st, e) = app.send(post.clone(), "/api/v1/policies", Some(json!({"name": "Mac apps", "kind": "restrictions", "platforms": ["macOS"], "settings": {"allowAppInstallation": false}}))).await;
    assert_eq!(st, 400);
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("allowAppInstallation: not supported on macOS"),
        "{e}"
    );
    let (st, e) = app.send(post.clone(), "/api/v1/policies", Some(json!({"name": "TV passcode", "kind": "passcode", "platforms": ["tvOS"], "settings": {}}))).await;
    assert_eq!(st, 400);
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("not supported on tvOS"),
        "{e}"
    );
    let (st, e) = app
        .send(
            post.clone(),
            "/api/v1/policies",
            Some(
                json!({"name": "x", "kind": "passcode", "platforms": ["Windows"], "settings": {}}),
            ),
        )
        .await;
    assert_eq!(st, 400, "{e}");
    let (st, p) = app.send(post.clone(), "/api/v1/policies", Some(json!({"name": "iPhone apps", "kind": "restrictions", "platforms": ["iOS"], "settings": {"allowAppInstallation": false}}))).await;
    assert_eq!(st, 201, "{p}");
    assert_eq!(p["platforms"], json!(["iOS"]));
    let (st, _) = app
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/policies/{}", p["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(st, 204);
    let (_, list) = app.get("/api/v1/policies").await;
    assert_eq!(list["policies"].as_array().unwrap().len(), 3);

    // A Wi-Fi password: stored sealed, never returned.
    let password = "Wifi-Secret-Zx81-pass";
    let (st, wifi) = app.send(post.clone(), "/api/v1/policies", Some(json!({"name": "Corp Wi-Fi", "kind": "wifi", "settings": {"SSID_STR": "Corp", "EncryptionType": "WPA2", "Password": password, "AutoJoin": true}}))).await;
    assert_eq!(st, 201, "{wifi}");
    assert_eq!(wifi["secrets"], json!(["/Password"]));
    assert!(!wifi.to_string().contains(password));
    let id = wifi["id"].as_str().unwrap().to_owned();
    let (_, got) = app.get(&format!("/api/v1/policies/{id}")).await;
    assert!(!got.to_string().contains(password));
    let (_, all) = app.get("/api/v1/policies").await;
    assert!(!all.to_string().contains(password) && !all.to_string().contains("ike-secret-9Q"));
    for f in ["mamori.db", "mamori.db-wal"] {
        let path = app.dir.path().join("data").join(f);
        if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !bytes
                    .windows(password.len())
                    .any(|w| w == password.as_bytes()),
                "{f} holds the password"
            );
        }
    }
    // The profile for devices holds it, with the stable identifiers.
    let s = &app.running.services;
    let xml = s
        .policy_profile(&crate::common::operator(), &id)
        .await
        .unwrap();
    let v: plist::Value = plist::from_bytes(&xml).unwrap();
    let top = v.as_dictionary().unwrap();
    assert_eq!(
        top["PayloadIdentifier"].as_string(),
        Some(format!("com.mamori.policy.{id}").as_str())
    );
    assert_eq!(
        top["PayloadUUID"].as_string(),
        wifi["profile_uuid"].as_str()
    );
    let payload = top["PayloadContent"].as_array().unwrap()[0]
        .as_dictionary()
        .unwrap();
    assert_eq!(
        payload["PayloadType"].as_string(),
        Some("com.apple.wifi.managed")
    );
    assert_eq!(payload["Password"].as_string(), Some(password));
    assert_eq!(
        payload["PayloadUUID"].as_string(),
        wifi["payload_uuid"].as_str()
    );

    // A change leaving the password out keeps it; a new version, same
    // identity; null clears it.
    let (st, v2) = app.send(
        reqwest::Method::PATCH,
        &format!("/api/v1/policies/{id}"),
        Some(
            json!({"settings": {"SSID_STR": "Corp", "EncryptionType": "WPA2", "AutoJoin": false}}),
        ),
    )
    .await;
    assert_eq!(st, 200, "{v2}");
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["payload_uuid"], wifi["payload_uuid"]);
    assert_ne!(v2["profile_uuid"], wifi["profile_uuid"]);
    assert_eq!(v2["secrets"], json!(["/Password"]));
    let xml = s
        .policy_profile(&crate::common::operator(), &id)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&xml).contains(password));
    let (st, v3) = app.send(
        reqwest::Method::PATCH,
        &format!("/api/v1/policies/{id}"),
        Some(json!({"settings": {"SSID_STR": "Corp", "EncryptionType": "None", "Password": null}})),
    )
    .await;
    assert_eq!(st, 200, "{v3}");
    assert_eq!(v3["secrets"], json!([]));
    // A bad change changes nothing.
    let (st, _) = app
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/policies/{id}"),
            Some(json!({"settings": {"SSID_STR": 5}})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        app.get(&format!("/api/v1/policies/{id}")).await.1["version"],
        3
    );
    // Names are unique; viewers read but do not write; delete.
    let (st, _) = app
        .send(
            post.clone(),
            "/api/v1/policies",
            Some(json!({"name": "Corp Wi-Fi", "kind": "passcode", "settings": {}})),
        )
        .await;
    assert_eq!(st, 409);
    let viewer = role_token(s, "vera", "viewer").await;
    let r = app
        .http
        .post(app.admin_url("/api/v1/policies"))
        .bearer_auth(&viewer)
        .json(&json!({"name": "v", "kind": "passcode", "settings": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .http
        .get(app.admin_url("/api/v1/policies"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (st, _) = app
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/policies/{id}"),
            None,
        )
        .await;
    assert_eq!(st, 204);
    assert_eq!(app.get(&format!("/api/v1/policies/{id}")).await.0, 404);
    let audit = app.audit_records().await;
    let actions: Vec<&str> = audit
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for a in ["policy.create", "policy.update", "policy.delete"] {
        assert!(actions.contains(&a), "{a}");
    }
}
