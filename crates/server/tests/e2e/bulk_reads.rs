//! The bulk personal-data read limit against an insider who spreads the
//! reads (several tokens of one account, several accounts on one network,
//! concurrent requests), suspension that sticks until another
//! administrator reinstates the account, and a breach scope that lists
//! exactly the people whose data left the server.

use crate::admins::{onboard_webauthn, Browser, PASSWORD};
use crate::common::{client_from, role_token, spawn_app, TestApp};
use crate::people::{csv_of, import};
use mamori_domain::Role;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::{RequestChallengeResponse, Url};

/// A server with `n` people in its directory; their IDs in listing order.
async fn directory(n: usize) -> (TestApp, Vec<String>) {
    let app = spawn_app().await;
    let admin = role_token(&app.running.services, "dir-admin", "device_admin").await;
    assert_eq!(import(&app, &admin, csv_of(0..n)).await.0, 201);
    let (st, all) = app.get("/api/v1/people?limit=1000").await;
    assert_eq!(st, 200, "{all}");
    let ids = all["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    (app, ids)
}

/// GET with a bearer token from a source address: status, body.
async fn get_from(app: &TestApp, source: &str, token: &str, path: &str) -> (u16, Value) {
    let r = client_from(app, source)
        .get(app.admin_url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

/// The plaintext page of `limit` people after the `skip`-th.
fn page(ids: &[String], skip: usize, limit: usize) -> String {
    match skip {
        0 => format!("/api/v1/people/personal-data?limit={limit}"),
        n => format!(
            "/api/v1/people/personal-data?limit={limit}&after={}",
            ids[n - 1]
        ),
    }
}

fn people_in(body: &Value) -> Vec<String> {
    body["people"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| p["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The people the breach-scope report names (for `query`).
async fn scope(app: &TestApp, query: &str) -> (Value, BTreeSet<String>) {
    let (st, r) = app
        .get(&format!("/api/v1/reports/breach-scope{query}"))
        .await;
    assert_eq!(st, 200, "{r}");
    let people = r["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["person"].as_str().unwrap().to_owned())
        .collect();
    (r, people)
}

fn token_label(token: &str, account: &str) -> String {
    format!("token:{}:{account}", token.split('_').nth(1).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_with_many_tokens_is_one_reader() {
    let (app, ids) = directory(600).await;
    let s = &app.running.services;
    let mut tokens = Vec::new();
    for _ in 0..4 {
        tokens.push(role_token(s, "insider", "security_officer").await);
    }
    // Each token from its own network: only the account's limit applies.
    let mut delivered = BTreeSet::new();
    for (i, t) in tokens.iter().enumerate().take(3) {
        let (st, body) = get_from(
            &app,
            &format!("127.0.{}.1", 10 + i),
            t,
            &page(&ids, i * 100, 100),
        )
        .await;
        assert_eq!(st, 200, "token {i}: {body}");
        delivered.extend(people_in(&body));
    }
    assert_eq!(delivered.len(), 300);
    // The account's 301st person: refused, whatever the token.
    let (st, body) = get_from(&app, "127.0.13.1", &tokens[3], &page(&ids, 300, 100)).await;
    assert_eq!(st, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("suspended"),
        "{body}"
    );
    for t in &tokens {
        assert_eq!(
            get_from(&app, "127.0.10.1", t, "/api/v1/devices").await.0,
            401
        );
    }
    let alert = app
        .audit_records()
        .await
        .into_iter()
        .find(|r| r["action"] == "alert.bulk_personal_data_read")
        .unwrap();
    assert!(
        alert["detail"]
            .as_str()
            .unwrap()
            .contains("by=account insider"),
        "{alert}"
    );
    let (report, people) = scope(&app, "").await;
    assert_eq!(report["people_affected"], 300, "{report}");
    assert_eq!(people, delivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_accounts_on_one_network_are_one_reader() {
    let (app, ids) = directory(600).await;
    let s = &app.running.services;
    let a = role_token(s, "reader-a", "security_officer").await;
    let b = role_token(s, "reader-b", "security_officer").await;
    let c = role_token(s, "reader-c", "security_officer").await;
    let (st, _) = get_from(&app, "127.0.20.1", &a, &page(&ids, 0, 200)).await;
    assert_eq!(st, 200);
    // Another account, another address of the same /24: 200 + 200 > 300.
    let (st, body) = get_from(&app, "127.0.20.77", &b, &page(&ids, 200, 200)).await;
    assert_eq!(st, 403, "{body}");
    // Refused, but not suspended: the network's window is everyone's on
    // it, and b did not fill it (the outside attack's finding: one officer
    // kept the window full and got every colleague who then read
    // suspended). b still works, and reads again from another network.
    assert!(
        !body["error"].as_str().unwrap().contains("suspended"),
        "{body}"
    );
    assert_eq!(
        get_from(&app, "127.0.20.77", &b, "/api/v1/devices").await.0,
        200
    );
    let (st, body) = get_from(&app, "127.0.22.1", &b, &page(&ids, 200, 10)).await;
    assert_eq!(st, 200, "{body}");
    // Another network is another reader.
    let (st, _) = get_from(&app, "127.0.21.1", &c, &page(&ids, 400, 200)).await;
    assert_eq!(st, 200);
    let alert = app
        .audit_records()
        .await
        .into_iter()
        .find(|r| r["action"] == "alert.bulk_personal_data_read")
        .unwrap();
    assert_eq!(alert["target"], token_label(&b, "reader-b"));
    assert!(
        alert["detail"]
            .as_str()
            .unwrap()
            .contains("by=network 127.0.20.0/24"),
        "{alert}"
    );
    let (report, _) = scope(&app, "").await;
    assert_eq!(report["people_affected"], 410, "{report}");
    assert!(app
        .audit_records()
        .await
        .iter()
        .all(|r| r["action"] != "actor.suspend"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_is_exact_and_holds_under_concurrency() {
    let (app, ids) = directory(600).await;
    let s = &app.running.services;
    // "More than 300": 300 people are allowed, the 301st is not.
    let exact = role_token(s, "exact", "security_officer").await;
    let (st, body) = get_from(&app, "127.0.30.1", &exact, &page(&ids, 0, 300)).await;
    assert_eq!(st, 200, "300 people is not more than 300: {body}");
    let first: BTreeSet<String> = people_in(&body).into_iter().collect();
    assert_eq!(first.len(), 300);
    let (st, _) = get_from(
        &app,
        "127.0.30.1",
        &exact,
        &format!("/api/v1/people/{}/personal-data", ids[300]),
    )
    .await;
    assert_eq!(st, 403);
    let (report, people) = scope(&app, &format!("?actor={}", token_label(&exact, "exact"))).await;
    assert_eq!(report["records"], 300, "{report}");
    assert_eq!(people, first, "the refused person is not in the scope");

    // 40 requests of 10 distinct people at once on one token.
    let racer = role_token(s, "racer", "security_officer").await;
    let http = client_from(&app, "127.0.31.1");
    let mut requests = tokio::task::JoinSet::new();
    for k in 0..40 {
        let r = http
            .get(app.admin_url(&page(&ids, 200 + k * 10, 10)))
            .bearer_auth(&racer)
            .send();
        requests.spawn(async move {
            let r = r.await.unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap_or(Value::Null))
        });
    }
    let mut delivered = BTreeSet::new();
    let mut count = 0;
    while let Some(answer) = requests.join_next().await {
        let (st, body) = answer.unwrap();
        match st {
            200 => {
                count += people_in(&body).len();
                delivered.extend(people_in(&body));
            }
            401 | 403 => {}
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(count, 300, "exactly the limit, never more");
    let (report, people) = scope(&app, &format!("?actor={}", token_label(&racer, "racer"))).await;
    assert_eq!(report["records"], 300, "{report}");
    assert_eq!(people, delivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_discloses_nobody() {
    let (app, _) = directory(600).await;
    let s = &app.running.services;
    let t = role_token(s, "greedy", "security_officer").await;
    let (st, body) = get_from(
        &app,
        "127.0.40.1",
        &t,
        "/api/v1/people/personal-data?limit=1000",
    )
    .await;
    assert_eq!(st, 403, "{body}");
    assert!(body.get("people").is_none());
    let label = token_label(&t, "greedy");
    let (report, people) = scope(&app, &format!("?actor={label}")).await;
    assert_eq!(report["records"], 0, "{report}");
    assert!(people.is_empty());
    // The attempt itself is on record, before anything was read.
    let audit = app.audit_records().await;
    let intent = audit
        .iter()
        .find(|r| r["action"] == "people.read_intent" && r["actor"] == label.as_str())
        .unwrap();
    assert_eq!(intent["outcome"], "attempt");
    assert!(intent["detail"].as_str().unwrap().contains("limit=1000"));
    // The incident the alert opened has an empty scope.
    let (_, list) = app.get("/api/v1/incidents").await;
    let id = list["incidents"][0]["id"].as_str().unwrap().to_owned();
    let (_, view) = app.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(view["notification"]["affected"], 0, "{view}");
}

fn origin(app: &TestApp) -> Url {
    Url::parse(&format!(
        "https://localhost:{}",
        app.running.admin_addr.port()
    ))
    .unwrap()
}

/// Password, then the passkey: the status of each step, and the browser.
async fn login(app: &TestApp, name: &str, key: &mut SoftPasskey) -> (u16, u16, Browser) {
    let mut b = Browser::new(app);
    let (st, _) = b
        .post(
            "/api/v1/auth/login",
            json!({"name": name, "password": PASSWORD}),
        )
        .await;
    if st != 200 {
        return (st, 0, b);
    }
    let (st, options) = b.post("/api/v1/auth/webauthn/login/start", json!({})).await;
    if st != 200 {
        return (200, st, b);
    }
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let assertion = key.do_authentication(origin(app), options).unwrap();
    let (st, _) = b
        .post(
            "/api/v1/auth/webauthn/login/finish",
            json!({"credential": assertion}),
        )
        .await;
    (200, st, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_account_stays_suspended_until_another_reinstates_it() {
    let (app, ids) = directory(400).await;
    let (mut sora, mut key) = onboard_webauthn(&app, "sora", Role::SecurityOfficer).await;
    let (st, tok) = sora.post("/api/v1/tokens", json!({"name": "script"})).await;
    assert_eq!(st, 201, "{tok}");
    let token = tok["secret"].as_str().unwrap().to_owned();
    let (st, _) = sora.get(&page(&ids, 0, 200)).await;
    assert_eq!(st, 200);
    let (st, body) = sora.get(&page(&ids, 200, 200)).await;
    assert_eq!(st, 403, "{body}");
    // Session and token are dead.
    assert_eq!(sora.get("/api/v1/auth/session").await.0, 401);
    assert_eq!(
        get_from(&app, "127.0.0.1", &token, "/api/v1/devices")
            .await
            .0,
        401
    );
    // Logging in again with password and passkey does not bring it back.
    let (password, factor, mut again) = login(&app, "sora", &mut key).await;
    assert!(
        password == 401 || factor == 401,
        "login after suspension: {password} {factor}"
    );
    assert_eq!(again.get(&page(&ids, 0, 1)).await.0, 401);
    // Nor does a token minted on the host for it.
    let admin = app
        .running
        .services
        .admin_named(&crate::common::operator(), "sora")
        .await
        .unwrap();
    assert!(admin.suspended.is_some());
    let req = mamori_core::admin::tokens::TokenRequest {
        name: "host".into(),
        ..Default::default()
    };
    assert!(app
        .running
        .services
        .create_token(
            &crate::common::authorized(),
            &mamori_core::access::ClientContext::default(),
            &admin,
            &req
        )
        .await
        .is_err());
    let (_, admins) = app.get("/api/v1/admins").await;
    let listed = admins["admins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "sora")
        .unwrap();
    assert!(listed["suspended"]["reason"].is_string(), "{listed}");

    // An owner's token cannot reinstate (no person who just stepped up).
    let (st, body) = app
        .send(reqwest::Method::POST, "/api/v1/admins/sora/reinstate", None)
        .await;
    assert_eq!(st, 403, "{body}");
    // Another owner, in a fresh session, can; it is on record.
    let (mut olga, _) = onboard_webauthn(&app, "olga", Role::Owner).await;
    let (st, body) = olga.post("/api/v1/admins/sora/reinstate", json!({})).await;
    assert_eq!(st, 200, "{body}");
    assert!(body["admin"]["suspended"].is_null(), "{body}");
    let (st, _) = olga.post("/api/v1/admins/sora/reinstate", json!({})).await;
    assert_eq!(st, 409, "not suspended any more");
    let audit = app.audit_records().await;
    let r = audit
        .iter()
        .find(|r| r["action"] == "admin.reinstate")
        .unwrap();
    assert_eq!(
        (r["actor"].as_str(), r["target"].as_str()),
        (Some("admin:olga"), Some("sora"))
    );
    // Now the account works again (a new login; the old token stays dead).
    let (password, factor, mut back) = login(&app, "sora", &mut key).await;
    assert_eq!((password, factor), (200, 200));
    assert_eq!(
        back.get(&format!("/api/v1/people/{}/personal-data", ids[0]))
            .await
            .0,
        200
    );
    assert_eq!(
        get_from(&app, "127.0.0.1", &token, "/api/v1/devices")
            .await
            .0,
        401
    );
}

/// Unlocking an account makes its unlocker control it, as creating,
/// resetting or re-enabling it does: the account an insider unlocked
/// cannot be the "someone else" who lifts the insider's suspension.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_the_suspended_one_unlocked_cannot_reinstate_it() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let ctx = mamori_core::access::ClientContext::default();
    crate::common::create_admin_now(s, &ctx, "mal", Role::Owner).await;
    let (mut pal, _) = onboard_webauthn(&app, "pal", Role::Owner).await;
    // What POST /api/v1/admins/pal/unlock by mal records.
    s.audit(
        s.audit_record(
            "admin:mal",
            &ctx,
            mamori_domain::AuditAction::AdminUnlock,
            mamori_domain::Outcome::Success,
        )
        .target("pal"),
    )
    .await
    .unwrap();
    let mal = s
        .admin_named(&crate::common::operator(), "mal")
        .await
        .unwrap();
    s.store
        .suspend_admin(&mal.id, time::OffsetDateTime::now_utc(), "bulk reads")
        .await
        .unwrap();
    let (st, body) = pal.post("/api/v1/admins/mal/reinstate", json!({})).await;
    assert_eq!(st, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("unlocked by mal"),
        "{body}"
    );
    assert!(s
        .admin_named(&crate::common::operator(), "mal")
        .await
        .unwrap()
        .suspended
        .is_some());
}
