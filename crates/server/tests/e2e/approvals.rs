//! The two-person rule for dangerous bulk actions: erasing more than one
//! device, granting the owner role, exporting personal data. Each waits for
//! a second administrator holding the action's permission; the asker, a
//! token, or someone without the permission cannot approve; both steps are
//! audited.

use crate::admins::{onboard_totp, onboard_webauthn};
use crate::common::{spawn_app, TestApp};
use crate::people::{csv_of, import};
use mamori_domain::Role;
use mamori_sim::{DeviceKind, SimDevice, SimOptions};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_many_devices_waits_for_a_second_administrator() {
    let app = spawn_app().await;
    let mut devices = Vec::new();
    for kind in [DeviceKind::IPhone, DeviceKind::IPhone, DeviceKind::Mac] {
        devices.push(app.enrolled(kind, SimOptions::default()).await);
    }
    let udids: Vec<String> = devices.iter().map(|d| d.info().udid.clone()).collect();
    let (mut dana, _, _) = onboard_totp(&app, "dana", Role::DeviceAdmin).await;
    // One device: queued at once.
    let (st, one) = dana
        .post(
            "/api/v1/commands?push=false",
            json!({"devices": [udids[0]], "command": {"RequestType": "EraseDevice"}}),
        )
        .await;
    assert_eq!(st, 200, "{one}");
    assert_eq!(one["commands"].as_array().unwrap().len(), 1);
    // Two: nothing is queued; a request waits.
    let (st, two) = dana
        .post(
            "/api/v1/commands?push=false",
            json!({"devices": [udids[1], udids[2]], "command": {"RequestType": "EraseDevice", "PIN": "123456"}}),
        )
        .await;
    assert_eq!(st, 202, "{two}");
    let id = two["approval"]["id"].as_str().unwrap().to_owned();
    assert_eq!(two["approval"]["action"], "erase_devices");
    assert_eq!(two["approval"]["status"], "pending");
    for d in &mut devices[1..] {
        assert!(d.connect_idle().await.unwrap().is_none(), "nothing queued");
    }
    // Not the asker, not a token, not a role without commands_write.
    let (st, _) = dana
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, 403);
    let r = app
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(r.status(), 403, "a token cannot step up");
    let (mut sofia, _) = onboard_webauthn(&app, "sofia", Role::SecurityOfficer).await;
    let (st, list) = sofia.get("/api/v1/approvals").await;
    assert_eq!(st, 200);
    assert_eq!(list["approvals"], json!([]), "not hers to decide");
    let (st, _) = sofia
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, 403);
    // A second device administrator approves: both devices get the erase,
    // with the options asked for.
    let (mut eri, _, _) = onboard_totp(&app, "eri", Role::DeviceAdmin).await;
    let (st, done) = eri
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, 200, "{done}");
    assert_eq!(done["commands"].as_array().unwrap().len(), 2);
    for d in &mut devices[1..] {
        let handled = d.run_queue().await.unwrap();
        assert_eq!(handled.len(), 1);
        assert_eq!(handled[0].request_type, "EraseDevice");
    }
    let audit = app.audit_records().await;
    let recs = audit;
    let by = |action: &str| {
        recs.iter()
            .find(|r| r["action"] == action && r["target"] == id.as_str())
            .map(|r| r["actor"].as_str().unwrap().to_owned())
    };
    assert_eq!(by("approval.request").as_deref(), Some("admin:dana"));
    assert_eq!(by("approval.approve").as_deref(), Some("admin:eri"));
}

/// A server whose administrators may wipe 2 devices a day alone, and
/// three enrolled iPhones with their UDIDs.
async fn three_iphones_and_a_budget_of_two() -> (TestApp, Vec<SimDevice>, Vec<String>) {
    let app = crate::common::spawn_with(|c| c.erase_budget_per_day = 2).await;
    let mut devices = Vec::new();
    for _ in 0..3 {
        devices.push(
            app.enrolled(DeviceKind::IPhone, SimOptions::default())
                .await,
        );
    }
    let udids = devices.iter().map(|d| d.info().udid.clone()).collect();
    (app, devices, udids)
}

