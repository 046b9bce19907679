//! Re-enrollment: a new identity for a live enrollment is held for an
//! administrator (the takeover attack), while a device whose enrollment has
//! ended re-enrolls in one step — starting unassigned. Neither renewal nor
//! a second Authenticate stretches one held identity further.

use crate::admins::onboard_totp;
use crate::common::{role_token, spawn_app, TestApp};
use mamori_domain::Role;
use mamori_sim::{DeviceKind, SimDevice, SimError, SimOptions};
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
    let bootstrap = |kind: &str, token: Option<&[u8]>| {
        let mut d = plist::Dictionary::new();
        d.insert("MessageType".into(), kind.into());
        d.insert("UDID".into(), mac_udid.clone().into());
        if let Some(t) = token {
            d.insert("BootstrapToken".into(), plist::Value::Data(t.to_vec()));
        }
        let mut out = Vec::new();
        plist::to_writer_xml(&mut out, &plist::Value::Dictionary(d)).unwrap();
        out
    };
    // The Mac escrows its bootstrap token before it is erased.
    let r = mac
        .checkin_raw(
            bootstrap("SetBootstrapToken", Some(b"old-owner-token")),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
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
    // Whoever enrolls anew does not receive the earlier enrollment's token.
    let r = fresh
        .checkin_raw(bootstrap("GetBootstrapToken", None), None)
        .await
        .unwrap();
    assert_eq!((r.status, r.body.len()), (200, 0), "no token from before");
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

/// A new identity that has only done SCEP, with the profile's challenge.
async fn scep_only(app: &TestApp, info: mamori_sim::DeviceInfo, profile: &[u8]) -> SimDevice {
    let mut dev = SimDevice::with_info(info, SimOptions::default());
    dev.load_profile(profile, Some(&app.tls_ca_pem)).unwrap();
    dev.scep_enroll().await.unwrap();
    dev
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_enrolled_identity_renews_its_certificate() {
    let app = spawn_app().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let udid = dev.udid().to_owned();
    // One challenge use buys one certificate.
    let profile = app.profile(json!({"max_uses": 1})).await;
    let mut attacker = scep_only(&app, dev.info().clone(), &profile).await;

    // Unbound (it never Authenticated): a renewal spends no challenge, so
    // it would mint identities without end. Refused, however often.
    for _ in 0..3 {
        let err = attacker
            .renew()
            .await
            .expect_err("an unbound certificate does not renew");
        assert!(matches!(err, SimError::ScepFailure(_)), "{err}");
    }
    // Held (it Authenticated as the live device): refused too.
    attacker.authenticate().await.unwrap();
    for _ in 0..3 {
        let err = attacker
            .renew()
            .await
            .expect_err("a held certificate does not renew");
        assert!(matches!(err, SimError::ScepFailure(_)), "{err}");
    }
    // One identity, one hold, one alert.
    let audit = app.audit_records().await;
    assert_eq!(
        actions(&audit, "device.certificate_issue").len(),
        2,
        "the device's and the attacker's, nothing renewed"
    );
    assert_eq!(actions(&audit, "alert.device_reenrollment").len(), 1);
    assert!(
        actions(&audit, "device.rejected")
            .iter()
            .any(|r| r["detail"]
                .as_str()
                .unwrap_or("")
                .contains("renewal signer")),
        "refusals are audited"
    );
    let (_, held) = app.get("/api/v1/reenrollments").await;
    assert_eq!(held["reenrollments"].as_array().unwrap().len(), 1);

    // Denied: the one held certificate dies, and nothing renewed from it
    // lives on.
    let r = app
        .post(
            &format!("/api/v1/devices/{udid}/reenrollment/deny"),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        attacker.connect_idle().await.expect_err("revoked").status(),
        Some(401)
    );

    // The enrolled identity renews and keeps its enrollment.
    dev.renew().await.unwrap();
    let q = app
        .enqueue(&[&udid], json!({"RequestType": "ProfileList"}))
        .await;
    let cmd = dev.connect_idle().await.unwrap().expect("served");
    assert_eq!(cmd.command_uuid, q[0].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_identity_cannot_be_moved_to_another_device() {
    let app = spawn_app().await;
    let mut victim = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let v = victim.udid().to_owned();
    // A junk device of the attacker's own, live.
    let junk = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let f = junk.udid().to_owned();
    let profile = app.profile(json!({})).await;
    let mut attacker = scep_only(
        &app,
        mamori_sim::DeviceInfo::random(DeviceKind::IPhone),
        &profile,
    )
    .await;

    // Held against the junk device: the alert names the junk device.
    attacker.claim_udid(Some(f.clone()));
    attacker.authenticate().await.unwrap();
    // Then pointed at the victim: refused, audited, alerted naming both.
    attacker.claim_udid(Some(v.clone()));
    let err = attacker
        .authenticate()
        .await
        .expect_err("a held identity stays with its device");
    assert_eq!(err.status(), Some(403));

    let audit = app.audit_records().await;
    let retarget = actions(&audit, "alert.device_reenrollment_retarget");
    assert_eq!(retarget.len(), 1);
    let detail = retarget[0]["detail"].as_str().unwrap();
    assert!(detail.contains("severity=high"), "{detail}");
    assert!(detail.contains(&f) && detail.contains(&v), "{detail}");
    let refused = actions(&audit, "device.reenroll_retarget");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["outcome"], "denied");
    assert_eq!(refused[0]["target"], v.as_str());
    let (_, incidents) = app.get("/api/v1/incidents").await;
    assert!(
        incidents
            .to_string()
            .contains("device_reenrollment_retarget"),
        "{incidents}"
    );

    // Nothing is held for the victim; the identity is dead, so it can
    // neither be held anywhere nor repeat the attempt to flood alerts.
    let (_, held) = app.get("/api/v1/reenrollments").await;
    assert_eq!(held["reenrollments"], json!([]), "{held}");
    for claim in [&v, &f] {
        attacker.claim_udid(Some(claim.clone()));
        let err = attacker.authenticate().await.expect_err("revoked");
        assert_eq!(err.status(), Some(401));
    }
    let audit = app.audit_records().await;
    assert_eq!(
        actions(&audit, "alert.device_reenrollment_retarget").len(),
        1
    );
    assert_eq!(actions(&audit, "alert.device_reenrollment").len(), 1);

    // The victim is untouched.
    let q = app
        .enqueue(&[&v], json!({"RequestType": "ProfileList"}))
        .await;
    let cmd = victim.connect_idle().await.unwrap().expect("served");
    assert_eq!(cmd.command_uuid, q[0].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_enrollment_after_the_old_one_ended_starts_unassigned() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let post = reqwest::Method::POST;
    let put = reqwest::Method::PUT;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let udid = dev.udid().to_owned();

    // The device belongs to Hana and to a static group with the office
    // Wi-Fi; every iPhone (a dynamic group) gets a passcode policy.
    let (st, hana) = app
        .send(
            post.clone(),
            "/api/v1/people",
            Some(json!({"name": "Hana Sato", "user_id": "hsato", "email": "hana@example.jp"})),
        )
        .await;
    assert_eq!(st, 201, "{hana}");
    let person = hana["id"].as_str().unwrap().to_owned();
    let (st, body) = app
        .send(
            put.clone(),
            &format!("/api/v1/devices/{udid}/person"),
            Some(json!({"person_id": person})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let (st, wifi) = app.send(post.clone(), "/api/v1/policies", Some(json!({"name": "Office Wi-Fi", "kind": "wifi", "settings": {"SSID_STR": "Office", "EncryptionType": "WPA2", "Password": "office-wifi-secret-42"}}))).await;
    assert_eq!(st, 201, "{wifi}");
    let (st, office) = app
        .send(
            post.clone(),
            "/api/v1/groups",
            Some(json!({"name": "Office"})),
        )
        .await;
    assert_eq!(st, 201, "{office}");
    let gid = office["id"].as_str().unwrap().to_owned();
    let (st, g) = app
        .send(
            post.clone(),
            &format!("/api/v1/groups/{gid}/devices"),
            Some(json!({"add": [udid]})),
        )
        .await;
    assert_eq!(st, 200, "{g}");
    let (st, g) = app
        .send(
            put.clone(),
            &format!("/api/v1/groups/{gid}/policies"),
            Some(json!({"policies": [wifi["id"]]})),
        )
        .await;
    assert_eq!(st, 200, "{g}");
    let (st, pass) = app.send(post.clone(), "/api/v1/policies", Some(json!({"name": "Passcode", "kind": "passcode", "settings": {"forcePIN": true, "minLength": 6}}))).await;
    assert_eq!(st, 201, "{pass}");
    let (st, phones) = app
        .send(
            post.clone(),
            "/api/v1/groups",
            Some(json!({"name": "iPhones", "rule": {"model": "iphone"}})),
        )
        .await;
    assert_eq!(st, 201, "{phones}");
    let (st, g) = app
        .send(
            put.clone(),
            &format!("/api/v1/groups/{}/policies", phones["id"].as_str().unwrap()),
            Some(json!({"policies": [pass["id"]]})),
        )
        .await;
    assert_eq!(st, 200, "{g}");

    // The enrollment ends (the profile removed), and whoever holds a
    // profile and the UDID enrolls a new identity in one step.
    dev.check_out().await.unwrap();
    let profile = app.profile(json!({})).await;
    let mut next = same_udid_enrolls(&app, &dev, &profile).await;

    // It starts unassigned and in no static group.
    let (st, p) = app.get(&format!("/api/v1/people/{person}")).await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["devices"], json!([]), "{p}");
    let (_, g) = app.get(&format!("/api/v1/groups/{gid}")).await;
    assert_eq!(g["members"], json!([]), "{g}");
    let audit = app.audit_records().await;
    let enrolls = actions(&audit, "device.enroll");
    let last = enrolls
        .iter()
        .filter(|r| r["target"] == udid.as_str())
        .map(|r| r["detail"].as_str().unwrap_or(""))
        .find(|d| d.contains("assignment cleared"));
    assert!(
        last.is_some_and(|d| d.contains("person: unassigned") && d.contains("static groups: 1")),
        "{enrolls:?}"
    );

    // Reconciled: the dynamic group's passcode policy, not the Wi-Fi.
    let r = s
        .reconcile_once(&crate::common::authorized(), 100)
        .await
        .unwrap();
    assert_eq!(r.installs, 1, "{r:?}");
    let handled: Vec<_> = next
        .run_queue()
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.request_type)
        .collect();
    assert_eq!(handled, ["InstallProfile"]);
    assert_eq!(
        crate::groups::installed(&next),
        [format!(
            "com.mamori.policy.{}",
            pass["id"].as_str().unwrap()
        )]
    );
}
