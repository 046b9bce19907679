//! The web console over real TLS, driven as a browser would drive it
//! (forms, cookies, redirects followed by hand): its headers, its
//! languages, signing in with a password and a TOTP code, CSRF on its
//! forms, signing out.

use crate::common::{self, spawn_app, TestApp};
use mamori_domain::Role;

pub(crate) const PASSWORD: &str = "console-test-maple-river-93-heron";

/// A client that does not follow redirects (each step is checked).
pub(crate) fn browser(app: &TestApp) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(common::tls_config_trusting(&app.tls_ca_pem))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Today's date in Tokyo (`YYYY-MM-DD`), as the console's date fields
/// take it.
pub(crate) fn today_in_tokyo() -> String {
    let t = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+9));
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

pub(crate) fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A helpdesk account that finished its setup with TOTP: its TOTP secret.
async fn helpdesk(app: &TestApp, name: &str) -> Vec<u8> {
    totp_account(app, name, Role::Helpdesk).await
}

/// An account of `role` that finished its setup with TOTP (password
/// [`PASSWORD`]): its TOTP secret.
pub(crate) async fn totp_account(app: &TestApp, name: &str, role: Role) -> Vec<u8> {
    let s = &app.running.services;
    let ctx = mamori_core::access::ClientContext::default();
    let created = common::create_admin_now(s, &ctx, name, role).await;
    let (_, cookie) = s
        .login(name, &created.one_time_password, &ctx)
        .await
        .unwrap();
    let actor = s.authenticate_session(&cookie.secret, &ctx).await.unwrap();
    s.change_password(&actor, &created.one_time_password, PASSWORD, &ctx)
        .await
        .unwrap();
    let actor = s.authenticate_session(&cookie.secret, &ctx).await.unwrap();
    let offer = s.totp_enroll_start(&actor).await.unwrap();
    let secret = mamori_crypto::totp::decode_totp_secret(&offer.secret).unwrap();
    let code = mamori_crypto::totp::totp_code(&secret, now_unix() - 30);
    let enrolled = s.totp_enroll_confirm(&actor, &code, &ctx).await.unwrap();
    let (_, full) = enrolled.session.unwrap();
    let actor = s.authenticate_session(&full.secret, &ctx).await.unwrap();
    s.logout(&actor, &ctx).await.unwrap();
    secret
}

pub(crate) fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// The session cookie a response sets (`name=value`).
pub(crate) fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__Host-mamori_session="))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