/// A second device administrator approves request `id`; `device` then
/// receives exactly the `request_type` it held back.
async fn approved_and_received(
    app: &TestApp,
    id: &str,
    device: &mut SimDevice,
    request_type: &str,
) {
    let (mut eri, _, _) = onboard_totp(app, "eri", Role::DeviceAdmin).await;
    let (st, done) = eri
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, 200, "{done}");
    let handled = device.run_queue().await.unwrap();
    assert_eq!(handled.len(), 1);
    assert_eq!(handled[0].request_type, request_type);
}

/// One erase at a time stays under the per-request threshold, so the
/// erases queued alone share a budget over 24 hours, counted for every
/// account together: a second account (the same person's or not) gets no
/// more, and past the budget an erase of one device waits for a second
/// administrator like a bulk erase.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erases_one_at_a_time_share_one_budget_across_accounts() {
    let (app, mut devices, udids) = three_iphones_and_a_budget_of_two().await;
    let (mut dana, _, _) = onboard_totp(&app, "dana", Role::DeviceAdmin).await;
    let (mut dana2, _, _) = onboard_totp(&app, "dana2", Role::DeviceAdmin).await;
    let erase = |udid: &str| json!({"devices": [udid], "command": {"RequestType": "EraseDevice"}});
    let (st, body) = dana
        .post("/api/v1/commands?push=false", erase(&udids[0]))
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = dana2
        .post("/api/v1/commands?push=false", erase(&udids[1]))
        .await;
    assert_eq!(st, 200, "{body}");
    // The third, from either account, waits.
    let (st, body) = dana
        .post("/api/v1/commands?push=false", erase(&udids[2]))
        .await;
    assert_eq!(st, 202, "{body}");
    assert_eq!(body["approval"]["action"], "erase_devices");
    let reason = body["approval"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("2 erases"), "{body}");
    let id = body["approval"]["id"].as_str().unwrap().to_owned();
    assert!(
        devices[2].connect_idle().await.unwrap().is_none(),
        "nothing queued"
    );
    let (st, again) = dana2
        .post("/api/v1/commands?push=false", erase(&udids[2]))
        .await;
    assert_eq!(st, 202, "{again}");
    // A second administrator approves: the erase goes out.
    approved_and_received(&app, &id, &mut devices[2], "EraseDevice").await;
    // Each erase queued alone was recorded with it, by its account.
    let queued: Vec<String> = app
        .audit_records()
        .await
        .iter()
        .filter(|r| r["action"] == "command.queue" && r["target"] == "EraseDevice")
        .map(|r| r["actor"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(queued[..2], ["admin:dana", "admin:dana2"], "{queued:?}");
}

/// Deleting users wipes their data like an erase: it spends the same
/// budget, and for more devices than the threshold, or past the budget,
/// it waits for a second administrator, who carries out the command as
/// asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_users_counts_as_wiping() {
    let (app, mut devices, udids) = three_iphones_and_a_budget_of_two().await;
    let (mut dana, _, _) = onboard_totp(&app, "dana", Role::DeviceAdmin).await;
    let delete_all = json!({"RequestType": "DeleteUser", "DeleteAllUsers": true});
    // Two devices in one request: over the threshold of 1.
    let (st, body) = dana
        .post(
            "/api/v1/commands?push=false",
            json!({"devices": [udids[0], udids[1]], "command": delete_all}),
        )
        .await;
    assert_eq!(st, 202, "{body}");
    assert_eq!(body["approval"]["action"], "delete_users");
    // One at a time: an erase and a user deletion spend one budget.
    let (st, body) = dana
        .post(
            "/api/v1/commands?push=false",
            json!({"devices": [udids[0]], "command": {"RequestType": "EraseDevice"}}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = dana
        .post(
            "/api/v1/commands?push=false",
            json!({"devices": [udids[1]], "command": delete_all}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = dana
        .post(
            "/api/v1/commands?push=false",
            json!({"devices": [udids[2]], "command": delete_all}),
        )
        .await;
    assert_eq!(st, 202, "{body}");
    assert_eq!(body["approval"]["action"], "delete_users");
    let id = body["approval"]["id"].as_str().unwrap().to_owned();
    assert!(
        devices[2].connect_idle().await.unwrap().is_none(),
        "nothing queued"
    );
    approved_and_received(&app, &id, &mut devices[2], "DeleteUser").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granting_the_owner_role_needs_a_second_owner() {
    let app = spawn_app().await;
    let (mut omar, _) = onboard_webauthn(&app, "omar", Role::Owner).await;
    let (_h, _, _) = onboard_totp(&app, "hiro", Role::Helpdesk).await;
    // Creating an owner through the API is refused outright.
    let (st, body) = omar
        .post(
            "/api/v1/admins",
            json!({"name": "newboss", "role": "owner"}),
        )
        .await;
    assert_eq!(st, 409, "{body}");
    let (st, body) = omar
        .send(
            reqwest::Method::PUT,
            "/api/v1/admins/hiro/role",
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(st, 202, "{body}");
    let id = body["approval"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["approval"]["action"], "grant_owner");
    let role = |app: &TestApp| {
        let s = app.running.services.clone();
        async move {
            s.admin_named(&crate::common::operator(), "hiro")
                .await
                .unwrap()
                .role
        }
    };
    assert_eq!(role(&app).await, Role::Helpdesk, "not yet");
    let (st, _) = omar
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, 403, "the asker cannot approve");
    let (mut dana, _, _) = onboard_totp(&app, "dana", Role::DeviceAdmin).await;
    let (st, _) = dana
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, 403, "a device administrator cannot grant owner");
    let (mut olga, _) = onboard_webauthn(&app, "olga", Role::Owner).await;
    let (st, done) = olga
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, 200, "{done}");
    assert_eq!(role(&app).await, Role::Owner);
    let audit = app.audit_records().await;
    let change = audit
        .iter()
        .find(|r| r["action"] == "admin.role" && r["target"] == "hiro")
        .unwrap()
        .clone();
    assert_eq!(change["actor"], "admin:olga");
    assert!(change["detail"]
        .as_str()
        .unwrap()
        .contains("requested by admin:omar"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporting_personal_data_needs_a_second_security_officer() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let admin = crate::common::role_token(s, "dir-admin", "device_admin").await;
    assert_eq!(import(&app, &admin, csv_of(0..25)).await.0, 201);
    let (mut sofia, _) = onboard_webauthn(&app, "sofia", Role::SecurityOfficer).await;
    // A token cannot ask (no step-up); an unknown field is refused.
    let officer = crate::common::role_token(s, "sec-token", "security_officer").await;
    let r = app
        .http
        .post(app.admin_url("/api/v1/people/exports"))
        .bearer_auth(&officer)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (st, _) = sofia
        .post("/api/v1/people/exports", json!({"fields": ["salary"]}))
        .await;
    assert_eq!(st, 400);
    let (st, body) = sofia
        .post(
            "/api/v1/people/exports",
            json!({"fields": ["name", "email"]}),
        )
        .await;
    assert_eq!(st, 202, "{body}");
    let id = body["approval"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/people/exports/{id}");
    assert_eq!(sofia.get(&path).await.0, 409, "not approved yet");
    let (st, _) = sofia
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, 403, "the asker cannot approve");
    let (mut omar, _) = onboard_webauthn(&app, "omar", Role::Owner).await;
    let (st, _) = omar
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, 403, "an owner holds no personal_data_read");
    let (mut saki, _) = onboard_webauthn(&app, "saki", Role::SecurityOfficer).await;
    let (st, _) = saki
        .post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, 200);
    // Only the asker downloads, once.
    assert_eq!(saki.get(&path).await.0, 404);
    let r = sofia.raw(reqwest::Method::GET, &path).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "person_id,name,email");
    assert_eq!(lines.len(), 26);
    assert!(csv.contains("Quillfeather"));
    assert_eq!(sofia.get(&path).await.0, 409, "downloaded already");
    // The breach-scope report counts the export like reads.
    let (st, scope) = app.get("/api/v1/reports/breach-scope").await;
    assert_eq!(st, 200);
    assert_eq!(scope["people_affected"], 25, "{scope}");
    assert_eq!(scope["by_field"]["email"], 25);
    assert!(scope["by_field"].get("phone").is_none());
    assert_eq!(scope["by_actor"][0]["actor"], "admin:sofia");
}
