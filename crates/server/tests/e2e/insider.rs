//! Insiders going around the controls: one role's permission used to do
//! what another role's needs, one person acting through several accounts.

use crate::common::{role_token, spawn_app};
use mamori_sim::{DeviceKind, SimOptions};
use serde_json::{json, Value};

/// A security officer's token (people_write, no accounts_manage) offboards
/// the person both owners are linked to: before, both owners were disabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offboarding_by_people_write_alone_cannot_close_accounts() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let owner2 = role_token(s, "owner2", "owner").await;
    let officer = role_token(s, "officer", "security_officer").await;
    let send = |method: reqwest::Method, path: String, token: String, body: Value| {
        let r = app
            .http
            .request(method, app.admin_url(&path))
            .bearer_auth(token)
            .json(&body)
            .send();
        async move {
            let r = r.await.unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (st, p) = send(
        reqwest::Method::POST,
        "/api/v1/people".into(),
        app.token.clone(),
        json!({"name": "Owners' Person", "user_id": "owners", "email": "owners@example.jp"}),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    let person = p["id"].as_str().unwrap().to_owned();
    for name in ["e2e-owner", "owner2"] {
        let (st, _) = send(
            reqwest::Method::PUT,
            format!("/api/v1/admins/{name}/person"),
            app.token.clone(),
            json!({"person_id": person}),
        )
        .await;
        assert_eq!(st, 204);
    }
    // The officer cannot hand a device to that person first.
    let dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let (st, _) = send(
        reqwest::Method::PUT,
        format!("/api/v1/devices/{}/person", dev.udid()),
        officer.clone(),
        json!({"person_id": person}),
    )
    .await;
    assert_eq!(st, 403, "assigning devices needs commands_write");

    let (st, report) = send(
        reqwest::Method::POST,
        format!("/api/v1/people/{person}/offboard"),
        officer.clone(),
        json!({}),
    )
    .await;
    assert_eq!(st, 200, "{report}");
    assert_eq!(report["accounts"], json!([]), "{report}");
    let waiting = report["accounts_waiting"].as_array().unwrap();
    assert_eq!(waiting.len(), 2, "{report}");
    // Both owners still work.
    for token in [&app.token, &owner2] {
        let (st, _) = send(
            reqwest::Method::GET,
            "/api/v1/devices".into(),
            token.clone(),
            Value::Null,
        )
        .await;
        assert_eq!(st, 200);
    }
    // The requests wait for an account manager.
    let (_, approvals) = app.get("/api/v1/approvals").await;
    let disable: Vec<&Value> = approvals["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "disable_admin")
        .collect();
    assert_eq!(disable.len(), 2, "{approvals}");

    // The host's CLI may close accounts, but never the last enabled owner.
    let ctx = mamori_core::access::ClientContext::default();
    let report = s
        .offboard_person(&crate::common::authorized(), &ctx, &person, None)
        .await
        .unwrap();
    assert_eq!(report.accounts.len(), 1);
    assert_eq!(report.last_owner_kept.len(), 1);
    let owners = s
        .admin_inventory(&crate::common::authorized())
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.admin.role == mamori_domain::Role::Owner && a.admin.disabled_at.is_none())
        .count();
    assert_eq!(owners, 1);
}

/// One owner with several accounts is still one person: an account she
/// created cannot approve her requests, and creating or resetting the
/// accounts that hold the most power needs a second administrator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_owner_cannot_be_her_own_second_administrator() {
    use crate::admins::{onboard_totp, onboard_webauthn, setup_totp};
    use mamori_domain::Role;
    let app = spawn_app().await;
    let s = &app.running.services;
    let (mut alice, _key) = onboard_webauthn(&app, "alice", Role::Owner).await;

    // Alice makes a device administrator for herself...
    let (st, puppet) = alice
        .post(
            "/api/v1/admins",
            json!({"name": "puppet", "role": "device_admin"}),
        )
        .await;
    assert_eq!(st, 201, "{puppet}");
    let otp = puppet["one_time_password"].as_str().unwrap().to_owned();
    let (mut puppet, _, _) = setup_totp(&app, "puppet", &otp).await;
    // ...asks to erase three devices, and approves with it: refused.
    let mut udids = Vec::new();
    for _ in 0..3 {
        let d = app
            .enrolled(DeviceKind::IPhone, SimOptions::default())
            .await;
        udids.push(d.udid().to_owned());
    }
    let (st, asked) = alice
        .post(
            "/api/v1/commands?push=false",
            json!({"devices": udids, "command": {"RequestType": "EraseDevice"}}),
        )
        .await;
    assert_eq!(st, 202, "{asked}");
    let id = asked["approval"]["id"].as_str().unwrap().to_owned();
    let (st, refused) = puppet
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, 403, "{refused}");
    assert!(refused["error"]
        .as_str()
        .unwrap()
        .contains("another person"));
    // Someone Alice did not make may.
    let (mut dana, _, _) = onboard_totp(&app, "dana", Role::DeviceAdmin).await;
    let (st, done) = dana
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, 200, "{done}");

    // Resetting another owner waits for a second administrator: Alice
    // gets no one-time password, and Bob's token still works.
    let bob = role_token(s, "bob", "owner").await;
    let (st, reset) = alice.post("/api/v1/admins/bob/reset", json!({})).await;
    assert_eq!(st, 202, "{reset}");
    assert!(reset.get("one_time_password").is_none());
    let r = app
        .http
        .get(app.admin_url("/api/v1/devices"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // So does creating a security officer, or making someone one.
    let (st, created) = alice
        .post(
            "/api/v1/admins",
            json!({"name": "sam", "role": "security_officer"}),
        )
        .await;
    assert_eq!(st, 202, "{created}");
    assert!(
        s.admin_named(&crate::common::operator(), "sam")
            .await
            .is_err(),
        "not created yet"
    );
    let create_id = created["approval"]["id"].as_str().unwrap().to_owned();
    let (st, _) = alice
        .send(
            reqwest::Method::PUT,
            "/api/v1/admins/puppet/role",
            Some(json!({"role": "security_officer"})),
        )
        .await;
    assert_eq!(st, 202);
    assert_eq!(
        s.admin_named(&crate::common::operator(), "puppet")
            .await
            .unwrap()
            .role,
        Role::DeviceAdmin
    );
    // A device administrator cannot decide it; another owner can, and
    // receives the one-time password to hand over.
    let (st, _) = dana
        .post(&format!("/api/v1/approvals/{create_id}/approve"), json!({}))
        .await;
    assert_eq!(st, 403);
    let (mut carol, _key) = onboard_webauthn(&app, "carol", Role::Owner).await;
    let (st, done) = carol
        .post(&format!("/api/v1/approvals/{create_id}/approve"), json!({}))
        .await;
    assert_eq!(st, 200, "{done}");
    assert!(done["one_time_password"].as_str().unwrap().len() >= 12);
    assert_eq!(
        s.admin_named(&crate::common::operator(), "sam")
            .await
            .unwrap()
            .role,
        Role::SecurityOfficer
    );
}

/// Two accounts the same owner made are one person too: Alice creates
/// device administrators B and C (no approval needed); B asks to erase
/// devices and C approves. Before, only a direct link was checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sibling_accounts_of_one_owner_cannot_approve_each_other() {
    use crate::admins::{onboard_totp, onboard_webauthn, setup_totp};
    use mamori_domain::Role;
    let app = spawn_app().await;
    let (mut alice, _key) = onboard_webauthn(&app, "alice", Role::Owner).await;
    let mut made = Vec::new();
    for name in ["sib-b", "sib-c"] {
        let (st, body) = alice
            .post(
                "/api/v1/admins",
                json!({"name": name, "role": "device_admin"}),
            )
            .await;
        assert_eq!(st, 201, "{body}");
        let otp = body["one_time_password"].as_str().unwrap().to_owned();
        made.push(setup_totp(&app, name, &otp).await.0);
    }
    let mut udids = Vec::new();
    for _ in 0..3 {
        let d = app
            .enrolled(DeviceKind::IPhone, SimOptions::default())
            .await;
        udids.push(d.udid().to_owned());
    }
    let (st, asked) = made[0]
        .post(
            "/api/v1/commands?push=false",
            json!({"devices": udids, "command": {"RequestType": "EraseDevice"}}),
        )
        .await;
    assert_eq!(st, 202, "{asked}");
    let id = asked["approval"]["id"].as_str().unwrap().to_owned();
    let (st, refused) = made[1]
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, 403, "{refused}");
    assert!(refused["error"]
        .as_str()
        .unwrap()
        .contains("another person"));
    // Nothing was queued; an administrator nobody of them made may approve.
    let (_, approvals) = app.get("/api/v1/approvals").await;
    assert!(approvals["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["id"] == id.as_str() && a["status"] == "pending"));
    let (mut dana, _, _) = onboard_totp(&app, "dana", Role::DeviceAdmin).await;
    let (st, done) = dana
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, 200, "{done}");
}

