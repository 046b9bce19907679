//! Administrators in the console, without a browser: an owner creates an
//! account (its one-time password shown once, after a step-up asked on the
//! page), disables and enables it; a security officer waits for a second
//! administrator; nobody disables their own account; a role without the
//! accounts permission gets a page saying so.

use crate::common::{role_token, spawn_with};
use crate::console::{browser, csrf_of, now_unix, totp_account, PASSWORD};
use crate::console_devices::console_session;
use mamori_domain::Role;

#[tokio::test]
async fn an_owner_manages_accounts_from_the_page() {
    // A step-up (and the sign-in, which counts as one) is good for 2 s.
    let app = spawn_with(|c| {
        c.auth.step_up_window = time::Duration::seconds(2);
        // Owners may use TOTP here, so the test can type the codes.
        c.auth.webauthn_roles.clear();
    })
    .await;
    let key = totp_account(&app, "console-owner", Role::Owner).await;
    let cookie = console_session(&app, "console-owner", &key).await;
    let b = browser(&app);
    let get = || {
        b.get(app.admin_url("/console/admins"))
            .header("cookie", &cookie)
            .header("accept-language", "en")
            .send()
    };
    let page = get().await.unwrap().text().await.unwrap();
    assert!(page.contains("data-admin=\"console-owner\""), "{page}");
    let csrf = csrf_of(&page);
    let post = |path: String, form: Vec<(&'static str, String)>| {
        b.post(app.admin_url(&path))
            .header("cookie", &cookie)
            .header("accept-language", "en")
            .form(&form)
            .send()
    };

    // Signed in a while ago: the page asks who it is, then creates.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let new = |extra: Vec<(&'static str, String)>| {
        let mut f = vec![
            ("csrf", csrf.clone()),
            ("name", "kenji".to_owned()),
            ("role", "helpdesk".to_owned()),
        ];
        f.extend(extra);
        f
    };
    let r = post("/console/admins".into(), new(vec![])).await.unwrap();
    assert_eq!(r.status(), 403);
    let text = r.text().await.unwrap();
    assert!(text.contains("id=\"step-up-form\""), "{text}");
    assert!(
        text.contains("name=\"name\" value=\"kenji\""),
        "the form is carried"
    );
    let code = mamori_crypto::totp::totp_code(&key, now_unix() + 30);
    let r = post(
        "/console/admins".into(),
        new(vec![("password", PASSWORD.to_owned()), ("code", code)]),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("kenji's one-time password is "), "{text}");
    let page = get().await.unwrap().text().await.unwrap();
    assert!(page.contains("data-admin=\"kenji\""));
    assert!(!page.contains("one-time password is"), "shown once");

    // Disable and enable (the step-up is still fresh).
    let r = post(
        "/console/admins/kenji/disable".into(),
        vec![("csrf", csrf.clone())],
    )
    .await
    .unwrap();
    let text = r.text().await.unwrap();
    assert!(text.contains("kenji is disabled"), "{text}");
    let r = post(
        "/console/admins/kenji/enable".into(),
        vec![("csrf", csrf.clone())],
    )
    .await
    .unwrap();
    assert!(r.text().await.unwrap().contains("kenji is enabled again"));

    // Nobody disables their own account.
    let r = post(
        "/console/admins/console-owner/disable".into(),
        vec![("csrf", csrf.clone())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("cannot disable their own account"));

    // A security officer waits for a second administrator.
    let mut f = new(vec![]);
    f[1].1 = "aiko".to_owned();
    f[2].1 = "security_officer".to_owned();
    let r = post("/console/admins".into(), f).await.unwrap();
    assert_eq!(r.status(), 202);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("A second administrator must approve this"));

    // A device administrator may not manage accounts.
    let other = role_token(&app.running.services, "console-da", "device_admin").await;
    let r = app
        .http
        .get(app.admin_url("/console/admins"))
        .bearer_auth(other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn a_token_secret_is_shown_once_and_a_token_can_be_revoked() {
    let app = spawn_with(|c| c.auth.webauthn_roles.clear()).await;
    let key = totp_account(&app, "console-tokens", Role::DeviceAdmin).await;
    let cookie = console_session(&app, "console-tokens", &key).await;
    let b = browser(&app);
    let page = b
        .get(app.admin_url("/console/tokens"))
        .header("cookie", &cookie)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&page);
    let r = b
        .post(app.admin_url("/console/tokens"))
        .header("cookie", &cookie)
        .header("accept-language", "en")
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "inventory export"),
            ("role", "viewer"),
            ("days", "30"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let text = r.text().await.unwrap();
    let at = text.find("id=\"new-token-secret\">").expect("the secret") + 22;
    let secret = text[at..].split('<').next().unwrap().to_owned();
    // It works, as a viewer.
    let r = app
        .http
        .get(app.admin_url("/api/v1/devices"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A role above the account's own is refused; nothing is made.
    let r = b
        .post(app.admin_url("/console/tokens"))
        .header("cookie", &cookie)
        .header("accept-language", "en")
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "x"),
            ("role", "owner"),
            ("days", "30"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(!r.text().await.unwrap().contains("new-token-secret"));
    // Revoked: its next request fails; the secret is never shown again.
    let page = b
        .get(app.admin_url("/console/tokens"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains(&secret));
    let at = page.find("data-token=\"").unwrap() + 12;
    let id = page[at..].split('"').next().unwrap().to_owned();
    let r = b
        .post(app.admin_url(&format!("/console/tokens/{id}/revoke")))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = app
        .http
        .get(app.admin_url("/api/v1/devices"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn my_account_lists_my_factors_and_sessions_and_ends_one() {
    let app = spawn_with(|_| {}).await;
    let key = totp_account(&app, "console-me", Role::Helpdesk).await;
    let first = console_session(&app, "console-me", &key).await;
    let second =
        crate::console_devices::console_session_at(&app, "console-me", &key, now_unix() + 30).await;
    let b = browser(&app);
    let get = |cookie: &str| {
        b.get(app.admin_url("/console/account"))
            .header("cookie", cookie)
            .header("accept-language", "en")
            .send()
    };
    let page = get(&second).await.unwrap().text().await.unwrap();
    assert!(page.contains("id=\"my-totp\">Set up<"), "{page}");
    assert_eq!(page.matches("data-session=").count(), 2, "{page}");
    assert_eq!(page.matches("(this one)").count(), 1);
    // End the other session: it no longer works; this one does.
    let other = page
        .split("data-session=\"")
        .skip(1)
        .find(|row| !row.split("</tr>").next().unwrap().contains("(this one)"))
        .and_then(|row| row.split('"').next())
        .unwrap()
        .to_owned();
    let r = b
        .post(app.admin_url(&format!("/console/account/sessions/{other}/end")))
        .header("cookie", &second)
        .form(&[("csrf", csrf_of(&page).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = get(&first).await.unwrap();
    assert_eq!(r.status(), 303, "the first session ended: to sign-in");
    assert_eq!(get(&second).await.unwrap().status(), 200);
}

/// Removing a factor from my account asks for a fresh step-up on the
/// page, and the last factor is never removed.
#[tokio::test]
async fn my_factors_change_only_after_a_fresh_step_up_and_never_the_last() {
    let app = spawn_with(|c| c.auth.step_up_window = time::Duration::seconds(2)).await;
    let key = totp_account(&app, "console-factors", Role::Helpdesk).await;
    let cookie = console_session(&app, "console-factors", &key).await;
    let b = browser(&app);
    let page = b
        .get(app.admin_url("/console/account"))
        .header("cookie", &cookie)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"remove-totp\""), "{page}");
    let csrf = csrf_of(&page);
    let remove = |extra: Vec<(&'static str, String)>| {
        let mut form = vec![("csrf", csrf.clone())];
        form.extend(extra);
        b.post(app.admin_url("/console/account/totp/remove"))
            .header("cookie", &cookie)
            .header("accept-language", "en")
            .form(&form)
            .send()
    };
    // The sign-in counts as a step-up: the only factor is kept.
    let r = remove(vec![]).await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("only second factor"));
    // Later, the page asks who it is first.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let r = remove(vec![]).await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("id=\"step-up-form\""));
    let code = mamori_crypto::totp::totp_code(&key, now_unix() + 30);
    let r = remove(vec![("password", PASSWORD.to_owned()), ("code", code)])
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "proved, and still the last factor");
    assert!(!app
        .audit_records()
        .await
        .iter()
        .any(|r| r["action"] == "mfa.totp_remove"));
}
