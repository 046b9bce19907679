//! People and reports in the console, without a browser: the list names
//! no one, a reveal needs the permission and a reason (refused ones read
//! nothing), a role that may not open a page gets a page that says so;
//! offboarding is confirmed on a page that lists what it will do.
//! (A security officer in a real browser: `browser.rs`.)

use crate::common::{authorized, role_token, spawn_app, TestApp};
use mamori_sim::{DeviceKind, SimOptions};

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

async fn reveal(app: &TestApp, token: &str, id: &str, reason: &str) -> (u16, String) {
    let r = app
        .http
        .post(app.admin_url(&format!("/console/people/{id}/reveal")))
        .bearer_auth(token)
        .header("accept-language", "en")
        .form(&[("reason", reason)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn reads(records: &[serde_json::Value], id: &str) -> usize {
    records
        .iter()
        .filter(|r| r["action"] == "people.read" && r["target"] == id)
        .count()
}

#[tokio::test]
async fn a_reveal_needs_the_permission_and_a_reason() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let person = s
        .create_person(
            &authorized(),
            &mamori_core::access::ClientContext::default(),
            &mamori_core::people::PersonInput {
                name: Some("Kenta Sato".into()),
                user_id: Some("u-1001".into()),
                email: Some("kenta.sato@example.co.jp".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let id = person.id.to_string();
    let helpdesk = role_token(s, "people-helpdesk", "helpdesk").await;
    let officer = role_token(s, "people-officer", "security_officer").await;

    // The list and the page: the ID, never the name; no reveal form for
    // a role that may not read personal data.
    let (st, list) = get(&app, &helpdesk, "/console/people").await;
    assert_eq!(st, 200);
    assert!(list.contains(&id) && !list.contains("Kenta"), "{list}");
    let (_, page) = get(&app, &helpdesk, &format!("/console/people/{id}")).await;
    assert!(!page.contains("reveal-form"));
    let (st, _) = reveal(&app, &helpdesk, &id, "curious").await;
    assert_eq!(st, 403);

    // No reason, or a reason too long: nothing read.
    let (st, page) = reveal(&app, &officer, &id, "  ").await;
    assert_eq!(st, 400);
    assert!(page.contains("Give a reason. Nothing was shown."));
    let (st, page) = reveal(&app, &officer, &id, &"x".repeat(201)).await;
    assert_eq!(st, 400, "{page}");
    assert!(!page.contains("Kenta"));
    assert_eq!(reads(&app.audit_records().await, &id), 0);

    // With a reason: shown, and on record.
    let (st, page) = reveal(&app, &officer, &id, "device handover check").await;
    assert_eq!(st, 200);
    assert!(page.contains("Kenta Sato") && page.contains("kenta.sato@example.co.jp"));
    assert!(page.contains("device handover check"));
    assert_eq!(reads(&app.audit_records().await, &id), 1);

    // A page the role may not open says so, in a page.
    let (st, page) = get(&app, &helpdesk, "/console/reports/breach-scope").await;
    assert_eq!(st, 403);
    assert!(page.contains("Your role cannot open this page."), "{page}");
    assert!(
        !page.contains("breach-scope\" aria-current"),
        "not in its menu"
    );
    let (st, page) = get(
        &app,
        &officer,
        "/console/reports/breach-scope?from=2026-13-01&to=x",
    )
    .await;
    assert_eq!(st, 400);
    assert!(page.contains("The start date must be a date (YYYY-MM-DD)."));
    // Dates at the end of the calendar, or a window of years: refused, not
    // a crash or a scan of the whole log.
    for q in [
        "from=2020-01-01&to=9999-12-31",
        "from=2020-01-01&to=2026-12-01",
    ] {
        let (st, page) = get(
            &app,
            &officer,
            &format!("/console/reports/breach-scope?{q}"),
        )
        .await;
        assert_eq!(st, 400, "{q}");
        assert!(
            page.contains("The end date must be a date") || page.contains("at most 400 days"),
            "{q}: {page}"
        );
    }
    // An incident discovered in the year 9999 would overflow its deadlines.
    let (st, body) = app
        .send(
            reqwest::Method::POST,
            "/api/v1/incidents",
            Some(serde_json::json!({"title": "t", "discovered_at": "9999-12-30T00:00:00Z"})),
        )
        .await;
    assert_eq!(st, 400, "{body}");
}

/// Offboarding from a person's page: the confirmation lists exactly what
/// will happen and changes nothing; one press does it; a role without
/// people_write has no such form and is refused.
#[tokio::test]
async fn offboarding_lists_what_will_happen_then_does_it() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let officer = role_token(s, "offboard-officer", "security_officer").await;
    let viewer = role_token(s, "offboard-viewer", "viewer").await;
    role_token(s, "leaver-admin", "helpdesk").await;
    let (st, p) = app
        .send(
            reqwest::Method::POST,
            "/api/v1/people",
            Some(serde_json::json!({"name": "Leaving Person", "user_id": "leaver", "email": "leaver@example.jp"})),
        )
        .await;
    assert_eq!(st, 201, "{p}");
    let person = p["id"].as_str().unwrap().to_owned();
    let (st, _) = app
        .send(
            reqwest::Method::PUT,
            "/api/v1/admins/leaver-admin/person",
            Some(serde_json::json!({"person_id": person})),
        )
        .await;
    assert_eq!(st, 204);
    let phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let (st, _) = app
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/devices/{}/person", phone.udid()),
            Some(serde_json::json!({"person_id": person})),
        )
        .await;
    assert!(st == 200 || st == 204, "{st}");

    let get = |token: &str, path: String| {
        app.http
            .get(app.admin_url(&path))
            .bearer_auth(token)
            .header("accept-language", "en")
            .send()
    };
    let page = get(&officer, format!("/console/people/{person}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"offboard-start\""));
    let page = get(&viewer, format!("/console/people/{person}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("id=\"offboard-start\""), "a viewer may not");

    // The confirmation: what will happen, nothing done yet.
    let r = get(
        &officer,
        format!("/console/people/{person}/offboard?action=remove_management"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    let plan = page.split("id=\"offboard-plan\"").nth(1).unwrap();
    assert!(plan.contains("Mark the person as departed now."), "{plan}");
    assert!(
        plan.contains("Ask an account manager to disable: leaver-admin"),
        "{plan}"
    );
    assert!(plan.contains(phone.udid()), "{plan}");
    assert!(
        plan.contains("Remove management from 1 device(s)"),
        "{plan}"
    );
    let (_, p) = app.get(&format!("/api/v1/people/{person}")).await;
    assert!(p["departed_at"].is_null(), "nothing done yet");

    // One press.
    let post = |token: &str, action: &str| {
        app.http
            .post(app.admin_url(&format!("/console/people/{person}/offboard")))
            .bearer_auth(token)
            .header("accept-language", "en")
            .form(&[("action", action)])
            .send()
    };
    assert_eq!(
        post(&viewer, "remove_management").await.unwrap().status(),
        403
    );
    assert_eq!(post(&officer, "nonsense").await.unwrap().status(), 400);
    // A device administrator (people_write, no personal data, no
    // accounts) is not told whose login is linked to the person.
    let device_admin = role_token(s, "offboard-da", "device_admin").await;
    let page = get(
        &device_admin,
        format!("/console/people/{person}/offboard?action=remove_management"),
    )
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(page.contains("1 linked account(s)"), "{page}");
    assert!(!page.contains("leaver-admin"), "{page}");
    let r = post(&officer, "remove_management").await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("id=\"offboard-done\""), "{page}");
    // Again: the pending removal stands (no second command, no new
    // deadline).
    assert_eq!(
        post(&officer, "remove_management").await.unwrap().status(),
        200
    );
    let (_, cmds) = app
        .get(&format!("/api/v1/devices/{}/commands", phone.udid()))
        .await;
    let removals = cmds["commands"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["request_type"] == "RemoveProfile")
        .count();
    assert_eq!(removals, 1);
    assert!(
        page.contains("leaver-admin waits for an account manager"),
        "{page}"
    );
    let (_, p) = app.get(&format!("/api/v1/people/{person}")).await;
    assert!(p["departed_at"].is_string(), "{p}");
    // The person's page says when their personal data goes.
    let page = get(&officer, format!("/console/people/{person}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"person-purge\""), "{page}");
    let (_, cmds) = app
        .get(&format!("/api/v1/devices/{}/commands", phone.udid()))
        .await;
    assert!(cmds["commands"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["request_type"] == "RemoveProfile"));
}

/// Importing people from the page: checked first with nothing written
/// (every refused row named, people already known included), imported
/// with one press, and a second press adds no one.
#[tokio::test]
async fn an_import_is_checked_before_anything_is_written() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let officer = role_token(s, "import-officer", "security_officer").await;
    let viewer = role_token(s, "import-viewer", "viewer").await;
    let (st, _) = app
        .send(
            reqwest::Method::POST,
            "/api/v1/people",
            Some(serde_json::json!({"name": "Known", "user_id": "known", "email": "known@example.jp"})),
        )
        .await;
    assert_eq!(st, 201);
    let people = || async {
        let (_, p) = app.get("/api/v1/people?limit=100").await;
        p["people"].as_array().unwrap().len()
    };
    assert_eq!(people().await, 1);
    let post = |token: &str, csv: &str, step: &str| {
        app.http
            .post(app.admin_url("/console/people/import"))
            .bearer_auth(token)
            .header("accept-language", "en")
            .form(&[("csv", csv), ("step", step)])
            .send()
    };
    let (st, _) = get(&app, &viewer, "/console/people/import").await;
    assert_eq!(st, 403);
    let (st, page) = get(&app, &officer, "/console/people/import").await;
    assert_eq!(st, 200);
    assert!(page.contains("id=\"import-form\""));

    let bad = "name,user_id,email\nAiko,aiko,aiko@example.jp\nNo Mail,nomail,\nAgain,known,again@example.jp\n";
    for step in ["check", "import"] {
        let r = post(&officer, bad, step).await.unwrap();
        assert_eq!(r.status(), 400, "{step}");
        let page = r.text().await.unwrap();
        assert!(page.contains("2 row(s) refused"), "{page}");
        assert!(page.contains("data-line=\"3\""), "{page}");
        assert!(page.contains("a person with this user_id exists"), "{page}");
        assert!(!page.contains("id=\"import-go\""));
    }
    assert_eq!(people().await, 1, "nothing written");

    let good = "name,user_id,email,status\nAiko,aiko,aiko@example.jp,active\nBen,ben,ben@example.jp,departed\n";
    let r = post(&officer, good, "check").await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Ready: 2 people would be added (1 of them departed)"),
        "{page}"
    );
    assert!(page.contains("id=\"import-go\""));
    assert_eq!(people().await, 1, "a check writes nothing");
    let r = post(&officer, good, "import").await.unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.text().await.unwrap().contains("2 people imported."));
    assert_eq!(people().await, 3);
    // The same press again: refused by the check, no one added.
    let r = post(&officer, good, "import").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(people().await, 3);
    assert_eq!(post(&viewer, good, "import").await.unwrap().status(), 403);
}

/// An export from the page: asked after a step-up, downloaded only once a
/// second administrator approved, once; a token (no step-up) is asked to
/// prove who it is, and nothing is requested.
#[tokio::test]
async fn an_export_waits_for_a_second_person_and_downloads_once() {
    use crate::admins::onboard_webauthn;
    use mamori_domain::Role;
    let app = spawn_app().await;
    let s = &app.running.services;
    let (st, _) = app
        .send(
            reqwest::Method::POST,
            "/api/v1/people",
            Some(serde_json::json!({"name": "Exported One", "user_id": "exp1", "email": "exp1@example.jp"})),
        )
        .await;
    assert_eq!(st, 201);
    let token = role_token(s, "export-token", "security_officer").await;
    let r = app
        .http
        .post(app.admin_url("/console/people/exports"))
        .bearer_auth(&token)
        .header("accept-language", "en")
        .form(&[("field", "name")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a token has no step-up");
    assert!(r.text().await.unwrap().contains("id=\"step-up"));

    let (officer, _key) = onboard_webauthn(&app, "export-officer", Role::SecurityOfficer).await;
    let post = |path: &str, form: Vec<(&str, String)>| {
        let mut req = crate::console::browser(&app)
            .post(format!("{}{}", officer.base, path))
            .header("user-agent", &officer.ua)
            .header("accept-language", "en")
            .form(&form);
        if let Some(c) = &officer.cookie {
            req = req.header("cookie", c);
        }
        if let Some(t) = &officer.csrf {
            req = req.header("x-csrf-token", t);
        }
        req.send()
    };
    let r = post(
        "/console/people/exports",
        vec![("field", "name".into()), ("field", "email".into())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303, "asked");
    let to = crate::console::location(&r);
    let id = to.split("id=").nth(1).unwrap().to_owned();
    // Not approved yet: nothing to download.
    let r = post("/console/people/exports/download", vec![("id", id.clone())])
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    // A second person approves.
    let (mut owner, _k) = onboard_webauthn(&app, "export-approver", Role::SecurityOfficer).await;
    let (st, body) = owner
        .post(
            &format!("/api/v1/approvals/{id}/approve"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let r = post("/console/people/exports/download", vec![("id", id.clone())])
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csv = r.text().await.unwrap();
    assert!(
        csv.starts_with("id,name,email") || csv.contains("Exported One"),
        "{csv}"
    );
    let r = post("/console/people/exports/download", vec![("id", id.clone())])
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "once");
    assert!(app
        .audit_records()
        .await
        .iter()
        .any(|r| r["action"] == "people.export"));
}
