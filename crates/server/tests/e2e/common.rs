//! spawn_app and helpers shared by the end-to-end tests.

use mamori::app::{self, Running};
use mamori::config::{Config, ServeArgs};
use mamori_sim::{DeviceKind, SimDevice, SimOptions};
use serde_json::{json, Value};
use std::sync::Arc;
use tempfile::TempDir;

/// A running server with an owner token and an HTTP client trusting its CA.
pub struct TestApp {
    pub running: Running,
    pub dir: TempDir,
    pub token: String,
    pub tls_ca_pem: Vec<u8>,
    pub http: reqwest::Client,
}

/// A test server's configuration: listeners on loopback, data under
/// `dir`, the database SQLite, or a fresh PostgreSQL database in the test
/// binary's throwaway cluster when `MAMORI_E2E_DATABASE=postgres` (a way
/// to run the whole suite on PostgreSQL by hand).
pub fn test_config(dir: &std::path::Path) -> Config {
    let postgres = std::env::var("MAMORI_E2E_DATABASE").is_ok_and(|v| v == "postgres");
    test_config_on(dir, postgres)
}

/// [`test_config`] on PostgreSQL (`true`) or SQLite.
pub fn test_config_on(dir: &std::path::Path, postgres: bool) -> Config {
    Config::resolve(&ServeArgs {
        data_dir: Some(dir.join("data")),
        database_url: postgres.then(|| mamori_testkit::pg::shared().fresh_database()),
        device_addr: Some("127.0.0.1:0".parse().unwrap()),
        admin_addr: Some("127.0.0.1:0".parse().unwrap()),
        ..ServeArgs::default()
    })
    .unwrap()
}

/// A rustls client configuration trusting only the PEM certificates in
/// `ca_pem` (the server's `tls-ca.pem`), without a client certificate.
pub fn tls_config_trusting(ca_pem: &[u8]) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for der in mamori::keys::pem_certs(std::str::from_utf8(ca_pem).unwrap()).unwrap() {
        roots
            .add(rustls_pki_types::CertificateDer::from(der))
            .unwrap();
    }
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

pub fn client_trusting(ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls_config_trusting(ca_pem))
        .build()
        .unwrap()
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Collects what the log formatter writes.
#[derive(Clone, Default)]
pub struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(
            &self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }
}

/// Keeps a log capture installed; see [`capture_log`].
pub struct LogCapture {
    _default: tracing::subscriber::DefaultGuard,
    _second: tracing::Dispatch,
}

/// Captures, until the guard drops, the server's text log (the formatter
/// `mamori serve` uses, without colours) at `level` and above, on this
/// thread only: use it in a current-thread runtime, where the server's
/// tasks run on the test's thread and no other test's events arrive.
///
/// While only one subscriber exists, tracing-core caches a callsite's
/// interest from whatever the registering thread has (nothing, in the
/// tests running alongside): events of callsites another test reached
/// first would never get here. A second, idle subscriber makes it ask
/// every live one.
pub fn capture_log(level: tracing::Level) -> (Capture, LogCapture) {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(level)
        .with_writer(move || writer.clone())
        .finish();
    let guard = LogCapture {
        _default: tracing::subscriber::set_default(subscriber),
        _second: tracing::Dispatch::new(tracing_subscriber::registry()),
    };
    (capture, guard)
}

/// The host's command line as the operator of what no route offers.
pub fn operator() -> mamori_core::access::Operator {
    mamori_core::access::Operator::Host(mamori_core::access::HostUser::new("cli:test"))
}

/// The host's command line as the actor of what a test sets up in-process.
pub fn host() -> mamori_core::access::Actor {
    mamori_core::access::Actor::Host(mamori_core::access::HostUser::new("cli:test"))
}

/// The host's command line's proof of the permission `P` (it holds
/// every permission).
pub fn authorized<P: mamori_core::access::Permit>() -> mamori_core::access::Authorized<P> {
    host().authorize().unwrap()
}

/// Creates an account directly, as the host's command line does.
pub async fn create_admin_now(
    s: &mamori_core::Services,
    ctx: &mamori_core::access::ClientContext,
    name: &str,
    role: mamori_domain::Role,
) -> mamori_core::admin::NewAdmin {
    match s
        .create_admin(&authorized(), ctx, name, role.as_str())
        .await
    {
        Ok(mamori_core::admin::Created::Now(created)) => *created,
        other => panic!("the command line creates {name} directly: {other:?}"),
    }
}

/// An API token of a new account (named after `name`) with `role`.
///
/// A token is issued only to an account that finished its first login, so
/// a new account is set up first, through the same core calls the API makes
/// for a person at the first login ([`first_login`]). An existing account
/// must already be set up.
pub async fn role_token(s: &mamori_core::Services, name: &str, role: &str) -> String {
    let ctx = mamori_core::access::ClientContext::default();
    let role = mamori_domain::Role::parse(role).unwrap();
    let admin = match s.admin_named(&operator(), name).await {
        Ok(a) => a,
        Err(_) => {
            let created = create_admin_now(s, &ctx, name, role).await;
            first_login(s, name, &created.one_time_password).await;
            s.admin_named(&operator(), name).await.unwrap()
        }
    };
    let req = mamori_core::admin::tokens::TokenRequest {
        name: format!("{name} token"),
        role: Some(role.as_str().to_owned()),
        ..Default::default()
    };
    s.create_token(&authorized(), &ctx, &admin, &req)
        .await
        .unwrap()
        .1
}

/// The password [`first_login`] sets.
pub const SETUP_PASSWORD: &str = "e2e-setup-walnut-harbor-58-lark";

