//! Administrators over the real API: the complete login flow (password,
//! TOTP, WebAuthn with a software authenticator, recovery codes), sessions,
//! CSRF, step-up, brute force, offboarding, and the attacks on each.

use crate::common::{role_token, spawn_app, spawn_with, TestApp};
use mamori_core::access::ClientContext;
use mamori_domain::Role;
use serde_json::{json, Value};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

/// A strong password the policy accepts.
pub const PASSWORD: &str = "violet-anchor-tundra-93-plover";
const UA: &str = "mamori-e2e/1";

/// A browser-like client: keeps the session cookie and the CSRF token.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
    pub ua: String,
    pub send_csrf: bool,
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Self {
            http: app.http.clone(),
            base: format!("https://{}", app.running.admin_addr),
            cookie: None,
            csrf: None,
            ua: UA.into(),
            send_csrf: true,
        }
    }

    pub async fn send(
        &mut self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("user-agent", &self.ua);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if let (Some(t), true) = (&self.csrf, self.send_csrf) {
            req = req.header("x-csrf-token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        if let Some(set) = r.headers().get("set-cookie") {
            let v = set.to_str().unwrap();
            assert!(
                v.contains("Secure") && v.contains("HttpOnly") && v.contains("SameSite=Strict"),
                "{v}"
            );
            let pair = v.split(';').next().unwrap().to_owned();
            self.cookie = if pair.ends_with('=') {
                None
            } else {
                Some(pair)
            };
        }
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if let Some(t) = body["csrf_token"].as_str() {
            self.csrf = Some(t.to_owned());
        }
        (status, body)
    }

    pub async fn post(&mut self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// The raw response (for bodies that are not JSON).
    pub async fn raw(&mut self, method: reqwest::Method, path: &str) -> reqwest::Response {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("user-agent", &self.ua);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if let Some(t) = &self.csrf {
            req = req.header("x-csrf-token", t);
        }
        req.send().await.unwrap()
    }

    pub async fn get(&mut self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn delete(&mut self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }
}

fn origin(app: &TestApp) -> Url {
    Url::parse(&format!(
        "https://localhost:{}",
        app.running.admin_addr.port()
    ))
    .unwrap()
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The TOTP code of the step after the current one (accepted with one step
/// of skew, and always later than a code used for the current step).
fn next_code(secret: &[u8]) -> String {
    mamori_crypto::totp::totp_code(secret, now_unix() + 30)
}

pub async fn create(app: &TestApp, name: &str, role: Role) -> String {
    crate::common::create_admin_now(&app.running.services, &ClientContext::default(), name, role)
        .await
        .one_time_password
}

/// First login of a TOTP account: one-time password, new password, TOTP.
/// Returns the full session and the TOTP secret.
pub async fn onboard_totp(
    app: &TestApp,
    name: &str,
    role: Role,
) -> (Browser, Vec<u8>, Vec<String>) {
    let otp = create(app, name, role).await;
    setup_totp(app, name, &otp).await
}

/// First login of an existing TOTP account with its one-time password.
pub async fn setup_totp(app: &TestApp, name: &str, otp: &str) -> (Browser, Vec<u8>, Vec<String>) {
    let mut b = Browser::new(app);
    let (st, body) = b
        .post("/api/v1/auth/login", json!({"name": name, "password": otp}))
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["stage"], "setup");
    assert_eq!(
        body["required"],
        json!(["change_password", "enroll_second_factor"])
    );
    // Nothing else works yet.
    assert_eq!(b.get("/api/v1/devices").await.0, 401);
    let (st, body) = b
        .post(
            "/api/v1/auth/password",
            json!({"current": otp, "new": PASSWORD}),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let (st, en) = b.post("/api/v1/auth/totp/enroll", json!({})).await;
    assert_eq!(st, 200, "{en}");
    assert!(en["uri"].as_str().unwrap().starts_with("otpauth://totp/"));
    let secret = mamori_crypto::totp::decode_totp_secret(en["secret"].as_str().unwrap()).unwrap();
    let code = mamori_crypto::totp::totp_code(&secret, now_unix());
    let (st, body) = b
        .post("/api/v1/auth/totp/confirm", json!({"code": code}))
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["stage"], "full");
    let codes: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    (b, secret, codes)
}

/// Registers `key` as a passkey named `label` in `b`'s session: the
/// answer to `register/finish`.
async fn register_passkey(
    app: &TestApp,
    b: &mut Browser,
    key: &mut SoftPasskey,
    label: &str,
) -> (u16, Value) {
    let (st, options) = b
        .post("/api/v1/auth/webauthn/register/start", json!({}))
        .await;
    assert_eq!(st, 200, "{options}");
    let options: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let cred = key.do_registration(origin(app), options).unwrap();
    b.post(
        "/api/v1/auth/webauthn/register/finish",
        json!({"name": label, "credential": cred}),
    )
    .await
}

/// First login of a WebAuthn account, registering a software passkey.
pub async fn onboard_webauthn(app: &TestApp, name: &str, role: Role) -> (Browser, SoftPasskey) {
    let (b, key, _) = onboard_webauthn_with_codes(app, name, role).await;
    (b, key)
}

/// As [`onboard_webauthn`], with the recovery codes handed out.
async fn onboard_webauthn_with_codes(
    app: &TestApp,
    name: &str,
    role: Role,
) -> (Browser, SoftPasskey, Vec<String>) {
    let otp = create(app, name, role).await;
    let mut b = Browser::new(app);
    let (st, body) = b
        .post("/api/v1/auth/login", json!({"name": name, "password": otp}))
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body["required"],
        json!(["change_password", "enroll_webauthn"])
    );
    let (st, _) = b
        .post(
            "/api/v1/auth/password",
            json!({"current": otp, "new": PASSWORD}),
        )
        .await;
    assert_eq!(st, 204);
    let mut key = SoftPasskey::new(true);
    let (st, body) = register_passkey(app, &mut b, &mut key, "laptop passkey").await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["stage"], "full");
    let codes: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    (b, key, codes)
}

async fn login_webauthn(app: &TestApp, name: &str, key: &mut SoftPasskey) -> Browser {
    let mut b = Browser::new(app);
    let (st, body) = b
        .post(
            "/api/v1/auth/login",
            json!({"name": name, "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["stage"], "second_factor");
    assert_eq!(body["methods"], json!(["webauthn", "recovery_code"]));
    let (st, options) = b.post("/api/v1/auth/webauthn/login/start", json!({})).await;
    assert_eq!(st, 200, "{options}");
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let assertion = key.do_authentication(origin(app), options).unwrap();
    let (st, body) = b
        .post(
            "/api/v1/auth/webauthn/login/finish",
            json!({"credential": assertion}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["stage"], "full");
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_onboards_with_a_passkey_and_logs_in_with_it() {
    let app = spawn_app().await;
    let (mut b, mut key) = onboard_webauthn(&app, "olivia", Role::Owner).await;
    let (st, me) = b.get("/api/v1/auth/session").await;
    assert_eq!(st, 200);
    assert_eq!(me["role"], "owner");
    assert_eq!(me["stage"], "full");
    assert!(!me["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("personal_data_read")));
    let (st, list) = b.get("/api/v1/admins").await;
    assert_eq!(st, 200);
    let olivia = list["admins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "olivia")
        .unwrap()
        .clone();
    assert_eq!(olivia["factors"], json!(["webauthn"]));
    assert_eq!(olivia["webauthn_required"], true);
    assert_eq!(olivia["last_login_source"], "127.0.0.1");
    assert_eq!(b.post("/api/v1/auth/logout", json!({})).await.0, 204);

    // Second login with the passkey.
    let mut b = login_webauthn(&app, "olivia", &mut key).await;
    assert_eq!(b.get("/api/v1/admins").await.0, 200);

    // A role that requires WebAuthn cannot fall back to TOTP.
    let mut t = Browser::new(&app);
    t.post(
        "/api/v1/auth/login",
        json!({"name": "olivia", "password": PASSWORD}),
    )
    .await;
    let (st, _) = t.post("/api/v1/auth/totp", json!({"code": "123456"})).await;
    assert_eq!(st, 403);

    // Step-up with the passkey, then mint a token.
    let (st, options) = b
        .post("/api/v1/auth/step-up/webauthn/start", json!({}))
        .await;
    assert_eq!(st, 200);
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let assertion = key.do_authentication(origin(&app), options).unwrap();
    let (st, _) = b
        .post(
            "/api/v1/auth/step-up/webauthn/finish",
            json!({"credential": assertion}),
        )
        .await;
    assert_eq!(st, 204);
    let (st, tok) = b
        .post(
            "/api/v1/tokens",
            json!({"name": "ci", "role": "viewer", "ttl_days": 7}),
        )
        .await;
    assert_eq!(st, 201, "{tok}");
    assert_eq!(tok["token"]["role"], "viewer");

    // A passkey answer for another challenge (replayed) is refused.
    let (_, options) = b
        .post("/api/v1/auth/step-up/webauthn/start", json!({}))
        .await;
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let _fresh = key.do_authentication(origin(&app), options).unwrap();
    let (st, _) = b
        .post(
            "/api/v1/auth/step-up/webauthn/finish",
            json!({"credential": assertion}),
        )
        .await;
    assert_eq!(st, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_login_needs_the_second_factor_and_refuses_replays() {
    let app = spawn_app().await;
    let (mut b, secret, recovery) = onboard_totp(&app, "dana", Role::DeviceAdmin).await;
    assert_eq!(b.get("/api/v1/devices").await.0, 200);
    let stolen_cookie = b.cookie.clone();
    assert_eq!(b.post("/api/v1/auth/logout", json!({})).await.0, 204);
    assert!(b.cookie.is_none());

    // A cookie stolen before the logout is dead.
    let mut thief = Browser::new(&app);
    thief.cookie = stolen_cookie;
    assert_eq!(thief.get("/api/v1/devices").await.0, 401);

    // Password alone opens nothing.
    let mut b = Browser::new(&app);
    let (st, body) = b
        .post(
            "/api/v1/auth/login",
            json!({"name": "dana", "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(body["stage"], "second_factor");
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    for path in ["/api/v1/devices", "/api/v1/admins", "/api/v1/auth/sessions"] {
        assert_eq!(b.get(path).await.0, 401, "{path}");
    }
    assert_eq!(
        b.post("/api/v1/auth/totp", json!({"code": "000000"}))
            .await
            .0,
        401
    );
    let code = next_code(&secret);
    let (st, body) = b.post("/api/v1/auth/totp", json!({"code": code})).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(b.get("/api/v1/devices").await.0, 200);

    // The same code again, in a new login: replay refused.
    let mut again = Browser::new(&app);
    again
        .post(
            "/api/v1/auth/login",
            json!({"name": "dana", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        again
            .post("/api/v1/auth/totp", json!({"code": code}))
            .await
            .0,
        401
    );

    // A recovery code works once.
    let (st, body) = again
        .post("/api/v1/auth/recovery", json!({"code": recovery[0]}))
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["stage"], "full");
    let mut third = Browser::new(&app);
    third
        .post(
            "/api/v1/auth/login",
            json!({"name": "dana", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        third
            .post("/api/v1/auth/recovery", json!({"code": recovery[0]}))
            .await
            .0,
        401
    );

    // Sessions are listed and revoked one by one.
    let (st, list) = again.get("/api/v1/auth/sessions").await;
    assert_eq!(st, 200);
    let sessions = list["sessions"].as_array().unwrap();
    assert!(sessions.len() >= 2, "{list}");
    let (_, me) = b.get("/api/v1/auth/session").await;
    let other = me["session"]["id"].as_str().unwrap().to_owned();
    assert_ne!(list["current"].as_str().unwrap(), other);
    assert!(sessions.iter().any(|s| s["id"] == other.as_str()));
    assert_eq!(
        again
            .delete(&format!("/api/v1/auth/sessions/{other}"))
            .await
            .0,
        204
    );
    assert_eq!(b.get("/api/v1/devices").await.0, 401, "the revoked session");
    assert_eq!(again.get("/api/v1/devices").await.0, 200);
    // ... or all at once.
    assert_eq!(
        again
            .post("/api/v1/auth/sessions/revoke-all", json!({}))
            .await
            .0,
        200
    );
    assert_eq!(again.get("/api/v1/devices").await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_need_the_csrf_token_and_sessions_stay_with_their_client() {
    let app = spawn_app().await;
    let (mut b, _, _) = onboard_totp(&app, "hana", Role::Helpdesk).await;
    b.send_csrf = false;
    let (st, body) = b.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(st, 403, "{body}");
    let real = b.csrf.clone();
    b.csrf = Some("forged".into());
    b.send_csrf = true;
    assert_eq!(b.post("/api/v1/auth/logout", json!({})).await.0, 403);
    b.csrf = real;
    // Reads need no CSRF token; the session is still alive.
    assert_eq!(b.get("/api/v1/devices").await.0, 200);

    // The cookie replayed by another client (other User-Agent) is treated
    // as stolen: refused, and the session is revoked for everyone.
    let mut thief = Browser::new(&app);
    thief.cookie = b.cookie.clone();
    thief.ua = "curl/8".into();
    assert_eq!(thief.get("/api/v1/devices").await.0, 401);
    assert_eq!(b.get("/api/v1/devices").await.0, 401);
    let audit = app.audit_records().await;
    assert!(audit
        .iter()
        .any(|r| r["action"] == "auth.session" && r["outcome"] == "denied"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dangerous_actions_need_a_fresh_step_up() {
    let app = spawn_with(|c| c.auth.step_up_window = time::Duration::seconds(2)).await;
    let (mut b, secret, _) = onboard_totp(&app, "dora", Role::DeviceAdmin).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (st, body) = b.post("/api/v1/tokens", json!({"name": "late"})).await;
    assert_eq!(st, 403, "{body}");
    assert_eq!(body["code"], "step_up_required");
    let erase = json!({"devices": ["X"], "command": {"RequestType": "EraseDevice"}});
    assert_eq!(
        b.post("/api/v1/commands", erase.clone()).await.1["code"],
        "step_up_required"
    );
    // A wrong password or code is refused.
    let (st, _) = b
        .post(
            "/api/v1/auth/step-up",
            json!({"password": "wrong", "code": next_code(&secret)}),
        )
        .await;
    assert_eq!(st, 401);
    let (st, body) = b
        .post(
            "/api/v1/auth/step-up",
            json!({"password": PASSWORD, "code": next_code(&secret)}),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let (st, body) = b.post("/api/v1/tokens", json!({"name": "fresh"})).await;
    assert_eq!(st, 201, "{body}");
    // A device admin cannot mint an owner token.
    let (st, _) = b
        .post("/api/v1/tokens", json!({"name": "up", "role": "owner"}))
        .await;
    assert_eq!(st, 403);
    // With a fresh step-up, erase gets past authorization (no such device).
    assert_eq!(b.post("/api/v1/commands", erase).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offboarding_an_administrator_kills_session_and_token_at_once() {
    let app = spawn_app().await;
    let (mut b, _, _) = onboard_totp(&app, "ken", Role::Helpdesk).await;
    let token = role_token(&app.running.services, "ken", "helpdesk").await;
    let devices = app.admin_url("/api/v1/devices");
    let status = |t: String| {
        let http = app.http.clone();
        let url = devices.clone();
        async move {
            http.get(url)
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(b.get("/api/v1/devices").await.0, 200);
    assert_eq!(status(token.clone()).await, 200);

    let r = app
        .post(
            "/api/v1/admins/ken/disable",
            json!({"reason": "left the company"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report, json!({"sessions_revoked": 1, "tokens_revoked": 1}));
    assert_eq!(b.get("/api/v1/devices").await.0, 401);
    assert_eq!(status(token).await, 401);
    // The password no longer logs in, and looks like any wrong password.
    let mut again = Browser::new(&app);
    let (st, body) = again
        .post(
            "/api/v1/auth/login",
            json!({"name": "ken", "password": PASSWORD}),
        )
        .await;
    assert_eq!((st, body), (401, json!({"error": "invalid credentials"})));
    let (_, list) = app.get("/api/v1/admins").await;
    let ken = list["admins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "ken")
        .unwrap()
        .clone();
    assert_eq!(ken["disabled_reason"], "left the company");
    assert_eq!(ken["token_count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_backs_off_and_unknown_names_look_the_same() {
    let app = spawn_app().await;
    create(&app, "bob", Role::Viewer).await;
    let mut b = Browser::new(&app);
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(
            b.post(
                "/api/v1/auth/login",
                json!({"name": "bob", "password": "nope-nope-nope"}),
            )
            .await,
        );
    }
    assert!(
        answers
            .iter()
            .all(|a| *a == (401, json!({"error": "invalid credentials"}))),
        "{answers:?}"
    );
    // After three failures the account waits before the next attempt.
    let (st, _) = b
        .post(
            "/api/v1/auth/login",
            json!({"name": "bob", "password": "nope-nope-nope"}),
        )
        .await;
    assert_eq!(st, 429);
    // An unknown name gets exactly the same answers.
    let mut unknown = Vec::new();
    for _ in 0..4 {
        unknown.push(
            b.post(
                "/api/v1/auth/login",
                json!({"name": "nobody", "password": "nope-nope-nope"}),
            )
            .await
            .0,
        );
    }
    assert_eq!(unknown, vec![401, 401, 401, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_lock_the_account_until_an_audited_unlock() {
    let app = spawn_with(|c| {
        c.auth.backoff_after = 1000;
        c.auth.source_free_failures = 1000;
    })
    .await;
    let otp = create(&app, "lee", Role::Viewer).await;
    let mut b = Browser::new(&app);
    for _ in 0..10 {
        let (st, _) = b
            .post(
                "/api/v1/auth/login",
                json!({"name": "lee", "password": "wrong-wrong-wrong"}),
            )
            .await;
        assert_eq!(st, 401);
    }
    // Locked: even the right password is refused, with the same answer.
    let (st, body) = b
        .post(
            "/api/v1/auth/login",
            json!({"name": "lee", "password": otp}),
        )
        .await;
    assert_eq!((st, body), (401, json!({"error": "invalid credentials"})));
    let (_, list) = app.get("/api/v1/admins").await;
    let lee = list["admins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "lee")
        .unwrap()
        .clone();
    assert!(lee["locked_at"].is_string(), "{lee}");

    // A token cannot unlock (it needs a person who just re-authenticated);
    // the host's command line can.
    let r = app.post("/api/v1/admins/lee/unlock", json!({})).await;
    assert_eq!(r.status(), 403);
    let s = &app.running.services;
    let ctx = ClientContext {
        source: "127.0.0.1".to_owned(),
        ..Default::default()
    };
    s.unlock_admin(&crate::common::authorized(), &ctx, "lee")
        .await
        .unwrap();
    let (st, body) = b
        .post(
            "/api/v1/auth/login",
            json!({"name": "lee", "password": otp}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let audit = app.audit_records().await;
    let records = audit;
    let lock = records
        .iter()
        .find(|r| r["action"] == "admin.lock")
        .expect("lock audited");
    assert_eq!(lock["target"], "lee");
    let unlock = records
        .iter()
        .find(|r| r["action"] == "admin.unlock")
        .expect("unlock audited");
    assert_eq!(unlock["target"], "lee");
    assert_eq!(unlock["actor"], "cli:test");
    assert_eq!(unlock["source"], "127.0.0.1");
    assert_eq!(unlock["outcome"], "success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_trying_many_names_is_slowed_down() {
    let app = spawn_with(|c| c.auth.source_free_failures = 5).await;
    let mut b = Browser::new(&app);
    let mut statuses = Vec::new();
    for i in 0..6 {
        let (st, _) = b
            .post(
                "/api/v1/auth/login",
                json!({"name": format!("user{i}"), "password": "guess-guess-guess"}),
            )
            .await;
        statuses.push(st);
    }
    assert_eq!(statuses, vec![401, 401, 401, 401, 401, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_accounts_are_reported_and_disabled() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let otp = create(&app, "old", Role::Helpdesk).await;
    // Set up at its first login (a token is issued only after that).
    crate::common::first_login(s, "old", &otp).await;
    let old = s
        .admin_named(&crate::common::operator(), "old")
        .await
        .unwrap();
    // Backdate the account: created and last used 40 days ago.
    let mut aged = old.clone();
    aged.id = mamori_domain::AdminId::parse(&uuid::Uuid::new_v4().to_string()).unwrap();
    aged.name = "aged".into();
    aged.created_at = time::OffsetDateTime::now_utc() - time::Duration::days(40);
    aged.last_login_at = Some(aged.created_at);
    let creds = s.store.admin_credentials(&old.id).await.unwrap().unwrap();
    assert!(s.store.insert_admin(&aged, &creds).await.unwrap());
    let token = role_token(s, "aged", "helpdesk").await;
    let (_, list) = app.get("/api/v1/admins").await;
    let row = list["admins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "aged")
        .unwrap()
        .clone();
    assert_eq!(row["stale"], true);

    let swept = s
        .sweep_stale_admins(&crate::common::operator())
        .await
        .unwrap();
    assert_eq!(swept, vec!["aged".to_owned()]);
    let r = app
        .http
        .get(app.admin_url("/api/v1/devices"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (_, list) = app.get("/api/v1/admins").await;
    let row = list["admins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "aged")
        .unwrap()
        .clone();
    assert_eq!(row["disabled_reason"], "unused for 30 days");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_serves_only_its_allow_list() {
    let app = spawn_with(|c| c.admin_allow = Some(vec!["10.0.0.0/8".parse().unwrap()])).await;
    let r = app.http.get(app.admin_url("/healthz")).send().await;
    assert!(r.is_err(), "a loopback client is outside 10.0.0.0/8");
    let app = spawn_with(|c| c.admin_allow = Some(vec!["127.0.0.0/8".parse().unwrap()])).await;
    let r = app
        .http
        .get(app.admin_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_admin_route_is_served_on_the_device_listener() {
    let app = spawn_app().await;
    for (method, path, _) in mamori_http::admin::routes() {
        let concrete = path.replace('{', "x").replace('}', "");
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = app
            .http
            .request(method.clone(), app.device_url(&concrete))
            .bearer_auth(&app.token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{method} {path} on the device listener");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_factor_is_reset_by_another_owner_and_enrolled_again() {
    let app = spawn_app().await;
    let (mut ken, _, _) = onboard_totp(&app, "ken", Role::Helpdesk).await;
    let r = app.post("/api/v1/admins/ken/reset", json!({})).await;
    // A token cannot reset (it needs a person who just re-authenticated).
    assert_eq!(r.status(), 403);
    let (mut owner, _) = onboard_webauthn(&app, "olga", Role::Owner).await;
    let (st, body) = owner.post("/api/v1/admins/ken/reset", json!({})).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["sessions_revoked"], 1);
    let otp = body["one_time_password"].as_str().unwrap().to_owned();
    // The old session is gone, the old password and factor too.
    assert_eq!(ken.get("/api/v1/devices").await.0, 401);
    let mut b = Browser::new(&app);
    let (st, _) = b
        .post(
            "/api/v1/auth/login",
            json!({"name": "ken", "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, 401);
    let (st, body) = b
        .post(
            "/api/v1/auth/login",
            json!({"name": "ken", "password": otp}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(body["stage"], "setup");
    assert_eq!(
        body["required"],
        json!(["change_password", "enroll_second_factor"])
    );
    // An owner cannot reset themselves.
    let (st, _) = owner.post("/api/v1/admins/olga/reset", json!({})).await;
    assert_eq!(st, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_time_password_expires() {
    let app = spawn_app().await;
    let otp = create(&app, "late", Role::Viewer).await;
    let s = &app.running.services;
    let a = s
        .admin_named(&crate::common::operator(), "late")
        .await
        .unwrap();
    let hash = s
        .store
        .admin_credentials(&a.id)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    let issued = time::OffsetDateTime::now_utc() - time::Duration::hours(73);
    s.store
        .set_password(&a.id, &hash, true, issued)
        .await
        .unwrap();
    let mut b = Browser::new(&app);
    let (st, body) = b
        .post(
            "/api/v1/auth/login",
            json!({"name": "late", "password": otp}),
        )
        .await;
    assert_eq!((st, body), (401, json!({"error": "invalid credentials"})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn factors_are_listed_and_the_last_one_cannot_be_removed() {
    let app = spawn_app().await;
    let (mut b, _, _) = onboard_totp(&app, "fumi", Role::DeviceAdmin).await;
    // The only factor stays.
    assert_eq!(b.delete("/api/v1/auth/totp").await.0, 409);
    // Add a passkey (the login counts as a fresh step-up), then drop TOTP.
    let mut key = SoftPasskey::new(true);
    let (st, body) = register_passkey(&app, &mut b, &mut key, "yubikey").await;
    assert_eq!(st, 201, "{body}");
    assert!(
        body["recovery_codes"].as_array().unwrap().is_empty(),
        "codes exist already"
    );
    let (st, f) = b.get("/api/v1/auth/factors").await;
    assert_eq!(st, 200);
    assert_eq!(f["totp"], true);
    assert_eq!(f["webauthn"][0]["name"], "yubikey");
    assert!(
        f["webauthn"][0].get("data").is_none(),
        "key material is not shown"
    );
    assert_eq!(b.delete("/api/v1/auth/totp").await.0, 204);
    let id = f["webauthn"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        b.delete(&format!("/api/v1/auth/webauthn/{id}")).await.0,
        409
    );
    // Now the passkey is how this account logs in.
    let mut again = login_webauthn(&app, "fumi", &mut key).await;
    assert_eq!(again.get("/api/v1/devices").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_changes_take_effect_on_the_next_request() {
    let app = spawn_app().await;
    let (mut owner, _) = onboard_webauthn(&app, "omar", Role::Owner).await;
    let (mut h, _, _) = onboard_totp(&app, "hiro", Role::Helpdesk).await;
    let token = role_token(&app.running.services, "hiro", "helpdesk").await;
    let lock = json!({"devices": ["UNKNOWN"], "command": {"RequestType": "DeviceLock"}});
    let queue = |t: String| {
        let http = app.http.clone();
        let url = app.admin_url("/api/v1/commands");
        let lock = lock.clone();
        async move {
            http.post(url)
                .bearer_auth(t)
                .json(&lock)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(queue(token.clone()).await, 404, "allowed, no such device");
    let (st, body) = owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/admins/hiro/role",
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        queue(token).await,
        403,
        "the token's role is capped by the account's"
    );
    assert_eq!(h.post("/api/v1/commands", lock.clone()).await.0, 403);
    assert_eq!(h.get("/api/v1/devices").await.0, 200);
    // Nobody changes their own role; the last owner stays an owner.
    let (st, _) = owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/admins/omar/role",
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(st, 409);
    let (st, _) = owner
        .send(
            reqwest::Method::PUT,
            "/api/v1/admins/hiro/role",
            Some(json!({"role": "root"})),
        )
        .await;
    assert_eq!(st, 400);
    let audit = app.audit_records().await;
    let change = audit
        .iter()
        .find(|r| r["action"] == "admin.role")
        .unwrap()
        .clone();
    assert_eq!(change["actor"], "admin:omar");
    assert_eq!(change["detail"], "helpdesk -> viewer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_when_idle_when_old_and_when_the_password_changes() {
    let app = spawn_app().await;
    let (mut a, _, _) = onboard_totp(&app, "ida", Role::Viewer).await;
    let s = &app.running.services;
    let id = |b: &Browser| {
        let secret = b
            .cookie
            .as_ref()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_owned();
        mamori_crypto::sha256_hex(secret.as_bytes())
    };
    // Idle for 16 minutes (policy: 15).
    let sess = s.store.session_by_secret(&id(&a)).await.unwrap().unwrap();
    let idle = time::OffsetDateTime::now_utc() - time::Duration::minutes(16);
    s.store.touch_session(&sess.id, idle).await.unwrap();
    assert_eq!(a.get("/api/v1/devices").await.0, 401);

    // Past its absolute end, however active.
    let (mut c, secret, _) = onboard_totp(&app, "ivo", Role::Viewer).await;
    let sess = s.store.session_by_secret(&id(&c)).await.unwrap().unwrap();
    let mut old = sess.clone();
    old.id = mamori_domain::SessionId::parse("expired-session-1").unwrap();
    old.expires_at = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let old_secret = "old-secret-for-the-test";
    s.store
        .insert_session(&old, &mamori_crypto::sha256_hex(old_secret.as_bytes()))
        .await
        .unwrap();
    let mut stale = Browser::new(&app);
    stale.cookie = Some(format!("__Host-mamori_session={old_secret}"));
    assert_eq!(stale.get("/api/v1/devices").await.0, 401);

    // A password change ends the account's other sessions.
    let mut second = Browser::new(&app);
    second
        .post(
            "/api/v1/auth/login",
            json!({"name": "ivo", "password": PASSWORD}),
        )
        .await;
    let (st, _) = second
        .post("/api/v1/auth/totp", json!({"code": next_code(&secret)}))
        .await;
    assert_eq!(st, 200);
    let (st, body) = c
        .post(
            "/api/v1/auth/password",
            json!({"current": PASSWORD, "new": "quartz-meadow-lantern-58-heron"}),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    assert_eq!(second.get("/api/v1/devices").await.0, 401);
    assert_eq!(c.get("/api/v1/devices").await.0, 200);
    // A weak new password is refused.
    let (st, body) = c
        .post(
            "/api/v1/auth/password",
            json!({"current": "quartz-meadow-lantern-58-heron", "new": "password1234"}),
        )
        .await;
    assert_eq!(st, 400, "{body}");
}

/// An owner `name` who lost her passkey, and in a recovery session (a
/// recovery code) registered a new one: the recovery session and the
/// waiting key's registration answer.
async fn recovering_owner(app: &TestApp, name: &str) -> (Browser, SoftPasskey, Value) {
    let (_, _lost, codes) = onboard_webauthn_with_codes(app, name, Role::Owner).await;
    let mut r = Browser::new(app);
    r.post(
        "/api/v1/auth/login",
        json!({"name": name, "password": PASSWORD}),
    )
    .await;
    r.post("/api/v1/auth/recovery", json!({"code": codes[0]}))
        .await;
    let mut new_key = SoftPasskey::new(true);
    let (st, body) = register_passkey(app, &mut r, &mut new_key, "new phone").await;
    assert_eq!(st, 202, "{body}");
    (r, new_key, body)
}

async fn is_pending(app: &TestApp, approval: &str) -> bool {
    let (_, list) = app.get("/api/v1/approvals").await;
    list["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["id"] == approval)
}

/// The outside attack's finding: a reset left the request to activate a
/// key it removed pending, and approving it answered "approved" for an
/// activation that could not happen. A reset (and a disable) withdraws it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_withdraws_the_requests_to_activate_its_removed_keys() {
    let app = spawn_app().await;
    let (_, _, body) = recovering_owner(&app, "rin").await;
    let approval = body["activation"]["approval"].as_str().unwrap().to_owned();
    assert!(is_pending(&app, &approval).await);
    // The host resets rin: her keys are removed, the request withdrawn.
    let s = &app.running.services;
    let host = crate::common::authorized::<mamori_core::access::permit::AccountsManage>();
    s.reset_admin(&host, &ClientContext::default(), "rin")
        .await
        .unwrap();
    assert!(
        !is_pending(&app, &approval).await,
        "the request is withdrawn"
    );
    let (mut kai, _) = onboard_webauthn(&app, "kai", Role::Owner).await;
    let (st, body) = kai
        .post(&format!("/api/v1/approvals/{approval}/approve"), json!({}))
        .await;
    assert_ne!(st, 200, "approved after the reset: {body}");
    let audit = app.audit_records().await;
    assert!(audit.iter().any(|r| r["action"] == "approval.reject"
        && r["target"] == approval.as_str()
        && r["detail"]
            .as_str()
            .unwrap_or("")
            .contains("withdrawn: the account was reset")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_code_only_lets_an_owner_register_a_new_passkey() {
    let app = spawn_app().await;
    let (_, _lost, codes) = onboard_webauthn_with_codes(&app, "rin", Role::Owner).await;
    let code = codes[0].clone();

    // The passkey is lost; the recovery code opens a recovery session only.
    let mut r = Browser::new(&app);
    r.post(
        "/api/v1/auth/login",
        json!({"name": "rin", "password": PASSWORD}),
    )
    .await;
    let (st, body) = r.post("/api/v1/auth/recovery", json!({"code": code})).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["stage"], "recovery");
    assert_eq!(body["required"], json!(["enroll_webauthn"]));
    assert_eq!(r.get("/api/v1/admins").await.0, 401);
    // A recovery session cannot change the password.
    let (st, _) = r
        .post(
            "/api/v1/auth/password",
            json!({"current": PASSWORD, "new": "quartz-meadow-lantern-58-heron"}),
        )
        .await;
    assert_eq!(st, 403);
    assert_eq!(r.get("/api/v1/admins").await.0, 401);
    // The key it registers waits for another owner, and the session ends.
    let mut new_key = SoftPasskey::new(true);
    let (st, body) = register_passkey(&app, &mut r, &mut new_key, "new phone").await;
    assert_eq!(st, 202, "{body}");
    assert!(body["credential"]["pending_until"].is_string(), "{body}");
    let approval = body["activation"]["approval"].as_str().unwrap().to_owned();
    // The key waits no longer than its request lives, so someone can always
    // still reject it (before: 72 hours against a request of 24).
    let at = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let (_, pending) = app.get("/api/v1/approvals").await;
    let request = pending["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == approval.as_str())
        .unwrap()
        .clone();
    // (Stored times are whole seconds.)
    assert!(
        at(&body["activation"]["usable_from"])
            <= at(&request["expires_at"]) + time::Duration::seconds(1),
        "{body} {request}"
    );
    assert_eq!(r.get("/api/v1/admins").await.0, 401);
    // Every use of a recovery code raises a high alert.
    let audit = app.audit_records().await;
    let alert = audit
        .iter()
        .find(|x| x["action"] == "alert.recovery_code_used")
        .expect("alert");
    assert!(alert["detail"].as_str().unwrap().contains("severity=high"));
    // The waiting key does not log in: the server does not offer it.
    let mut t = Browser::new(&app);
    t.post(
        "/api/v1/auth/login",
        json!({"name": "rin", "password": PASSWORD}),
    )
    .await;
    let (_, options) = t.post("/api/v1/auth/webauthn/login/start", json!({})).await;
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    assert!(new_key.do_authentication(origin(&app), options).is_err());
    // Rin cannot approve her own key; another owner does, and it works.
    let (mut kai, _) = onboard_webauthn(&app, "kai", Role::Owner).await;
    let (st, done) = kai
        .post(&format!("/api/v1/approvals/{approval}/approve"), json!({}))
        .await;
    assert_eq!(st, 200, "{done}");
    let mut rin = login_webauthn(&app, "rin", &mut new_key).await;
    assert_eq!(rin.get("/api/v1/admins").await.0, 200);
}

/// An owner must use WebAuthn: TOTP cannot be enrolled at setup (it would
/// also spend the one-time hand-out of recovery codes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webauthn_role_cannot_enroll_totp() {
    let app = spawn_app().await;
    let otp = create(&app, "ren", Role::Owner).await;
    let mut b = Browser::new(&app);
    b.post(
        "/api/v1/auth/login",
        json!({"name": "ren", "password": otp}),
    )
    .await;
    b.post(
        "/api/v1/auth/password",
        json!({"current": otp, "new": PASSWORD}),
    )
    .await;
    let (st, body) = b.post("/api/v1/auth/totp/enroll", json!({})).await;
    assert_eq!(st, 403, "{body}");
    let (st, _) = b
        .post("/api/v1/auth/totp/confirm", json!({"code": "123456"}))
        .await;
    assert_eq!(st, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_token_holds_only_its_scope() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let owner = s
        .admin_named(&crate::common::operator(), "e2e-owner")
        .await
        .unwrap();
    let ctx = ClientContext::default();
    let req = mamori_core::admin::tokens::TokenRequest {
        name: "inventory sync".into(),
        scope: Some(vec!["devices_read".into()]),
        ..Default::default()
    };
    let (tok, secret) = s
        .create_token(&crate::common::authorized(), &ctx, &owner, &req)
        .await
        .unwrap();
    assert_eq!(tok.role, Role::Owner);
    let get = |path: &str| {
        let r = app
            .http
            .get(app.admin_url(path))
            .bearer_auth(&secret)
            .send();
        async move { r.await.unwrap().status().as_u16() }
    };
    assert_eq!(get("/api/v1/devices").await, 200);
    assert_eq!(get("/api/v1/admins").await, 403);
    assert_eq!(get("/api/v1/audit").await, 403);
    // A scope naming a permission outside the role is refused.
    // (A viewer that finished its first login: the refusal is the scope's.)
    role_token(s, "vic", "viewer").await;
    let viewer = s
        .admin_named(&crate::common::operator(), "vic")
        .await
        .unwrap();
    let bad = mamori_core::admin::tokens::TokenRequest {
        name: "escalate".into(),
        scope: Some(vec!["accounts_manage".into()]),
        ..Default::default()
    };
    assert!(matches!(
        s.create_token(&crate::common::authorized(), &ctx, &viewer, &bad)
            .await,
        Err(mamori_core::CoreError::BadRequest(_))
    ));
    // last_used_at is recorded.
    let (_, list) = app.get("/api/v1/tokens?all=true").await;
    let row = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == tok.id.as_str())
        .unwrap()
        .clone();
    assert!(row["last_used_at"].is_string(), "{row}");
    assert_eq!(row["scope"], json!(["devices_read"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_second_factor_failures_raise_an_alert() {
    let app = spawn_app().await;
    let (_, secret, _) = onboard_totp(&app, "mika", Role::Helpdesk).await;
    let mut b = Browser::new(&app);
    let (st, _) = b
        .post(
            "/api/v1/auth/login",
            json!({"name": "mika", "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, 200);
    for _ in 0..3 {
        assert_eq!(
            b.post("/api/v1/auth/totp", json!({"code": "000000"}))
                .await
                .0,
            401
        );
    }
    let audit = app.audit_records().await;
    let alerts: Vec<&Value> = audit
        .iter()
        .filter(|r| r["action"] == "alert.mfa_failures")
        .collect();
    assert_eq!(alerts.len(), 1, "one alert per burst");
    assert_eq!(alerts[0]["target"], "mika");
    // Within the same login the next try waits, as after wrong passwords:
    // even the right code is answered 429 until the backoff has passed.
    let (st, _) = b
        .post("/api/v1/auth/totp", json!({"code": next_code(&secret)}))
        .await;
    assert_eq!(st, 429);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (st, body) = b
        .post("/api/v1/auth/totp", json!({"code": next_code(&secret)}))
        .await;
    assert_eq!(st, 200, "{body}");
}

/// An owner who works only through tokens never logs in, so she looks
/// unused: the hygiene job reports her but must not disable the last
/// enabled owner (before, it did, and nobody could manage accounts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stale_sweep_keeps_the_last_enabled_owner() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let template = s
        .admin_named(&crate::common::operator(), "e2e-owner")
        .await
        .unwrap();
    let creds = s
        .store
        .admin_credentials(&template.id)
        .await
        .unwrap()
        .unwrap();
    let long_ago = time::OffsetDateTime::now_utc() - time::Duration::days(40);
    for (name, role) in [("boss", Role::Owner), ("idle", Role::Helpdesk)] {
        let mut aged = template.clone();
        aged.id = mamori_domain::AdminId::parse(&uuid::Uuid::new_v4().to_string()).unwrap();
        aged.name = name.into();
        aged.role = role;
        aged.created_at = long_ago;
        aged.last_login_at = None;
        assert!(s.store.insert_admin(&aged, &creds).await.unwrap());
    }
    // The other owner left (closed on the host): boss is the last one.
    s.disable_admin(
        &crate::common::authorized(),
        &ClientContext::default(),
        "e2e-owner",
        "left",
    )
    .await
    .unwrap();
    let swept = s
        .sweep_stale_admins(&crate::common::operator())
        .await
        .unwrap();
    assert!(swept.contains(&"boss".to_owned()), "reported: {swept:?}");
    assert!(s
        .admin_named(&crate::common::operator(), "idle")
        .await
        .unwrap()
        .disabled_at
        .is_some());
    let boss = s
        .admin_named(&crate::common::operator(), "boss")
        .await
        .unwrap();
    assert!(boss.disabled_at.is_none(), "the last owner was disabled");
}

/// A recovery code completes the login of a TOTP role, but it is no
/// re-authentication: whoever holds the password and one code cannot
/// change the password, enrol a factor, mint a token or act as the second
/// administrator, and the code does not step up either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_login_has_no_step_up() {
    let app = spawn_app().await;
    let (_, _secret, codes) = onboard_totp(&app, "rika", Role::DeviceAdmin).await;
    // Someone else asks to erase two devices.
    let (mut other, _, _) = onboard_totp(&app, "other", Role::DeviceAdmin).await;
    let mut udids = Vec::new();
    for _ in 0..2 {
        let d = app
            .enrolled(
                mamori_sim::DeviceKind::IPhone,
                mamori_sim::SimOptions::default(),
            )
            .await;
        udids.push(d.udid().to_owned());
    }
    let (st, asked) = other
        .post(
            "/api/v1/commands?push=false",
            json!({"devices": udids, "command": {"RequestType": "EraseDevice"}}),
        )
        .await;
    assert_eq!(st, 202, "{asked}");
    let id = asked["approval"]["id"].as_str().unwrap().to_owned();

    let mut r = Browser::new(&app);
    r.post(
        "/api/v1/auth/login",
        json!({"name": "rika", "password": PASSWORD}),
    )
    .await;
    let (st, body) = r
        .post("/api/v1/auth/recovery", json!({"code": codes[0]}))
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["stage"], "full");
    assert_eq!(r.get("/api/v1/devices").await.0, 200);
    let refused = [
        r.post("/api/v1/tokens", json!({"name": "forever"})).await,
        r.post("/api/v1/auth/totp/enroll", json!({})).await,
        r.post(
            "/api/v1/auth/password",
            json!({"current": PASSWORD, "new": "quartz-meadow-lantern-58-heron"}),
        )
        .await,
        r.post("/api/v1/auth/recovery-codes", json!({})).await,
        r.post(&format!("/api/v1/approvals/{id}/approve"), json!({}))
            .await,
    ];
    for (st, body) in &refused {
        assert_eq!(*st, 403, "{body}");
        assert_eq!(body["code"], "step_up_required", "{body}");
    }
    // A recovery code is no step-up factor.
    let (st, _) = r
        .post(
            "/api/v1/auth/step-up",
            json!({"password": PASSWORD, "code": codes[1]}),
        )
        .await;
    assert_eq!(st, 401);
    let (st, body) = r.post("/api/v1/tokens", json!({"name": "forever"})).await;
    assert_eq!((st, &body["code"]), (403, &json!("step_up_required")));
}

/// The step-up waits out the backoff of wrong factors as the login does:
/// after three wrong codes even the right one is answered 429. (Backoff
/// from the first failure, each one waited out: the third sets 4 s, long
/// enough for a loaded test machine.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_step_ups_back_off_like_wrong_logins() {
    let app = spawn_with(|c| c.auth.backoff_after = 1).await;
    let (mut b, secret, _) = onboard_totp(&app, "sora", Role::DeviceAdmin).await;
    for wait in [1100, 2100, 0] {
        let (st, _) = b
            .post(
                "/api/v1/auth/step-up",
                json!({"password": PASSWORD, "code": "000000"}),
            )
            .await;
        assert_eq!(st, 401);
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    }
    let (st, _) = b
        .post(
            "/api/v1/auth/step-up",
            json!({"password": PASSWORD, "code": next_code(&secret)}),
        )
        .await;
    assert_eq!(st, 429);
    // A password change (which checks the password) waits too.
    let (st, _) = b
        .post(
            "/api/v1/auth/password",
            json!({"current": PASSWORD, "new": "quartz-meadow-lantern-58-heron"}),
        )
        .await;
    assert_eq!(st, 429);
    tokio::time::sleep(std::time::Duration::from_millis(4100)).await;
    let (st, body) = b
        .post(
            "/api/v1/auth/step-up",
            json!({"password": PASSWORD, "code": next_code(&secret)}),
        )
        .await;
    assert_eq!(st, 204, "{body}");
}

/// The outside attack's finding: with the password alone (the second
/// factor still to come), the session told the account's role, and TOTP
/// enrollment answered that the role must use a passkey. Neither says it
/// now; a full session still tells its role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_alone_does_not_tell_the_accounts_role() {
    let app = spawn_app().await;
    let (mut full, _) = onboard_webauthn(&app, "aoi", Role::Owner).await;
    let (_, me) = full.get("/api/v1/auth/session").await;
    assert_eq!(me["role"], "owner", "{me}");
    let mut half = Browser::new(&app);
    let (st, body) = half
        .post(
            "/api/v1/auth/login",
            json!({"name": "aoi", "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, me) = half.get("/api/v1/auth/session").await;
    assert_eq!(st, 200);
    assert_eq!(me["stage"], "second_factor", "{me}");
    assert!(me.get("role").is_none(), "{me}");
    assert!(!me.to_string().contains("owner"), "{me}");
    let (st, body) = half.post("/api/v1/auth/totp/enroll", json!({})).await;
    assert_eq!(st, 403);
    assert!(!body.to_string().contains("passkey"), "{body}");
}
