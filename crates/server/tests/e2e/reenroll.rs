//! Re-enrollment: a new identity for a live enrollment is held for an
//! administrator (the takeover attack), while a device whose enrollment has
//! ended re-enrolls in one step.

use crate::admins::onboard_totp;
use crate::common::{role_token, spawn_app, TestApp};
use mamori_domain::Role;
use mamori_sim::{DeviceKind, SimDevice, SimOptions};
use serde_json::{json, Value};

/// A second device presenting the same hardware identity (UDID, serial) as
/// `dev`: an attacker who read them off the device, or the same device after
/// a wipe the server did not hear about.
async fn same_udid_enrolls(app: &TestApp, dev: &SimDevice, profile: &[u8]) -> SimDevice {
    let mut twin = SimDevice::with_info(dev.info().clone(), SimOptions::default());
    twin.enroll(profile, Some(&app.tls_ca_pem))
        .await
        .expect("the held identity's enrollment is answered normally");
    twin
}

fn actions<'a>(audit: &'a [Value], action: &str) -> Vec<&'a Value> {
    audit.iter().filter(|r| r["action"] == action).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_identity_cannot_take_over_a_live_enrollment() {
    let app = spawn_app().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let udid = dev.udid().to_owned();
    let lock = app
        .enqueue(
            &[&udid],
            json!({"RequestType": "DeviceLock", "Message": "lost"}),
        )
        .await;

    // The attacker holds a multi-use enrollment profile and the UDID.
    let profile = app.profile(json!({"max_uses": 5})).await;
    let mut attacker = same_udid_enrolls(&app, &dev, &profile).await;

    // The attacker receives nothing, now or after new commands are queued.
    assert!(attacker.connect_idle().await.unwrap().is_none());
    app.enqueue(&[&udid], json!({"RequestType": "ProfileList"}))
        .await;
    assert!(attacker.connect_idle().await.unwrap().is_none());

    // The real device keeps its identity and its queue, Lock first.
    let first = dev.connect_idle().await.unwrap().expect("queued Lock");
    assert_eq!(first.command_uuid, lock[0].1);
    let (_, d) = app.get(&format!("/api/v1/devices/{udid}")).await;
    assert_eq!(d["status"], "enrolled");
    assert_eq!(d["push_ready"], true);

    // A high-severity alert, an incident, and a record of the hold; no
    // second enrollment.
    let audit = app.audit_records().await;
    let alerts = actions(&audit, "alert.device_reenrollment");
    assert_eq!(alerts.len(), 1, "one alert");
    assert!(alerts[0]["detail"]
        .as_str()
        .unwrap()
        .contains("severity=high"));
    assert_eq!(actions(&audit, "device.reenroll_held").len(), 1);
    assert_eq!(
        actions(&audit, "device.enroll").len(),
        1,
        "only the real one"
    );
    let (st, incidents) = app.get("/api/v1/incidents").await;
    assert_eq!(st, 200);
    assert!(
        incidents.to_string().contains("device_reenrollment"),
        "{incidents}"
    );

    // Administrators see it; a viewer may list but not decide.
    let (st, held) = app.get("/api/v1/reenrollments").await;
    assert_eq!(st, 200);
    let held = held["reenrollments"].as_array().unwrap().clone();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["device"], udid.as_str());
    assert_eq!(held[0]["push_ready"], true);
    let viewer = role_token(&app.running.services, "viewer-re", "viewer").await;
    let r = app
        .http
        .post(app.admin_url(&format!("/api/v1/devices/{udid}/reenrollment/approve")))
        .bearer_auth(&viewer)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Denied: the attacker's certificate is dead; the device is untouched.
    let r = app
        .post(
            &format!("/api/v1/devices/{udid}/reenrollment/deny"),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let err = attacker.connect_idle().await.expect_err("revoked");
    assert_eq!(err.status(), Some(401));
    let (_, held) = app.get("/api/v1/reenrollments").await;
    assert_eq!(held["reenrollments"], json!([]));
    let handled: Vec<_> = dev
        .run_queue()
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.request_type)
        .collect();
    assert_eq!(handled, ["DeviceLock", "ProfileList"], "the queue, intact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_identity_replaces_the_live_one() {
    let app = spawn_app().await;
    let mut old = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let udid = old.udid().to_owned();
    let profile = app.profile(json!({})).await;
    // The same iPhone, wiped without the server hearing of it.
    let mut wiped = same_udid_enrolls(&app, &old, &profile).await;

    let (mut dana, _, _) = onboard_totp(&app, "dana-re", Role::DeviceAdmin).await;
    let (st, done) = dana
        .post(
            &format!("/api/v1/devices/{udid}/reenrollment/approve"),
            json!({}),
        )
        .await;
    assert_eq!(st, 200, "{done}");
    assert_eq!(done["previous_identities_revoked"], 1);

    // The old identity is refused; the new one is served, push included.
    let err = old.connect_idle().await.expect_err("revoked");
    assert_eq!(err.status(), Some(401));
    let q = app
        .enqueue(&[&udid], json!({"RequestType": "ProfileList"}))
        .await;
    let cmd = wiped.connect_idle().await.unwrap().expect("served");
    assert_eq!(cmd.command_uuid, q[0].1);
    let (_, d) = app.get(&format!("/api/v1/devices/{udid}")).await;
    assert_eq!(d["status"], "enrolled");
    assert_eq!(d["push_ready"], true);
    let audit = app.audit_records().await;
    let approve = actions(&audit, "device.reenroll_approve");
    assert_eq!(approve.len(), 1);
    assert_eq!(approve[0]["actor"], "admin:dana-re");
    // Nothing left to approve.
    let (st, _) = dana
        .post(
            &format!("/api/v1/devices/{udid}/reenrollment/approve"),
            json!({}),
        )
        .await;
    assert_eq!(st, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_whose_enrollment_ended_re_enrolls_in_one_step() {
    let app = spawn_app().await;
    let profile = app.profile(json!({"max_uses": 5})).await;

    // Checked out (the user removed the profile), then enrolled again.
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    dev.check_out().await.unwrap();
    let mut again = same_udid_enrolls(&app, &dev, &profile).await;
    let q = app
        .enqueue(&[again.udid()], json!({"RequestType": "ProfileList"}))
        .await;
    let cmd = again.connect_idle().await.unwrap().expect("served at once");
    assert_eq!(cmd.command_uuid, q[0].1);

    // Erased by an acknowledged EraseDevice, then enrolled again.
    let mut mac = app.enrolled(DeviceKind::Mac, SimOptions::default()).await;
    let mac_udid = mac.udid().to_owned();
    // EraseDevice needs a recent second factor: an interactive session.
    let (mut dana, _, _) = onboard_totp(&app, "dana-erase", Role::DeviceAdmin).await;
    let (st, body) = dana
        .post(
            "/api/v1/commands?push=false",
            json!({"devices": [mac_udid], "command": {"RequestType": "EraseDevice", "PIN": "123456"}}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let handled = mac.run_queue().await.unwrap();
    assert_eq!(handled[0].request_type, "EraseDevice");
    let (_, d) = app.get(&format!("/api/v1/devices/{mac_udid}")).await;
    assert_eq!(d["status"], "checked_out", "an erased device is unenrolled");
    let mut fresh = same_udid_enrolls(&app, &mac, &profile).await;
    let q = app
        .enqueue(&[&mac_udid], json!({"RequestType": "ProfileList"}))
        .await;
    let cmd = fresh.connect_idle().await.unwrap().expect("served at once");
    assert_eq!(cmd.command_uuid, q[0].1);

    let (_, held) = app.get("/api/v1/reenrollments").await;
    assert_eq!(held["reenrollments"], json!([]));
    let audit = app.audit_records().await;
    assert!(actions(&audit, "alert.device_reenrollment").is_empty());
}