/// The first login of `name` through the core calls behind the API's
/// routes, as a person makes it: the one-time password, a new password,
/// then a second factor the role accepts (a software passkey where the role
/// must use WebAuthn, else TOTP with a code computed from the secret the
/// server offers); then logout. The passkey and the TOTP secret are thrown
/// away: the account is only meant to own tokens.
pub async fn first_login(s: &mamori_core::Services, name: &str, otp: &str) {
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    let ctx = mamori_core::access::ClientContext::default();
    let (_, cookie) = s.login(name, otp, &ctx).await.unwrap();
    let actor = s.authenticate_session(&cookie.secret, &ctx).await.unwrap();
    assert_eq!(actor.stage(), Some(mamori_domain::SessionStage::Setup));
    assert!(s
        .change_password(&actor, otp, SETUP_PASSWORD, &ctx)
        .await
        .unwrap()
        .is_none());
    let actor = s.authenticate_session(&cookie.secret, &ctx).await.unwrap();
    let enrolled = if s.config.auth.requires_webauthn(actor.admin.role) {
        let options = s.webauthn_register_start(&actor).await.unwrap().options;
        let origin = webauthn_rs::prelude::Url::parse(&s.config.auth.admin_url).unwrap();
        let credential = webauthn_authenticator_rs::softpasskey::SoftPasskey::new(true)
            .do_registration(origin, serde_json::from_value(options).unwrap())
            .unwrap();
        s.webauthn_register_finish(
            &actor,
            "e2e passkey",
            &serde_json::to_value(credential).unwrap(),
            &ctx,
        )
        .await
        .unwrap()
        .1
    } else {
        let offer = s.totp_enroll_start(&actor).await.unwrap();
        let secret = mamori_crypto::totp::decode_totp_secret(&offer.secret).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let code = mamori_crypto::totp::totp_code(&secret, now);
        s.totp_enroll_confirm(&actor, &code, &ctx).await.unwrap()
    };
    let (_, full) = enrolled.session.expect("setup finished: a full session");
    let actor = s.authenticate_session(&full.secret, &ctx).await.unwrap();
    s.logout(&actor, &ctx).await.unwrap();
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// A server whose configuration `adjust` changed first.
pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    adjust(&mut config);
    spawn_config(dir, config).await
}

/// Copies a data directory's files (the keys and certificates) into `to`
/// (made private, as the server makes its own), leaving out the running
/// server's lock: another server on the same database gets the same keys,
/// as an operator gives it.
pub fn copy_keys(from: &std::path::Path, to: &std::path::Path) {
    mamori_testkit::datadir::copy_data_dir(from, to, app::LOCK_FILE).unwrap();
}

/// A server on a fresh PostgreSQL database, and its configuration (to
/// start it again, or another on the same database).
pub async fn spawn_on_postgres() -> (TestApp, Config) {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config_on(dir.path(), true);
    (spawn_config(dir, config.clone()).await, config)
}

async fn spawn_config(dir: TempDir, config: Config) -> TestApp {
    let running = app::start(&config).await.unwrap();
    let token = role_token(&running.services, "e2e-owner", "owner").await;
    let tls_ca_pem = std::fs::read(running.tls_ca_path.as_ref().unwrap()).unwrap();
    let http = client_trusting(&tls_ca_pem);
    TestApp {
        running,
        dir,
        token,
        tls_ca_pem,
        http,
    }
}

impl TestApp {
    pub fn admin_url(&self, path: &str) -> String {
        format!("https://{}{}", self.running.admin_addr, path)
    }

    pub fn device_url(&self, path: &str) -> String {
        format!("https://{}{}", self.running.device_addr, path)
    }

    /// POST JSON to the admin API with the owner token.
    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.admin_url(path))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// GET JSON from the admin API with the owner token.
    /// The first 1,000 audit records (as the owner reads them).
    pub async fn audit_records(&self) -> Vec<Value> {
        let (st, audit) = self.get("/api/v1/audit?limit=1000").await;
        assert_eq!(st, 200, "{audit}");
        audit["records"].as_array().unwrap().clone()
    }

    /// Any method to the admin API with the owner token: status and JSON
    /// body (Null when there is none).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, self.admin_url(path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let st = r.status().as_u16();
        (st, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.admin_url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A fresh enrollment profile.
    pub async fn profile(&self, body: Value) -> Vec<u8> {
        let r = self.post("/api/v1/enrollment-profiles", body).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"],
            "application/x-apple-aspen-config"
        );
        r.bytes().await.unwrap().to_vec()
    }

    /// A simulated device enrolled with a new single-use profile.
    pub async fn enrolled(&self, kind: DeviceKind, opts: SimOptions) -> SimDevice {
        let profile = self.profile(json!({})).await;
        let mut dev = SimDevice::new(kind, opts);
        dev.enroll(&profile, Some(&self.tls_ca_pem)).await.unwrap();
        dev
    }

    /// Queues a command without pushing; returns the device → UUID map.
    pub async fn enqueue(&self, devices: &[&str], command: Value) -> Vec<(String, String)> {
        let r = self
            .post(
                "/api/v1/commands?push=false",
                json!({ "devices": devices, "command": command }),
            )
            .await;
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "enqueue failed: {body}");
        body["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["udid"].as_str().unwrap().to_owned(),
                    c["command_uuid"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    pub async fn command(&self, uuid: &str) -> Value {
        let (status, body) = self.get(&format!("/api/v1/commands/{uuid}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// A client whose connections come from `source` (any 127/8 address
/// reaches the loopback listener).
pub fn client_from(app: &TestApp, source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls_config_trusting(&app.tls_ca_pem))
        .local_address(source.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}
