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
    let s = &app.running.services;
    let ctx = mamori_core::access::ClientContext::default();
    let created = crate::common::create_admin_now(s, &ctx, name, Role::Helpdesk).await;
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

#[tokio::test]
async fn a_helpdesk_user_finds_a_device_locks_it_and_sees_the_result() {
    let app = spawn_app().await;
    let password = "browser-helpdesk-pine-harbor-71";
    let key = helpdesk(&app, "kaito", password).await;
    let device = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let serial = device.serial_number().to_owned();
    // The device checks in every 300 ms, as a phone told by a push would.
    let device = Arc::new(tokio::sync::Mutex::new(device));
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (device, stop) = (Arc::clone(&device), Arc::clone(&stop));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let _ = device.lock().await.run_queue().await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
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
