//! The people directory over the real API: CSV import, pseudonymous views,
//! plaintext only for the personal-data permission (each read recorded),
//! assignment rules, and the attacks: raw database and WAL scanned for
//! personal data, a viewer asking for plaintext, a wrong or missing master
//! key at start.

use crate::common::{role_token, spawn_app, test_config, TestApp};
use serde_json::{json, Value};

/// A synthetic person `i`: distinctive strings that cannot occur by chance.
pub fn synthetic(i: usize) -> (String, String, String, String) {
    (
        format!("Zephyrine Quillfeather {i:05}"),
        format!("zquill{i:05}"),
        format!("zephyrine.quillfeather.{i:05}@mamori-corp.example"),
        format!("+81-3-5550-{i:05}"),
    )
}

pub fn csv_of(range: std::ops::Range<usize>) -> String {
    let mut out = String::from("name,user_id,email,department,phone,status\n");
    for i in range {
        let (name, user, email, phone) = synthetic(i);
        out.push_str(&format!("{name},{user},{email},Sales,{phone},active\n"));
    }
    out
}

pub async fn import(app: &TestApp, token: &str, csv: String) -> (u16, Value) {
    let r = app
        .http
        .post(app.admin_url("/api/v1/people/import"))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let r = app
        .http
        .get(app.admin_url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every file of the database (main file, WAL, shared memory).
pub fn db_files(app: &TestApp) -> Vec<(String, Vec<u8>)> {
    let dir = app.dir.path().join("data");
    ["mamori.db", "mamori.db-wal", "mamori.db-shm"]
        .iter()
        .filter_map(|f| {
            std::fs::read(dir.join(f))
                .ok()
                .map(|b| ((*f).to_owned(), b))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_database_file_holds_no_personal_data() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let admin = role_token(s, "dir-admin", "device_admin").await;
    let (st, body) = import(&app, &admin, csv_of(0..1000)).await;
    assert_eq!(
        (st, body.clone()),
        (201, json!({"imported": 1000})),
        "{body}"
    );
    // Lookups, a change and plaintext reads also went through the store.
    let (_, _, email, _) = synthetic(7);
    let (st, found) = get(
        &app,
        &admin,
        &format!("/api/v1/people/lookup?email={email}"),
    )
    .await;
    assert_eq!(st, 200, "{found}");
    let officer = role_token(s, "officer", "security_officer").await;
    let id = found["id"].as_str().unwrap().to_owned();
    let (st, plain) = get(
        &app,
        &officer,
        &format!("/api/v1/people/{id}/personal-data"),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(plain["email"], email.as_str());

    let files = db_files(&app);
    assert!(
        files.iter().any(|(n, _)| n == "mamori.db-wal"),
        "WAL present"
    );
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    assert!(
        total > 100_000,
        "the files hold the 1,000 people ({total} bytes)"
    );
    // Every synthetic name, user ID, e-mail and phone contains one of these
    // fragments; none may appear anywhere in any file.
    for (file, bytes) in &files {
        for fragment in ["Quillfeather", "zquill", "mamori-corp", "+81-3-5550-"] {
            assert!(!contains(bytes, fragment), "{fragment} found in {file}");
        }
    }
    // The fragments are what the people's data looks like (the check
    // would find them if they were there).
    let (name, user, email, phone) = synthetic(999);
    assert!(name.contains("Quillfeather") && user.contains("zquill"));
    assert!(email.contains("mamori-corp") && phone.contains("+81-3-5550-"));
    // Nor do the names ever come out of the pseudonymous views or the audit.
    let (_, list) = get(&app, &admin, "/api/v1/people?limit=1000").await;
    assert_eq!(list["people"].as_array().unwrap().len(), 1000);
    let audit = app.audit_records().await;
    for text in [list.to_string(), Value::Array(audit).to_string()] {
        assert!(!text.contains("Quillfeather") && !text.contains("mamori-corp"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_needs_the_personal_data_permission_and_every_read_is_recorded() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let admin = role_token(s, "dir-admin", "device_admin").await;
    assert_eq!(import(&app, &admin, csv_of(0..5)).await.0, 201);
    let (_, list) = get(&app, &admin, "/api/v1/people").await;
    let people = list["people"].as_array().unwrap();
    assert_eq!(people.len(), 5);
    assert!(people[0].get("name").is_none() && people[0].get("email").is_none());
    let id = people[0]["id"].as_str().unwrap().to_owned();

    for role in ["viewer", "helpdesk", "device_admin", "owner"] {
        let t = role_token(s, &format!("no-pd-{role}"), role).await;
        for path in [
            format!("/api/v1/people/{id}/personal-data"),
            "/api/v1/people/personal-data".to_owned(),
        ] {
            assert_eq!(get(&app, &t, &path).await.0, 403, "{role} {path}");
        }
    }
    let officer = role_token(s, "officer", "security_officer").await;
    let (st, one) = get(
        &app,
        &officer,
        &format!("/api/v1/people/{id}/personal-data"),
    )
    .await;
    assert_eq!(st, 200);
    assert!(one["name"]
        .as_str()
        .unwrap()
        .starts_with("Zephyrine Quillfeather"));
    let (st, page) = get(&app, &officer, "/api/v1/people/personal-data?limit=3").await;
    assert_eq!(st, 200);
    assert_eq!(page["people"].as_array().unwrap().len(), 3);

    let audit = app.audit_records().await;
    let reads: Vec<&Value> = audit
        .iter()
        .filter(|r| r["action"] == "people.read")
        .collect();
    assert_eq!(reads.len(), 4, "one record per person read");
    assert!(reads
        .iter()
        .all(|r| r["actor"].as_str().unwrap().ends_with(":officer")));
    assert!(reads
        .iter()
        .all(|r| r["detail"] == "fields=name,user_id,email,department,phone"));
    assert_eq!(reads[0]["target"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_imports_are_refused_whole_with_every_bad_line_named() {
    let app = spawn_app().await;
    let admin = role_token(&app.running.services, "dir-admin", "device_admin").await;
    let count = |app: &TestApp| {
        let s = app.running.services.clone();
        async move { s.store.count_people().await.unwrap() }
    };
    assert_eq!(import(&app, &admin, csv_of(0..3)).await.0, 201);
    let mut bad = csv_of(10..14);
    let (name, user, email, phone) = synthetic(11);
    bad.push_str(&format!(
        "{name} again,{user}x,{email},Sales,{phone},active\n"
    )); // line 6: e-mail of line 3
    bad.push_str("No Mail,nomail,,Sales,,active\n"); // line 7
    bad.push_str("Bad Status,badstatus,bad@mamori-corp.example,,,retired\n"); // line 8
    bad.push_str("Short,row\n"); // line 9
    let (_, _, taken, _) = synthetic(1);
    bad.push_str(&format!("Dup Of Stored,dupstored,{taken},,,active\n")); // line 10
    let (st, body) = import(&app, &admin, bad).await;
    assert_eq!(st, 400, "{body}");
    let lines: Vec<u64> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![6, 7, 8, 9], "{body}");
    assert!(
        !body.to_string().contains("mamori-corp"),
        "values are not echoed"
    );
    assert_eq!(count(&app).await, 3, "nothing of the file was stored");
    // The file without its bad lines still collides with a stored person.
    let mut dup = csv_of(20..22);
    dup.push_str(&format!("Dup Of Stored,dupstored,{taken},,,active\n"));
    let (st, body) = import(&app, &admin, dup).await;
    assert_eq!(st, 400);
    assert_eq!(body["rows"][0]["line"], 4);
    assert_eq!(body["rows"][0]["error"], "a person with this email exists");
    assert_eq!(count(&app).await, 3);
    // Malformed headers and content types.
    assert_eq!(import(&app, &admin, "nom,mail\nx,y\n".into()).await.0, 400);
    assert_eq!(
        import(&app, &admin, "name,user_id\nx,y\n".into()).await.0,
        400
    );
    let r = app
        .http
        .post(app.admin_url("/api/v1/people/import"))
        .bearer_auth(&admin)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(count(&app).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_are_added_changed_looked_up_and_given_devices() {
    use mamori_sim::{DeviceKind, SimOptions};
    let app = spawn_app().await;
    let admin = role_token(&app.running.services, "dir-admin", "device_admin").await;
    let post = |path: &str, body: Value| {
        let r = app
            .http
            .post(app.admin_url(path))
            .bearer_auth(&admin)
            .json(&body)
            .send();
        async move {
            let r = r.await.unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (st, hana) = post(
        "/api/v1/people",
        json!({"name": "Hana Sato", "user_id": "hsato", "email": "Hana.Sato@Example.JP", "phone": "+81 90 1234 5678"}),
    )
    .await;
    assert_eq!(st, 201, "{hana}");
    assert_eq!(hana["status"], "active");
    let id = hana["id"].as_str().unwrap().to_owned();
    // Same e-mail (any case) or user ID again: refused.
    let (st, _) = post(
        "/api/v1/people",
        json!({"name": "Other", "user_id": "other", "email": "hana.sato@example.jp"}),
    )
    .await;
    assert_eq!(st, 409);
    let (st, _) = post(
        "/api/v1/people",
        json!({"name": "Other", "user_id": "HSATO", "email": "o@example.jp"}),
    )
    .await;
    assert_eq!(st, 409);
    for bad in [
        json!({"name": "", "user_id": "x", "email": "x@example.jp"}),
        json!({"name": "X", "user_id": "x", "email": "not-an-address"}),
        json!({"name": "X", "user_id": "x y", "email": "x@example.jp"}),
        json!({"name": "X", "user_id": "x", "email": "x@example.jp", "phone": "call me"}),
        json!({"name": "X", "user_id": "x", "email": "x@example.jp", "status": "fired"}),
        json!({"name": "X", "user_id": "x", "email": "x@example.jp", "salary": 1}),
    ] {
        assert_eq!(post("/api/v1/people", bad.clone()).await.0, 400, "{bad}");
    }
    // Lookup by e-mail (normalised) and user ID.
    let (st, found) = get(
        &app,
        &admin,
        "/api/v1/people/lookup?email=HANA.SATO@example.jp",
    )
    .await;
    assert_eq!((st, found["id"].clone()), (200, json!(id)));
    let (st, _) = get(&app, &admin, "/api/v1/people/lookup?user_id=hsato").await;
    assert_eq!(st, 200);
    assert_eq!(
        get(
            &app,
            &admin,
            "/api/v1/people/lookup?email=nobody@example.jp"
        )
        .await
        .0,
        404
    );
    assert_eq!(get(&app, &admin, "/api/v1/people/lookup").await.0, 400);

    // A device is assigned, shows up on the person, and moves.
    let dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let udid = dev.info().udid.clone();
    let put = |path: String, body: Value| {
        let r = app
            .http
            .put(app.admin_url(&path))
            .bearer_auth(&admin)
            .json(&body)
            .send();
        async move { r.await.unwrap().status().as_u16() }
    };
    assert_eq!(
        put(
            format!("/api/v1/devices/{udid}/person"),
            json!({"person_id": id})
        )
        .await,
        204
    );
    let (_, p) = get(&app, &admin, &format!("/api/v1/people/{id}")).await;
    assert_eq!(p["devices"], json!([udid]));
    assert_eq!(
        put(
            "/api/v1/devices/NO-SUCH-DEVICE/person".into(),
            json!({"person_id": id})
        )
        .await,
        404
    );
    assert_eq!(
        put(
            format!("/api/v1/devices/{udid}/person"),
            json!({"person_id": "ffffffffffffffffffffffffffffffff"})
        )
        .await,
        404
    );

    // Departed: no new devices.
    let r = app
        .http
        .patch(app.admin_url(&format!("/api/v1/people/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"status": "departed", "department": "Finance"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["status"], "departed");
    assert!(p["departed_at"].is_string());
    assert_eq!(
        put(
            format!("/api/v1/devices/{udid}/person"),
            json!({"person_id": id})
        )
        .await,
        409
    );
    assert_eq!(
        put(
            format!("/api/v1/devices/{udid}/person"),
            json!({"person_id": null})
        )
        .await,
        204
    );
    let officer = role_token(&app.running.services, "officer", "security_officer").await;
    let (_, plain) = get(
        &app,
        &officer,
        &format!("/api/v1/people/{id}/personal-data"),
    )
    .await;
    assert_eq!(plain["department"], "Finance");
    assert_eq!(plain["email"], "hana.sato@example.jp");
    assert_eq!(plain["devices"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_to_start_with_a_wrong_or_missing_master_key() {
    let app = spawn_app().await;
    let admin = role_token(&app.running.services, "dir-admin", "device_admin").await;
    assert_eq!(import(&app, &admin, csv_of(0..2)).await.0, 201);
    let data = app.dir.path().join("data");
    let config = test_config(app.dir.path());
    let TestApp { running, dir, .. } = app;
    running.shutdown();

    let private = |p: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    for (file, message_missing, message_wrong) in [
        (
            "master.key",
            "master key is missing",
            "master key (master.key / MAMORI_MASTER_KEY) does not open",
        ),
        (
            "people.key",
            "people key is missing",
            "people key (people.key / MAMORI_PEOPLE_KEY) does not open",
        ),
    ] {
        let key_path = data.join(file);
        let right = std::fs::read(&key_path).unwrap();
        // A different key.
        std::fs::write(&key_path, hex::encode([7u8; 32])).unwrap();
        private(&key_path);
        let err = mamori::app::start(&config).await.expect_err("refused");
        assert!(
            format!("{err:#}").contains(message_wrong),
            "{file}: {err:#}"
        );
        // No key at all next to an existing database.
        std::fs::remove_file(&key_path).unwrap();
        let err = mamori::app::start(&config).await.expect_err("refused");
        assert!(
            format!("{err:#}").contains(message_missing),
            "{file}: {err:#}"
        );
        assert!(!key_path.exists(), "no new {file} was made");
        // The right key again.
        std::fs::write(&key_path, &right).unwrap();
        private(&key_path);
    }
    let running = mamori::app::start(&config).await.unwrap();
    let s = &running.services;
    let ctx = mamori_core::access::ClientContext::default();
    let (_, _, email, _) = synthetic(1);
    let found = s
        .lookup_person(&crate::common::authorized(), &ctx, Some(&email), None)
        .await
        .unwrap();
    // A change opens and reseals the fields: the data key unwraps.
    let input = mamori_core::people::PersonInput {
        department: Some("Legal".into()),
        ..Default::default()
    };
    s.update_person(
        &crate::common::authorized(),
        &ctx,
        found.id.as_str(),
        &input,
    )
    .await
    .unwrap();
    assert_eq!(
        s.list_people(&crate::common::authorized(), None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    running.shutdown();
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_person_is_gone_from_the_database_and_its_wal() {
    let app = crate::common::spawn_with(|c| c.people_retention_days = 0).await;
    let s = &app.running.services;
    let admin = role_token(s, "dir-admin", "device_admin").await;
    assert_eq!(import(&app, &admin, csv_of(0..10)).await.0, 201);
    let ctx = mamori_core::access::ClientContext::default();
    let (_, _, email, _) = synthetic(3);
    let leaver = s
        .lookup_person(&crate::common::authorized(), &ctx, Some(&email), None)
        .await
        .unwrap();
    let (_, _, email, _) = synthetic(4);
    let stayer = s
        .lookup_person(&crate::common::authorized(), &ctx, Some(&email), None)
        .await
        .unwrap();
    let departed = mamori_core::people::PersonInput {
        status: Some("departed".into()),
        ..Default::default()
    };
    s.update_person(
        &crate::common::authorized(),
        &ctx,
        leaver.id.as_str(),
        &departed,
    )
    .await
    .unwrap();
    let rec = s.store.person(&leaver.id).await.unwrap().unwrap();
    // What an attacker holding an old copy would look for.
    let sealed = rec.sealed[12..44].to_vec();
    let wrapped = rec.wrapped_key[12..44].to_vec();
    let in_files = |needle: &[u8]| {
        db_files(&app)
            .iter()
            .any(|(_, b)| b.windows(needle.len()).any(|w| w == needle))
    };
    assert!(
        in_files(&sealed) && in_files(&wrapped),
        "present before the purge"
    );

    assert_eq!(
        s.purge_due_people(&crate::common::operator(), &ctx)
            .await
            .unwrap(),
        1
    );
    assert!(
        !in_files(&sealed),
        "sealed fields left in the database or WAL"
    );
    assert!(!in_files(&wrapped), "data key left in the database or WAL");
    assert!(s.store.is_purged(&leaver.id).await.unwrap());
    let (st, _) = get(&app, &admin, &format!("/api/v1/people/{}", leaver.id)).await;
    assert_eq!(st, 404);
    assert_eq!(s.store.count_people().await.unwrap(), 9);
    assert_eq!(
        get(&app, &admin, &format!("/api/v1/people/{}", stayer.id))
            .await
            .0,
        200
    );
    let audit = app.audit_records().await;
    let purge = audit
        .iter()
        .find(|r| r["action"] == "people.purge")
        .unwrap()
        .clone();
    assert_eq!(purge["target"], leaver.id.as_str());
    // Nothing else is due.
    assert_eq!(
        s.purge_due_people(&crate::common::operator(), &ctx)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_departed_people_past_retention_are_purged() {
    let app = spawn_app().await; // retention: 30 days
    let s = &app.running.services;
    let admin = role_token(s, "dir-admin", "device_admin").await;
    assert_eq!(import(&app, &admin, csv_of(0..3)).await.0, 201);
    let ctx = mamori_core::access::ClientContext::default();
    let (_, _, email, _) = synthetic(0);
    let p = s
        .lookup_person(&crate::common::authorized(), &ctx, Some(&email), None)
        .await
        .unwrap();
    let departed = mamori_core::people::PersonInput {
        status: Some("departed".into()),
        ..Default::default()
    };
    s.update_person(&crate::common::authorized(), &ctx, p.id.as_str(), &departed)
        .await
        .unwrap();
    assert_eq!(
        s.purge_due_people(&crate::common::operator(), &ctx)
            .await
            .unwrap(),
        0,
        "left today"
    );
    // Purge now by hand: a token cannot (step-up), an active person cannot be.
    let r = app
        .http
        .post(app.admin_url(&format!("/api/v1/people/{}/purge", p.id)))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (_, _, email, _) = synthetic(1);
    let active = s
        .lookup_person(&crate::common::authorized(), &ctx, Some(&email), None)
        .await
        .unwrap();
    assert!(s
        .purge_person_now(&crate::common::authorized(), &ctx, active.id.as_str())
        .await
        .is_err());
    s.purge_person_now(&crate::common::authorized(), &ctx, p.id.as_str())
        .await
        .unwrap();
    assert_eq!(
        s.list_people(&crate::common::authorized(), None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offboarding_closes_accounts_and_takes_devices_out_in_one_step() {
    use mamori_sim::{CommandStatus, DeviceKind, SimOptions};
    let app = spawn_app().await;
    let s = &app.running.services;
    let directory = role_token(s, "dir-admin", "device_admin").await;
    let post = |path: String, token: String, body: Value| {
        let r = app
            .http
            .post(app.admin_url(&path))
            .bearer_auth(token)
            .json(&body)
            .send();
        async move {
            let r = r.await.unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (st, taro) = post(
        "/api/v1/people".into(),
        directory.clone(),
        json!({"name": "Taro Suzuki", "user_id": "tsuzuki", "email": "taro@example.jp"}),
    )
    .await;
    assert_eq!(st, 201);
    let person = taro["id"].as_str().unwrap().to_owned();
    // Taro is also a helpdesk administrator, with a session and a token.
    let (mut session, _, _) =
        crate::admins::onboard_totp(&app, "taro", mamori_domain::Role::Helpdesk).await;
    let token = role_token(s, "taro", "helpdesk").await;
    let r = app
        .http
        .put(app.admin_url("/api/v1/admins/taro/person"))
        .bearer_auth(&app.token)
        .json(&json!({"person_id": person}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // And has a phone.
    let mut phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let udid = phone.info().udid.clone();
    let r = app
        .http
        .put(app.admin_url(&format!("/api/v1/devices/{udid}/person")))
        .bearer_auth(&directory)
        .json(&json!({"person_id": person}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(session.get("/api/v1/devices").await.0, 200);

    // An owner offboards (closing accounts needs accounts_manage; see
    // offboarding_by_people_write_alone_cannot_close_accounts).
    let (st, report) = post(
        format!("/api/v1/people/{person}/offboard"),
        app.token.clone(),
        json!({}),
    )
    .await;
    assert_eq!(st, 200, "{report}");
    assert_eq!(
        report["accounts"],
        json!([{"name": "taro", "sessions_revoked": 1, "tokens_revoked": 1}])
    );
    assert_eq!(report["accounts_waiting"], json!([]));
    assert_eq!(report["devices"][0]["udid"], udid.as_str());
    let command = report["devices"][0]["command_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(report["devices"][0]["revoke_deadline"].is_string());
    // The account is closed on its very next request, session and token.
    assert_eq!(session.get("/api/v1/devices").await.0, 401);
    let r = app
        .http
        .get(app.admin_url("/api/v1/devices"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // ...and that use of the dead token raised an alert.
    let audit = app.audit_records().await;
    let alert = audit
        .iter()
        .find(|r| r["action"] == "alert.token_after_offboarding")
        .expect("alert")
        .clone();
    assert_eq!(
        alert["detail"],
        "severity=high owner=taro disabled (offboarded)"
    );
    assert_eq!(alert["source"], "127.0.0.1");
    let (_, p) = get(&app, &directory, &format!("/api/v1/people/{person}")).await;
    assert_eq!(p["status"], "departed");

    // The phone collects RemoveProfile for its enrollment profile, answers,
    // and is out: its certificate no longer works.
    let creds = phone.credentials();
    let handled = phone.run_queue().await.unwrap();
    assert_eq!(handled.len(), 1, "{handled:?}");
    assert_eq!(handled[0].request_type, "RemoveProfile");
    assert_eq!(handled[0].command_uuid, command);
    assert_eq!(handled[0].status, CommandStatus::Acknowledged);
    // Its certificate is revoked (the CheckOut that followed was already
    // refused), and the device is no longer enrolled.
    drop(creds);
    let key = mamori_domain::DeviceKey::parse(&udid).unwrap();
    let certs = s.store.device_certificates(&key).await.unwrap();
    assert!(!certs.is_empty() && certs.iter().all(|c| c.revoked_at.is_some()));
    let (_, dev) = app.get(&format!("/api/v1/devices/{udid}")).await;
    assert_ne!(dev["status"], "enrolled", "{dev}");
    let audit = app.audit_records().await;
    let actions: Vec<&str> = audit
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for a in [
        "people.offboard",
        "admin.disable",
        "device.offboard",
        "device.retire",
    ] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
    // Offboarding again changes nothing more.
    let (st, again) = post(
        format!("/api/v1/people/{person}/offboard"),
        app.token.clone(),
        json!({}),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(again["accounts"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_people_key_rotates_while_the_server_runs() {
    let app = spawn_app().await;
    let s = app.running.services.clone();
    let admin = role_token(&s, "dir-admin", "device_admin").await;
    let officer = role_token(&s, "officer", "security_officer").await;
    assert_eq!(import(&app, &admin, csv_of(0..50)).await.0, 201);
    let data = app.dir.path().join("data");
    let old_ring = std::fs::read_to_string(data.join("people.key")).unwrap();
    let store = mamori::app::open_store(&data).await.unwrap();
    let backup = app.dir.path().join("before-rotation.mbk");
    mamori::backup::create(&s, &store, &data, &backup)
        .await
        .unwrap();

    // The command line's own services, as `mamori keys rotate` builds them.
    let config = test_config(app.dir.path());
    let pusher =
        std::sync::Arc::new(mamori_push::ApnsPusher::new(&config.apns_url, Vec::new()).unwrap());
    let (cli, _, ring) = mamori::app::build_services(
        &config,
        "https://localhost:8443",
        "https://localhost:9443",
        pusher,
        false,
    )
    .await
    .unwrap();
    // People keep arriving through the running server during the rotation.
    let arrivals = {
        let app_http = app.http.clone();
        let url = app.admin_url("/api/v1/people/import");
        let admin = admin.clone();
        tokio::spawn(async move {
            for batch in 0..8 {
                let r = app_http
                    .post(&url)
                    .bearer_auth(&admin)
                    .header("content-type", "text/csv")
                    .body(csv_of(100 + batch * 5..105 + batch * 5))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                tokio::time::sleep(std::time::Duration::from_millis(700)).await;
            }
        })
    };
    let at = mamori::keys::RingAt {
        ring: &ring.ring,
        source: ring.source,
        dir: &data,
    };
    let rotation =
        mamori::keys::rotate_people_key(&cli, at, None, std::time::Duration::from_secs(6))
            .await
            .unwrap();
    arrivals.await.unwrap();
    assert!(rotation.rewrapped >= 50, "{rotation:?}");
    // Rows the server wrapped with the old key after the last pass would
    // show here; give the server time to reload, then check every key.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(s
        .store
        .person_keys_not_under(&rotation.current, 10)
        .await
        .unwrap()
        .is_empty());
    let new_ring = std::fs::read_to_string(data.join("people.key")).unwrap();
    assert_ne!(new_ring, old_ring);
    assert_eq!(new_ring.lines().count(), 1);
    assert_eq!(
        std::fs::read_to_string(rotation.retired_file.as_ref().unwrap()).unwrap(),
        old_ring
    );
    // The running server reads every person, old and new, and makes more.
    assert_eq!(s.store.count_people().await.unwrap(), 90);
    let (_, page) = get(&app, &officer, "/api/v1/people/personal-data?limit=1000").await;
    assert_eq!(page["people"].as_array().unwrap().len(), 90);
    assert_eq!(import(&app, &admin, csv_of(900..901)).await.0, 201);
    let (_, _, email, _) = synthetic(3);
    let (st, _) = get(
        &app,
        &admin,
        &format!("/api/v1/people/lookup?email={email}"),
    )
    .await;
    assert_eq!(st, 200);
    // A backup from before the rotation needs the retired key.
    let err = mamori::backup::verify(&s, &data, &backup)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("not loaded"), "{err:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_an_offboarded_persons_devices_needs_a_second_administrator() {
    use mamori_sim::{DeviceKind, SimOptions};
    let app = spawn_app().await;
    let s = &app.running.services;
    let (mut dana, _, _) =
        crate::admins::onboard_totp(&app, "dana", mamori_domain::Role::DeviceAdmin).await;
    let (st, p) = dana
        .post(
            "/api/v1/people",
            json!({"name": "Mei Ito", "user_id": "mito", "email": "mei@example.jp"}),
        )
        .await;
    assert_eq!(st, 201, "{p}");
    let person = p["id"].as_str().unwrap().to_owned();
    let mut phones = Vec::new();
    for kind in [DeviceKind::IPhone, DeviceKind::Mac] {
        let dev = app.enrolled(kind, SimOptions::default()).await;
        let udid = dev.info().udid.clone();
        let (st, _) = dana
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/devices/{udid}/person"),
                Some(json!({"person_id": person})),
            )
            .await;
        assert_eq!(st, 204);
        phones.push(dev);
    }
    let (st, report) = dana
        .post(
            &format!("/api/v1/people/{person}/offboard"),
            json!({"device_action": "erase"}),
        )
        .await;
    assert_eq!(st, 200, "{report}");
    let approval = report["erase_approval"].as_str().unwrap().to_owned();
    assert!(report["devices"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["command_uuid"].is_null()));
    // Nothing is queued yet.
    for dev in &mut phones {
        assert!(dev.connect_idle().await.unwrap().is_none());
    }
    let (_, pending) = app.get("/api/v1/approvals").await;
    assert_eq!(pending["approvals"][0]["id"], approval.as_str());
    assert_eq!(
        pending["approvals"][0]["devices"].as_array().unwrap().len(),
        2
    );
    // The asker cannot approve their own request; a token cannot at all.
    let (st, _) = dana
        .post(&format!("/api/v1/approvals/{approval}/approve"), json!({}))
        .await;
    assert_eq!(st, 403);
    let r = app
        .post(&format!("/api/v1/approvals/{approval}/approve"), json!({}))
        .await;
    assert_eq!(r.status(), 403);
    // A second administrator approves: the devices are erased and retired.
    let (mut omar, _) =
        crate::admins::onboard_webauthn(&app, "omar", mamori_domain::Role::Owner).await;
    let (st, done) = omar
        .post(&format!("/api/v1/approvals/{approval}/approve"), json!({}))
        .await;
    assert_eq!(st, 200, "{done}");
    assert_eq!(done["approval"]["status"], "approved");
    assert_eq!(done["commands"].as_array().unwrap().len(), 2);
    let (st, _) = omar
        .post(&format!("/api/v1/approvals/{approval}/approve"), json!({}))
        .await;
    assert_eq!(st, 409, "decided once");
    for dev in &mut phones {
        let handled = dev.run_queue().await.unwrap();
        assert_eq!(handled.len(), 1);
        assert_eq!(handled[0].request_type, "EraseDevice");
        let key = mamori_domain::DeviceKey::parse(&dev.info().udid).unwrap();
        let certs = s.store.device_certificates(&key).await.unwrap();
        assert!(certs.iter().all(|c| c.revoked_at.is_some()));
    }
    let audit = app.audit_records().await;
    let actions: Vec<&str> = audit
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for a in ["approval.request", "approval.approve", "device.retire"] {
        assert!(actions.contains(&a), "{a}: {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_device_says_about_its_user_is_sealed_at_rest() {
    use mamori_sim::{DeviceInfo, DeviceKind, SimDevice, SimOptions};
    let app = spawn_app().await;
    let mut info = DeviceInfo::random(DeviceKind::IPhone);
    info.device_name = "Zephyrine Quillfeather's iPhone".into();
    let profile = app.profile(json!({})).await;
    let mut dev = SimDevice::with_info(info, SimOptions::default());
    dev.enroll(&profile, Some(&app.tls_ca_pem)).await.unwrap();
    let udid = dev.info().udid.clone();
    app.enqueue(
        &[&udid],
        json!({"RequestType": "DeviceInformation", "Queries": ["DeviceName", "OSVersion", "SerialNumber"]}),
    )
    .await;
    let handled = dev.run_queue().await.unwrap();
    assert_eq!(handled.len(), 1);
    // A security officer sees the name (the owner does not:
    // device_privacy.rs); the database files do not hold it.
    let officer = role_token(&app.running.services, "officer", "security_officer").await;
    let get = |path: String| {
        let r = app
            .http
            .get(app.admin_url(&path))
            .bearer_auth(&officer)
            .send();
        async move {
            let r = r.await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (st, d) = get(format!("/api/v1/devices/{udid}")).await;
    assert_eq!(st, 200);
    assert_eq!(d["device_name"], "Zephyrine Quillfeather's iPhone");
    assert_eq!(
        d["device_information"]["DeviceName"],
        "Zephyrine Quillfeather's iPhone"
    );
    assert!(
        d["os_version"].is_string(),
        "typed fields stay readable: {d}"
    );
    let (_, list) = get("/api/v1/devices".into()).await;
    assert_eq!(
        list["devices"][0]["device_name"],
        "Zephyrine Quillfeather's iPhone"
    );
    for (file, bytes) in db_files(&app) {
        assert!(!contains(&bytes, "Quillfeather"), "device name in {file}");
    }
}
