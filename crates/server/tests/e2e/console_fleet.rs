//! Policies, groups and compliance in the console, without a browser: a
//! policy made from its generated form reaches a group's device and the
//! group's page follows it there; bad values come back next to their
//! fields with nothing stored; a stale form is refused; a secret is never
//! shown back and is kept, or removed, as asked; a viewer reads but cannot
//! change; compliance rules quarantine a device and the report says why.

use crate::common::{role_token, spawn_app, TestApp};
use mamori_sim::{DeviceKind, SimOptions};
use serde_json::Value;

/// Posts a form without following the redirect: (status, the redirect's
/// location or the page).
async fn post(app: &TestApp, token: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let r = crate::console::browser(app)
        .post(app.admin_url(path))
        .bearer_auth(token)
        .header("accept-language", "en")
        .form(form)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    let to = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = r.text().await.unwrap();
    (st, to.unwrap_or(text))
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, String) {
    let r = app
        .http
        .get(app.admin_url(path))
        .bearer_auth(token)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The ID in a redirect to `/console/{area}/{id}?saved=1`.
fn id_in(location: &str) -> String {
    location
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned()
}

/// The `was` field of the form `form` on a page (what the form was made
/// from).
fn was(page: &str, form: &str) -> String {
    let f = page
        .split(&format!("id=\"{form}\""))
        .nth(1)
        .expect("the form");
    let v = f.split("name=\"was\" value=\"").nth(1).unwrap();
    v.split('"').next().unwrap().to_owned()
}

fn count(page: &str, policy: &str, what: &str) -> String {
    let row = page
        .split(&format!("data-policy=\"{policy}\""))
        .nth(1)
        .expect("the policy's row");
    let cell = row
        .split(&format!("data-count=\"{what}\">"))
        .nth(1)
        .unwrap();
    cell.split('<').next().unwrap().to_owned()
}

// Length: one story, from an empty console to a device holding the policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_made_from_its_form_reaches_a_groups_device() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let admin = role_token(s, "fleet-admin", "device_admin").await;
    let viewer = role_token(s, "fleet-viewer", "viewer").await;

    // The form comes from Apple's schema: title, key, range, description.
    let (st, form) = get(&app, &admin, "/console/policies/new?kind=passcode").await;
    assert_eq!(st, 200);
    assert!(form.contains("name=\"s.minLength\""));
    assert!(form.contains("Minimum Passcode Length"));
    assert!(form.contains("type=\"number\" id=\"f-minLength\" name=\"s.minLength\" value=\"\" min=\"0\" max=\"16\""), "{form}");
    assert!(form.contains("The minimum overall length of the passcode."));
    // tvOS has no passcode payload: not offered.
    assert!(!form.contains("value=\"tvOS\""));

    // Bad values come back next to their fields; nothing is stored.
    for (value, expected) in [("eight", "Enter a whole number."), ("99", "16")] {
        let (st, page) = post(
            &app,
            &admin,
            "/console/policies/new",
            &[
                ("kind", "passcode"),
                ("name", "Office"),
                ("s.minLength", value),
                ("s.forcePIN", "true"),
            ],
        )
        .await;
        assert_eq!(st, 400, "{page}");
        let err = page
            .split("id=\"f-minLength-err\">")
            .nth(1)
            .expect("an error by the field");
        assert!(err.split('<').next().unwrap().contains(expected), "{page}");
        assert!(
            page.contains("value=\"Office\""),
            "the form keeps what was typed"
        );
    }
    let (_, listed) = app.get("/api/v1/policies").await;
    assert_eq!(listed["policies"], Value::Array(vec![]), "nothing stored");

    let (st, to) = post(
        &app,
        &admin,
        "/console/policies/new",
        &[
            ("kind", "passcode"),
            ("name", "Office"),
            ("s.minLength", "8"),
            ("s.forcePIN", "true"),
            ("platform", "iOS"),
        ],
    )
    .await;
    assert_eq!(st, 303, "{to}");
    let policy = id_in(&to);
    let (_, p) = app.get(&format!("/api/v1/policies/{policy}")).await;
    assert_eq!(
        p["settings"],
        serde_json::json!({"minLength": 8, "forcePIN": true})
    );
    assert_eq!(p["platforms"], serde_json::json!(["iOS"]));
    // A second submit of the same form makes no second policy.
    let (st, page) = post(
        &app,
        &admin,
        "/console/policies/new",
        &[
            ("kind", "passcode"),
            ("name", "Office"),
            ("s.minLength", "8"),
        ],
    )
    .await;
    assert_eq!(st, 400);
    assert!(page.contains("a policy with that name exists"), "{page}");

    // A static group with the phone, by its serial number, and the policy.
    let phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let (st, to) = post(
        &app,
        &admin,
        "/console/groups/new",
        &[("name", "Sales"), ("kind", "static")],
    )
    .await;
    assert_eq!(st, 303, "{to}");
    let group = id_in(&to);
    let base = format!("/console/groups/{group}");
    let (st, page) = post(
        &app,
        &admin,
        &format!("{base}/members"),
        &[("add", "NO-SUCH-DEVICE")],
    )
    .await;
    assert_eq!(st, 400, "{page}");
    let (st, _) = post(
        &app,
        &admin,
        &format!("{base}/members"),
        &[("add", phone.serial_number())],
    )
    .await;
    assert_eq!(st, 303);
    let (_, page) = get(&app, &admin, &base).await;
    let stale = was(&page, "policies-form");
    let (st, _) = post(
        &app,
        &admin,
        &format!("{base}/policies"),
        &[("policy", &policy), ("was", &stale)],
    )
    .await;
    assert_eq!(st, 303);
    // A form loaded before that change cannot undo it.
    let (st, page) = post(
        &app,
        &admin,
        &format!("{base}/policies"),
        &[("was", &stale)],
    )
    .await;
    assert_eq!(st, 400);
    assert!(
        page.contains("changed since this page was loaded"),
        "{page}"
    );
    let (_, page) = get(&app, &admin, &base).await;
    assert!(page.contains(phone.udid()), "listed");
    let (_, page) = get(&app, &admin, &format!("{base}/progress")).await;
    assert_eq!(count(&page, &policy, "waiting"), "1", "{page}");

    // The reconciler sends it; the page follows it to the device.
    let mut phone = phone;
    s.reconcile_once(&crate::common::authorized(), 100)
        .await
        .unwrap();
    let (_, page) = get(&app, &admin, &format!("{base}/progress")).await;
    assert_eq!(count(&page, &policy, "installing"), "1");
    phone.run_queue().await.unwrap();
    // The page shows the last pass's figures until asked to count now.
    let (_, page) = get(&app, &viewer, &format!("{base}/progress")).await;
    assert_eq!(count(&page, &policy, "installing"), "1");
    assert!(page.contains("id=\"progress-now\""));
    let (_, page) = get(&app, &viewer, &format!("{base}/progress?now=1")).await;
    assert_eq!(count(&page, &policy, "installed"), "1");

    // A new version, saved from the policy's page; a stale form is refused.
    let save = format!("/console/policies/{policy}/save");
    let (st, to) = post(
        &app,
        &admin,
        &save,
        &[
            ("kind", "passcode"),
            ("name", "Office"),
            ("version", "1"),
            ("s.minLength", "10"),
            ("platform", "iOS"),
        ],
    )
    .await;
    assert_eq!(st, 303, "{to}");
    let (st, page) = post(
        &app,
        &admin,
        &save,
        &[
            ("kind", "passcode"),
            ("name", "Office"),
            ("version", "1"),
            ("s.minLength", "4"),
        ],
    )
    .await;
    assert_eq!(st, 400);
    assert!(page.contains("changed meanwhile"), "{page}");
    let (_, p) = app.get(&format!("/api/v1/policies/{policy}")).await;
    assert_eq!(
        (p["version"].as_i64(), p["settings"]["minLength"].as_i64()),
        (Some(2), Some(10))
    );
    let (_, page) = get(&app, &admin, &format!("{base}/progress?now=1")).await;
    assert_eq!(
        count(&page, &policy, "waiting"),
        "1",
        "the new version is not on the device yet"
    );

    // A viewer reads the page but cannot change anything.
    let (st, page) = get(&app, &viewer, &format!("/console/policies/{policy}")).await;
    assert_eq!(st, 200);
    assert!(page.contains("<fieldset disabled>"), "{page}");
    assert!(!page.contains("id=\"policy-delete\""));
    let (st, _) = post(
        &app,
        &viewer,
        &save,
        &[("kind", "passcode"), ("name", "Mine")],
    )
    .await;
    assert_eq!(st, 403);
    let (st, _) = post(&app, &viewer, &format!("{base}/delete"), &[]).await;
    assert_eq!(st, 403);
    let audit = app.audit_records().await;
    for action in [
        "policy.create",
        "policy.update",
        "group.create",
        "group.members",
        "group.policies",
    ] {
        assert!(
            audit.iter().any(|r| r["action"] == action
                && r["actor"].as_str().unwrap_or("").contains("fleet-admin")),
            "{action}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_secret_is_never_shown_and_kept_until_removed() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let admin = role_token(s, "wifi-admin", "device_admin").await;
    let secret = "corp-wifi-secret-1234";
    let (st, to) = post(
        &app,
        &admin,
        "/console/policies/new",
        &[
            ("kind", "wifi"),
            ("name", "Corp"),
            ("s.SSID_STR", "Corp"),
            ("s.EncryptionType", "WPA2"),
            ("s.Password", secret),
        ],
    )
    .await;
    assert_eq!(st, 303, "{to}");
    let policy = id_in(&to);
    let page = format!("/console/policies/{policy}");
    let (_, shown) = get(&app, &admin, &page).await;
    assert!(!shown.contains(secret));
    assert!(shown.contains("Set; leave empty to keep it"));
    let profile = |s: &mamori_core::Services| {
        let (s, id) = (s.clone(), policy.clone());
        async move {
            let bytes = s
                .policy_profile(&crate::common::operator(), &id)
                .await
                .unwrap();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    };
    // Saved with the password left empty: kept.
    let save = format!("{page}/save");
    let (st, _) = post(
        &app,
        &admin,
        &save,
        &[
            ("kind", "wifi"),
            ("name", "Corp"),
            ("s.SSID_STR", "Corp 2"),
            ("s.EncryptionType", "WPA2"),
            ("s.Password", ""),
        ],
    )
    .await;
    assert_eq!(st, 303);
    assert!(profile(s).await.contains(secret));
    // A value outside Apple's list comes back by its field.
    let (st, body) = post(
        &app,
        &admin,
        &save,
        &[
            ("kind", "wifi"),
            ("name", "Corp"),
            ("s.SSID_STR", "Corp"),
            ("s.EncryptionType", "ROT13"),
        ],
    )
    .await;
    assert_eq!(st, 400);
    assert!(body.contains("id=\"f-EncryptionType-err\""), "{body}");
    // Removed when asked.
    let (st, _) = post(
        &app,
        &admin,
        &save,
        &[
            ("kind", "wifi"),
            ("name", "Corp"),
            ("s.SSID_STR", "Corp"),
            ("s.EncryptionType", "None"),
            ("clear.s.Password", "1"),
        ],
    )
    .await;
    assert_eq!(st, 303);
    assert!(!profile(s).await.contains(secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliance_rules_from_the_group_page_quarantine_and_say_why() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let admin = role_token(s, "rules-admin", "device_admin").await;
    let phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let (_, to) = post(
        &app,
        &admin,
        "/console/groups/new",
        &[("name", "Phones"), ("kind", "dynamic"), ("model", "iPhone")],
    )
    .await;
    let base = format!("/console/groups/{}", id_in(&to));
    let (_, page) = get(&app, &admin, &base).await;
    assert!(page.contains("Model contains iPhone"), "{page}");
    let (_, progress) = get(&app, &admin, &format!("{base}/progress")).await;
    assert!(progress.contains("id=\"group-enrolled\">1<"), "{progress}");

    let rules_form = |page: &str| was(page, "compliance-form");
    let fresh = rules_form(&page);
    // Bad input changes nothing.
    let (st, page) = post(
        &app,
        &admin,
        &format!("{base}/compliance"),
        &[
            ("action", "save"),
            ("was", &fresh),
            ("max_checkin_days", "forever"),
        ],
    )
    .await;
    assert_eq!(st, 400);
    assert!(page.contains("a whole number from 1 to 3650"), "{page}");
    let (st, page) = post(
        &app,
        &admin,
        &format!("{base}/compliance"),
        &[("action", "save"), ("was", &fresh), ("min_ios", "new")],
    )
    .await;
    assert_eq!(st, 400, "{page}");
    let (_, report) = get(&app, &admin, "/console/compliance").await;
    assert!(report.contains("id=\"compliance-all-good\""), "{report}");

    let (st, _) = post(
        &app,
        &admin,
        &format!("{base}/compliance"),
        &[
            ("action", "save"),
            ("was", &fresh),
            ("min_ios", "99.0"),
            ("quarantine", "1"),
        ],
    )
    .await;
    assert_eq!(st, 303);
    let (_, report) = get(&app, &admin, "/console/compliance").await;
    assert!(
        report.contains("data-figure=\"quarantined\">1<"),
        "{report}"
    );
    let row = report
        .split(&format!("data-device=\"{}\"", phone.udid()))
        .nth(1)
        .expect("the phone is listed");
    assert!(row.contains("os_below_minimum"), "{row}");
    let (_, page) = get(&app, &admin, &base).await;
    assert!(page.contains("value=\"99.0\""));

    // The form loaded before the rules were set is stale now.
    let clear = format!("{base}/compliance");
    let (st, _) = post(
        &app,
        &admin,
        &clear,
        &[("action", "clear"), ("was", &fresh)],
    )
    .await;
    assert_eq!(st, 400);
    let now = rules_form(&page);
    let (st, _) = post(&app, &admin, &clear, &[("action", "clear"), ("was", &now)]).await;
    assert_eq!(st, 303);
    let (_, report) = get(&app, &admin, "/console/compliance").await;
    assert!(report.contains("id=\"compliance-all-good\""));
}