/// The value of the hidden `csrf` field in a page.
pub(crate) fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn every_console_answer_forbids_inline_code_and_framing() {
    let app = spawn_app().await;
    let b = browser(&app);
    let r = b.get(app.admin_url("/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/console/");
    let r = b.get(app.admin_url("/console/")).send().await.unwrap();
    assert_eq!(r.status(), 303, "no session: to the sign-in page");
    assert_eq!(location(&r), "/console/sign-in");
    for path in [
        "/",
        "/console/",
        "/console/sign-in",
        "/console/assets/console.css",
    ] {
        let r = b.get(app.admin_url(path)).send().await.unwrap();
        let h = r.headers();
        assert_eq!(
            h["content-security-policy"],
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "{path}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["cross-origin-opener-policy"], "same-origin", "{path}");
        assert_eq!(h["cross-origin-resource-policy"], "same-origin", "{path}");
        assert!(h["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age="));
        assert!(h.contains_key("permissions-policy"), "{path}");
    }
    let r = b
        .get(app.admin_url("/console/sign-in"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    // No inline code: every script is a file of our own, no style inline.
    let scripts: Vec<&str> = html.split("<script").skip(1).collect();
    assert!(scripts
        .iter()
        .all(|s| s.starts_with(" src=\"/console/assets/") && s.contains("></script>")));
    assert!(!html.contains("style=") && !html.contains("<style"));
    let css = b
        .get(app.admin_url("/console/assets/console.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    // The API keeps its JSON answers.
    let r = b
        .get(app.admin_url("/api/v1/devices"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("\"error\""));
}

#[tokio::test]
async fn the_console_speaks_the_browsers_language_and_remembers_a_switch() {
    let app = spawn_app().await;
    let b = browser(&app);
    let page = |lang: &'static str| {
        b.get(app.admin_url("/console/sign-in"))
            .header("accept-language", lang)
            .send()
    };
    let ja = page("ja-JP,ja;q=0.9").await.unwrap().text().await.unwrap();
    assert!(
        ja.contains("<html lang=\"ja\">") && ja.contains("サインイン"),
        "{ja}"
    );
    let en = page("en-US,en;q=0.9").await.unwrap().text().await.unwrap();
    assert!(
        en.contains("<html lang=\"en\">") && en.contains("Sign in"),
        "{en}"
    );
    assert!(
        en.contains("href=\"/console/sign-in?lang=ja\""),
        "a switch to Japanese"
    );
    assert!(
        en.contains("hreflang=\"ja\">日本語</a>") && ja.contains("hreflang=\"en\">English</a>"),
        "each switch named in the language it switches to"
    );
    let r = b
        .get(app.admin_url("/console/sign-in?lang=en"))
        .header("accept-language", "ja")
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("mamori_lang=en;") && cookie.contains("SameSite=Strict"));
    assert!(r.text().await.unwrap().contains("<html lang=\"en\">"));
    let again = b
        .get(app.admin_url("/console/sign-in"))
        .header("accept-language", "ja")
        .header("cookie", "mamori_lang=en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        again.contains("<html lang=\"en\">"),
        "the switch is remembered"
    );
}

#[tokio::test]
async fn a_helpdesk_user_signs_in_with_a_password_and_a_code_then_out() {
    let app = spawn_app().await;
    let secret = helpdesk(&app, "console-helpdesk").await;
    let b = browser(&app);
    let sign_in = |name: &'static str, password: &'static str| {
        b.post(app.admin_url("/console/sign-in"))
            .header("accept-language", "en")
            .form(&[("name", name), ("password", password)])
            .send()
    };

    // A wrong password: the form again, with a reason, and no session.
    let r = sign_in("console-helpdesk", "not-the-password")
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(session_cookie(&r).is_none());
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("The name or the password is wrong"));

    // Another site cannot post the form.
    let r = b
        .post(app.admin_url("/console/sign-in"))
        .header("origin", "https://elsewhere.example")
        .form(&[("name", "console-helpdesk"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(session_cookie(&r).is_none());

    // The password: a session that can only finish signing in.
    let r = sign_in("console-helpdesk", PASSWORD).await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/console/");
    let first = session_cookie(&r).expect("a session cookie");
    let r = b
        .get(app.admin_url("/console/"))
        .header("cookie", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/console/second-factor");
    let page = b
        .get(app.admin_url("/console/second-factor"))
        .header("cookie", &first)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("name=\"code\"") && page.contains("name=\"recovery\""));
    let csrf = csrf_of(&page);

    // Without the page's CSRF token, nothing happens (and it is recorded).
    let code = mamori_crypto::totp::totp_code(&secret, now_unix());
    let r = b
        .post(app.admin_url("/console/second-factor"))
        .header("cookie", &first)
        .form(&[("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let records = app.audit_records().await;
    assert!(records
        .iter()
        .any(|r| r["action"] == "access.denied" && r["detail"] == "missing or wrong CSRF token"));

    // A wrong code: the form again.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = b
        .post(app.admin_url("/console/second-factor"))
        .header("cookie", &first)
        .header("accept-language", "en")
        .form(&[("csrf", csrf.as_str()), ("code", wrong)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("That code is not valid"));

    // The right code: a new, full session.
    let r = b
        .post(app.admin_url("/console/second-factor"))
        .header("cookie", &first)
        .form(&[("csrf", csrf.as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    let full = session_cookie(&r).expect("a new session");
    assert_ne!(full, first, "a new session, not the first one raised");
    let home = b
        .get(app.admin_url("/console/"))
        .header("cookie", &full)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 200);
    let home = home.text().await.unwrap();
    assert!(
        home.contains("Signed in as console-helpdesk (helpdesk)"),
        "{home}"
    );
    assert!(home.contains(
        "<div class=\"figure\" id=\"approvals-waiting\"><dt>Requests waiting for your decision</dt><dd>0</dd>"
    ));
    assert!(
        !home.contains("id=\"audit-state\""),
        "helpdesk reads no audit log"
    );
    let records = app.audit_records().await;
    assert!(records.iter().any(|r| r["action"] == "auth.password"
        && r["target"] == "console-helpdesk"
        && r["outcome"] == "success"));

    // Signing out ends the session.
    let r = b
        .post(app.admin_url("/console/sign-out"))
        .header("cookie", &full)
        .form(&[("csrf", csrf_of(&home).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/console/sign-in");
    let r = b
        .get(app.admin_url("/console/"))
        .header("cookie", &full)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/console/sign-in", "the session is gone");
}

#[tokio::test]
async fn a_new_account_finishes_its_setup_in_the_console() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let ctx = mamori_core::access::ClientContext::default();
    let created = common::create_admin_now(s, &ctx, "console-newcomer", Role::Helpdesk).await;
    let b = browser(&app);
    let r = b
        .post(app.admin_url("/console/sign-in"))
        .form(&[
            ("name", "console-newcomer"),
            ("password", created.one_time_password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let setup = session_cookie(&r).unwrap();
    let get = |cookie: String, path: &'static str| {
        b.get(app.admin_url(path))
            .header("cookie", cookie)
            .header("accept-language", "en")
            .send()
    };
    let r = get(setup.clone(), "/console/").await.unwrap();
    assert_eq!(location(&r), "/console/setup");
    let page = get(setup.clone(), "/console/setup")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("name=\"new\""),
        "the password step first: {page}"
    );
    let csrf = csrf_of(&page);

    // Two different new passwords: refused next to the form, nothing changed.
    let r = b
        .post(app.admin_url("/console/setup/password"))
        .header("cookie", &setup)
        .header("accept-language", "en")
        .form(&[
            ("csrf", csrf.as_str()),
            ("current", created.one_time_password.as_str()),
            ("new", PASSWORD),
            ("repeat", "something-else-entirely-42"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("The two new passwords differ."));

    let r = b
        .post(app.admin_url("/console/setup/password"))
        .header("cookie", &setup)
        .form(&[
            ("csrf", csrf.as_str()),
            ("current", created.one_time_password.as_str()),
            ("new", PASSWORD),
            ("repeat", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/console/setup");

    // Then the authenticator: a QR code drawn here and the key as text.
    let page = get(setup.clone(), "/console/setup")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("src=\"data:image/svg+xml;base64,"), "{page}");
    let at = page.find("id=\"totp-key\">").unwrap() + 14;
    let key = page[at..].split('<').next().unwrap().to_owned();
    let secret = mamori_crypto::totp::decode_totp_secret(&key).unwrap();
    let code = mamori_crypto::totp::totp_code(&secret, now_unix());
    let r = b
        .post(app.admin_url("/console/setup/totp"))
        .header("cookie", &setup)
        .header("accept-language", "en")
        .form(&[("csrf", csrf_of(&page).as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let full = session_cookie(&r).expect("the full session begins");
    let shown = r.text().await.unwrap();
    assert!(shown.contains("Your recovery codes") && shown.contains("id=\"recovery-codes\""));
    assert!(shown.contains("download=\"mamori-recovery-codes.txt\""));
    let home = get(full, "/console/").await.unwrap();
    assert_eq!(home.status(), 200);
    assert!(home
        .text()
        .await
        .unwrap()
        .contains("Signed in as console-newcomer (helpdesk)"));
    // The account is set up: the one-time password no longer works.
    assert!(s
        .login("console-newcomer", &created.one_time_password, &ctx)
        .await
        .is_err());
}