/// An owner's account disabled because it was taken over comes back only
/// on a second person's word: a token cannot re-enable or unlock an
/// account (no step-up), a session asks for an approval, and neither the
/// requester nor an account she made may give it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_owner_comes_back_only_with_a_second_person() {
    use crate::admins::{onboard_webauthn, setup_totp};
    use mamori_domain::Role;
    let app = spawn_app().await;
    let s = &app.running.services;
    let (mut alice, _key) = onboard_webauthn(&app, "alice", Role::Owner).await;
    role_token(s, "bob", "owner").await;
    let (st, body) = alice
        .post(
            "/api/v1/admins/bob/disable",
            json!({"reason": "taken over"}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let disabled = |s: &mamori_core::Services| {
        let s = s.clone();
        async move {
            s.admin_named(&crate::common::operator(), "bob")
                .await
                .unwrap()
                .disabled_at
                .is_some()
        }
    };

    // A token (the e2e owner's) holds accounts_manage but no step-up.
    for action in ["enable", "unlock"] {
        let r = app
            .post(&format!("/api/v1/admins/bob/{action}"), json!({}))
            .await;
        assert_eq!(r.status(), 403, "{action} by a token");
    }
    assert!(disabled(s).await);

    // Demoting the disabled owner (to re-enable him alone) is refused.
    let (st, body) = alice
        .send(
            reqwest::Method::PUT,
            "/api/v1/admins/bob/role",
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(st, 409, "{body}");

    // Alice's fresh session asks; Bob stays disabled meanwhile.
    let (st, asked) = alice.post("/api/v1/admins/bob/enable", json!({})).await;
    assert_eq!(st, 202, "{asked}");
    assert_eq!(asked["approval"]["action"], "enable_admin");
    let id = asked["approval"]["id"].as_str().unwrap().to_owned();
    assert!(disabled(s).await);
    let (st, _) = alice
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, 403, "the requester is not a second person");

    // An owner Alice made is Alice again.
    let (st, made) = alice
        .post(
            "/api/v1/admins",
            json!({"name": "alias", "role": "device_admin"}),
        )
        .await;
    assert_eq!(st, 201, "{made}");
    let otp = made["one_time_password"].as_str().unwrap().to_owned();
    let (mut alias, _, _) = setup_totp(&app, "alias", &otp).await;
    let (st, refused) = alias
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, 403, "{refused}");
    assert!(disabled(s).await);

    // Another owner nobody linked approves: Bob is back, and audited.
    let (mut carol, _key) = onboard_webauthn(&app, "carol", Role::Owner).await;
    let (st, done) = carol
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, 200, "{done}");
    assert!(!disabled(s).await);
    let audit = app.audit_records().await;
    assert!(audit.iter().any(|r| r["action"] == "admin.enable"
        && r["target"] == "bob"
        && r["actor"] == "admin:carol"));
}

