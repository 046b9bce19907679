//! Refused passkeys in the console tell an honest user what to fix: the
//! address to open the console at, an authenticator that verifies its
//! user, a request that expired, a browser without JavaScript. And none of
//! them registers anything. (The ceremony that succeeds runs in a real
//! browser: `browser.rs`.)

use crate::common::{self, spawn_app, SETUP_PASSWORD};
use crate::console::{browser, csrf_of, location, session_cookie};
use mamori_domain::Role;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::Url;

/// The same registration with the authenticator's "user verified" flag
/// cleared, as a key without a PIN or biometric check answers (attestation
/// "none": nothing signs the flags at registration).
fn without_user_verification(credential: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut c: serde_json::Value = serde_json::from_str(credential).unwrap();
    let field = &mut c["response"]["attestationObject"];
    let mut object = b64.decode(field.as_str().unwrap()).unwrap();
    let rp_id_hash = mamori_crypto::sha256(b"localhost");
    let at = object
        .windows(32)
        .position(|w| w == rp_id_hash)
        .expect("the authenticator data in the attestation object")
        + 32;
    object[at] &= !0x04;
    *field = serde_json::Value::String(b64.encode(object));
    c.to_string()
}

#[tokio::test]
async fn a_refused_passkey_says_what_to_fix_and_registers_nothing() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let admin_url = s.config.auth.admin_url.clone();
    let ctx = mamori_core::access::ClientContext::default();
    let created = common::create_admin_now(s, &ctx, "console-owner", Role::Owner).await;
    let b = browser(&app);
    // The console opened at the IP address instead of the admin URL's name.
    let r = b
        .post(app.admin_url("/console/sign-in"))
        .form(&[
            ("name", "console-owner"),
            ("password", created.one_time_password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let cookie = session_cookie(&r).unwrap();
    let page = |path: &'static str| {
        b.get(app.admin_url(path))
            .header("cookie", &cookie)
            .header("accept-language", "en")
            .send()
    };
    let csrf = csrf_of(&page("/console/setup").await.unwrap().text().await.unwrap());
    let r = b
        .post(app.admin_url("/console/setup/password"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("current", created.one_time_password.as_str()),
            ("new", SETUP_PASSWORD),
            ("repeat", SETUP_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/console/setup");
    let setup = page("/console/setup").await.unwrap().text().await.unwrap();
    assert!(
        setup.contains("id=\"passkey-unusable\"")
            && setup.contains(&format!(
                "Passkeys work only at the console's own address, {admin_url}"
            )),
        "before anything is tried, the page names the address to use: {setup}"
    );

    // Each refused answer, posted as the page's script posts it.
    let answer = |origin: &str| {
        let origin = origin.to_owned();
        let b = b.clone();
        let cookie = cookie.clone();
        let csrf = csrf.clone();
        let app_url = app.admin_url("/api/v1/auth/webauthn/register/start");
        async move {
            let options: serde_json::Value = b
                .post(app_url)
                .header("cookie", &cookie)
                .header("x-csrf-token", &csrf)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let credential = SoftPasskey::new(true)
                .do_registration(
                    Url::parse(&origin).unwrap(),
                    serde_json::from_value(options).unwrap(),
                )
                .unwrap();
            serde_json::to_string(&credential).unwrap()
        }
    };
    let post = |credential: String| {
        b.post(app.admin_url("/console/setup/passkey"))
            .header("cookie", &cookie)
            .header("accept-language", "en")
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", "laptop"),
                ("credential", credential.as_str()),
            ])
            .send()
    };
    // A browser at another port of the same name (say, a proxy on 443 in
    // front of an admin URL that names 8444) signs for that origin.
    let elsewhere = "https://localhost:1";
    let wrong_host = answer(elsewhere).await;
    let r = post(wrong_host).await.unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(
        text.contains(&format!(
            "only at the console's own address, {admin_url}. Open the console there"
        )),
        "{text}"
    );

    let unverified = without_user_verification(&answer(&admin_url).await);
    let r = post(unverified.clone()).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Your authenticator did not verify you (PIN, fingerprint or face)."));

    // The same answer again: its challenge was used up.
    let r = post(unverified).await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("The passkey request expired or was already used."));

    // A browser without JavaScript sends the form with no answer.
    let r = post(String::new()).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("which needs JavaScript"));

    // The API says the same, with a code a client can act on.
    let credential = answer(elsewhere).await;
    let r = b
        .post(app.admin_url("/api/v1/auth/webauthn/register/finish"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({
            "credential": serde_json::from_str::<serde_json::Value>(&credential).unwrap()
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "passkey_wrong_origin", "{body}");

    // Nothing was registered (each refusal is in the audit log); the
    // account is still in setup.
    let records = app.audit_records().await;
    let registrations: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["action"] == "mfa.webauthn_register" && r["target"] == "console-owner")
        .collect();
    assert!(
        registrations.len() >= 3 && registrations.iter().all(|r| r["outcome"] != "success"),
        "{registrations:?}"
    );
    let r = page("/console/").await.unwrap();
    assert_eq!(location(&r), "/console/setup");
}
