//! The console in a real browser: Debian's Chromium, driven by
//! playwright-core from the scenario scripts in `tests/browser/`, against
//! the real server over real TLS. Each scenario checks every page it
//! reaches (no Content-Security-Policy violation, no request to another
//! origin, no serious or critical axe-core finding) and keeps a screenshot
//! of it under `target/browser/<scenario>/`. `scripts/test.sh` installs
//! Chromium and the scenarios' npm packages first.

use crate::common::{spawn_app, TestApp};
use mamori_domain::Role;
use mamori_sim::{DeviceKind, SimOptions};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_mamori");
const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");

/// Where the screenshots go: the build's target folder.
fn artifacts() -> PathBuf {
    match option_env!("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    }
    .join("browser")
}

/// The address administrators use (the server's admin URL, a host name:
/// passkeys need one).
fn base(app: &TestApp) -> String {
    app.running.services.config.auth.admin_url.clone()
}

/// Runs the scenario `script` with `vars` added to its environment; fails
/// the test with the scenario's output unless it passed.
async fn run(app: &TestApp, script: &str, vars: &[(&str, String)]) {
    let modules = PathBuf::from(SCRIPTS).join("node_modules/playwright-core");
    assert!(
        modules.exists(),
        "the browser tests need Chromium and their npm packages: run scripts/test.sh \
         (or `npm ci` in {SCRIPTS} and `apt-get install chromium`)"
    );
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(script)
        .current_dir(SCRIPTS)
        .env("MAMORI_BASE", base(app))
        .env(
            "MAMORI_CA_PEM",
            app.running
                .tls_ca_path
                .as_ref()
                .expect("the generated TLS CA"),
        )
        .env("MAMORI_ARTIFACTS", artifacts())
        .kill_on_drop(true);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(240), cmd.output())
        .await
        .expect("the scenario finished within 4 minutes")
        .expect("node runs");
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `mamori admin create` on the running server's data directory, as the
/// operator runs it: (the address it printed, the one-time password).
fn admin_create(app: &TestApp, name: &str, role: &str) -> (String, String) {
    let out = std::process::Command::new(BIN)
        .args([
            "admin",
            "create",
            "--name",
            name,
            "--role",
            role,
            "--data-dir",
        ])
        .arg(app.dir.path().join("data"))
        .env("MAMORI_ADMIN_URL", base(app))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let address = stdout
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .expect("the console's address is printed")
        .to_owned();
    let otp = stdout.lines().last().unwrap().trim().to_owned();
    (address, otp)
}

#[tokio::test]
async fn the_first_owner_sets_up_a_passkey_and_signs_in_with_it() {
    let app = spawn_app().await;
    let (address, otp) = admin_create(&app, "hana", "owner");
    assert_eq!(address, format!("{}/console/", base(&app)));
    run(
        &app,
        "owner_passkey.mjs",
        &[
            ("MAMORI_PRINTED_ADDRESS", address),
            ("MAMORI_NAME", "hana".into()),
            ("MAMORI_ONE_TIME_PASSWORD", otp),
            (
                "MAMORI_NEW_PASSWORD",
                "browser-owner-cedar-lantern-58".into(),
            ),
        ],
    )
    .await;
    // The server recorded the new key and both sign-ins.
    let records = app.audit_records().await;
    let actions: Vec<&str> = records
        .iter()
        .filter(|r| r["target"] == "hana" || r["actor"] == "admin:hana")
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert!(actions.contains(&"mfa.webauthn_register"), "{actions:?}");
    let last_login = records
        .iter()
        .rev()
        .find(|r| r["action"] == "auth.login" && r["target"] == "hana")
        .expect("a login");
    assert!(
        last_login.to_string().contains("webauthn"),
        "the last sign-in was with the passkey: {last_login}"
    );
}

/// A helpdesk account that finished its setup with TOTP, made through
/// the use-cases: its TOTP key (base32) for the scenario to compute codes.
async fn helpdesk(app: &TestApp, name: &str, password: &str) -> String {
    totp_account(app, name, Role::Helpdesk, password).await
}

/// An account of `role` that finished its setup with TOTP: its TOTP key
/// (base32).
async fn totp_account(app: &TestApp, name: &str, role: Role, password: &str) -> String {
    let s = &app.running.services;
    let ctx = mamori_core::access::ClientContext::default();
    let created = crate::common::create_admin_now(s, &ctx, name, role).await;
    let (_, cookie) = s
        .login(name, &created.one_time_password, &ctx)
        .await
        .unwrap();
    let actor = s.authenticate_session(&cookie.secret, &ctx).await.unwrap();
    s.change_password(&actor, &created.one_time_password, password, &ctx)
        .await
        .unwrap();
    let actor = s.authenticate_session(&cookie.secret, &ctx).await.unwrap();
    let offer = s.totp_enroll_start(&actor).await.unwrap();
    let secret = mamori_crypto::totp::decode_totp_secret(&offer.secret).unwrap();
    let earlier = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 30;
    let code = mamori_crypto::totp::totp_code(&secret, earlier);
    let enrolled = s.totp_enroll_confirm(&actor, &code, &ctx).await.unwrap();
    let (_, full) = enrolled.session.unwrap();
    let actor = s.authenticate_session(&full.secret, &ctx).await.unwrap();
    s.logout(&actor, &ctx).await.unwrap();
    offer.secret
}

/// A simulated device that checks in every 300 ms until stopped, as a
/// phone woken by a push would: (the device, the stop flag, the task).
type Polled = (
    Arc<tokio::sync::Mutex<mamori_sim::SimDevice>>,
    Arc<AtomicBool>,
    tokio::task::JoinHandle<()>,
);

fn polled(device: mamori_sim::SimDevice) -> Polled {
    let device = Arc::new(tokio::sync::Mutex::new(device));
    let stop = Arc::new(AtomicBool::new(false));
    let task = {
        let (device, stop) = (Arc::clone(&device), Arc::clone(&stop));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let _ = device.lock().await.run_queue().await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    (device, stop, task)
}

#[tokio::test]
async fn two_administrators_erase_a_phone_together() {
    let app = crate::common::spawn_with(|c| c.erase_approval_threshold = 0).await;
    let password = "browser-admins-maple-lantern-64";
    let first = totp_account(&app, "aoi", Role::DeviceAdmin, password).await;
    let second = totp_account(&app, "ren", Role::DeviceAdmin, password).await;
    let device = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let (serial, udid) = (device.serial_number().to_owned(), device.udid().to_owned());
    let (device, stop, task) = polled(device);
    run(
        &app,
        "two_person_erase.mjs",
        &[
            ("MAMORI_FIRST", "aoi".into()),
            ("MAMORI_FIRST_KEY", first),
            ("MAMORI_SECOND", "ren".into()),
            ("MAMORI_SECOND_KEY", second),
            ("MAMORI_PASSWORD", password.into()),
            ("MAMORI_SERIAL", serial),
            ("MAMORI_UDID", udid),
            ("MAMORI_LOCALE", "en-US".into()),
        ],
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    task.await.unwrap();
    assert!(device.lock().await.is_erased(), "the phone was erased");
    let records = app.audit_records().await;
    let approved = records
        .iter()
        .find(|r| r["action"] == "approval.approve")
        .expect("the approval is in the audit log");
    assert_eq!(approved["actor"], "admin:ren", "{approved}");
    assert!(approved["detail"].to_string().contains("aoi"), "{approved}");
}

#[tokio::test]
async fn a_helpdesk_user_finds_a_device_locks_it_and_sees_the_result() {
    let app = spawn_app().await;
    let password = "browser-helpdesk-pine-harbor-71";
    let key = helpdesk(&app, "kaito", password).await;
    let device = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let serial = device.serial_number().to_owned();
    let (device, stop, poller) = polled(device);
    run(
        &app,
        "helpdesk_lock.mjs",
        &[
            ("MAMORI_NAME", "kaito".into()),
            ("MAMORI_PASSWORD", password.into()),
            ("MAMORI_TOTP_KEY", key),
            ("MAMORI_SERIAL", serial),
            ("MAMORI_LOCALE", "en-US".into()),
        ],
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    poller.await.unwrap();
    let device = device.lock().await;
    assert!(device.is_locked(), "the phone was locked");
    let lock = app
        .audit_records()
        .await
        .into_iter()
        .find(|r| r["action"] == "command.queue" && r["actor"] == "admin:kaito")
        .expect("the lock is in the audit log");
    assert!(lock.to_string().contains("DeviceLock"), "{lock}");
}

/// An insider's token reads `people` people's personal data twice over:
/// the bulk-read rule trips and opens an incident. Its ID.
async fn bulk_read_incident(app: &TestApp) -> String {
    let insider =
        crate::common::role_token(&app.running.services, "insider", "security_officer").await;
    for after in [None, Some(())] {
        let mut path = "/api/v1/people/personal-data?limit=4".to_owned();
        if after.is_some() {
            let (_, first) = app.get("/api/v1/people?limit=4").await;
            let last = first["people"][3]["id"].as_str().unwrap().to_owned();
            path.push_str(&format!("&after={last}"));
        }
        app.http
            .get(app.admin_url(&path))
            .bearer_auth(&insider)
            .send()
            .await
            .unwrap();
    }
    let (_, list) = app.get("/api/v1/incidents").await;
    list["incidents"][0]["id"]
        .as_str()
        .expect("the alert opened an incident")
        .to_owned()
}

#[tokio::test]
async fn a_security_officer_reveals_a_person_reports_the_scope_and_sees_an_incident() {
    // A low bulk-read limit, so that a few reads trip it.
    let app = crate::common::spawn_with(|c| c.bulk_read_threshold = 6).await;
    let s = &app.running.services;
    let ctx = mamori_core::access::ClientContext::default();
    let new_person = |name: String, n: usize| mamori_core::people::PersonInput {
        name: Some(name),
        user_id: Some(format!("u-47{n:02}")),
        email: Some(format!("person{n}@example.co.jp")),
        ..Default::default()
    };
    let person = s
        .create_person(
            &crate::common::authorized(),
            &ctx,
            &new_person("山田 花子".into(), 0),
        )
        .await
        .unwrap();
    for n in 1..9 {
        s.create_person(
            &crate::common::authorized(),
            &ctx,
            &new_person(format!("佐藤 {n}"), n),
        )
        .await
        .unwrap();
    }
    let incident = bulk_read_incident(&app).await;
    // The rule counts a network's reads over a minute: let the insider's
    // fall out of it before the officer reads.
    tokio::time::sleep(Duration::from_secs(61)).await;
    let created = crate::common::create_admin_now(s, &ctx, "sora", Role::SecurityOfficer).await;
    let today = crate::console::today_in_tokyo();
    let reason = "HR request 2026-118: confirm the laptop's owner";
    run(
        &app,
        "officer_reveal.mjs",
        &[
            ("MAMORI_NAME", "sora".into()),
            (
                "MAMORI_ONE_TIME_PASSWORD",
                created.one_time_password.clone(),
            ),
            (
                "MAMORI_NEW_PASSWORD",
                "browser-officer-birch-meadow-27".into(),
            ),
            ("MAMORI_PERSON", person.id.to_string()),
            ("MAMORI_PERSON_NAME", "山田 花子".into()),
            ("MAMORI_REASON", reason.into()),
            ("MAMORI_TODAY", today),
            ("MAMORI_INCIDENT", incident),
            ("MAMORI_LOCALE", "ja-JP".into()),
        ],
    )
    .await;
    // The reveal is on record: the request with its reason, then the read.
    let records = app.audit_records().await;
    let intent = records
        .iter()
        .find(|r| r["action"] == "people.read_intent" && r["actor"] == "admin:sora")
        .expect("the request is recorded");
    assert_eq!(intent["target"], person.id.as_str());
    assert!(
        intent["detail"].as_str().unwrap().contains(reason),
        "{intent}"
    );
    assert!(records.iter().any(|r| r["action"] == "people.read"
        && r["actor"] == "admin:sora"
        && r["target"] == person.id.as_str()));
}