/// The direct path that skips an administrator's rules (step-up, a second
/// person, control links) is the host's command line's alone: a background
/// job holding a proof of the permission is refused it, so a job added
/// later cannot erase devices or make accounts without those rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_job_cannot_take_the_command_lines_direct_path() {
    use mamori_core::access::{Actor, ClientContext, Job};
    let app = spawn_app().await;
    let s = &app.running.services;
    let ctx = ClientContext::default();
    let job = || Actor::Job(Job::Detection);
    let erase = s
        .enqueue_command(
            &job().authorize().unwrap(),
            &ctx,
            &["0000-TEST".to_owned()],
            &serde_json::json!({"RequestType": "EraseDevice"}),
            false,
        )
        .await;
    assert!(
        matches!(erase, Err(mamori_core::CoreError::Forbidden(_))),
        "{erase:?}"
    );
    let create = s
        .create_admin(&job().authorize().unwrap(), &ctx, "by-job", "owner")
        .await;
    assert!(
        matches!(create, Err(mamori_core::CoreError::Forbidden(_))),
        "{create:?}"
    );
    assert!(
        s.admin_named(&crate::common::operator(), "by-job")
            .await
            .is_err(),
        "nothing was created"
    );
    let disable = s
        .disable_admin(&job().authorize().unwrap(), &ctx, "e2e-owner", "job")
        .await;
    assert!(matches!(disable, Err(mamori_core::CoreError::Forbidden(_))));
    // The host's command line keeps its direct path.
    let host =
        crate::common::create_admin_now(s, &ctx, "by-host", mamori_domain::Role::Viewer).await;
    assert_eq!(host.admin.name, "by-host");
}
