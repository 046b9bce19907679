//! The devices area of the console, checked without a browser: what each
//! role sees and may do, bad input refused next to the form with nothing
//! sent, a Mac's lock PIN shown once. (A helpdesk user locking a phone in
//! a real browser: `browser.rs`.)

use crate::common::{role_token, spawn_app, spawn_with, TestApp};
use crate::console::{browser, csrf_of, now_unix, session_cookie, totp_account, PASSWORD};
use mamori_domain::Role;
use mamori_sim::{DeviceKind, SimOptions};

/// A console request with an API token (the console takes the same
/// credentials as the API; a token needs no CSRF token).
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

async fn act(app: &TestApp, token: &str, udid: &str, form: &[(&str, &str)]) -> (u16, String) {
    let r = app
        .http
        .post(app.admin_url(&format!("/console/devices/{udid}/actions")))
        .bearer_auth(token)
        .header("accept-language", "en")
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn commands(app: &TestApp, udid: &str) -> Vec<String> {
    let (_, body) = app.get(&format!("/api/v1/devices/{udid}/commands")).await;
    body["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["request_type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn each_role_sees_and_does_only_what_it_may() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let mac = app.enrolled(DeviceKind::Mac, SimOptions::default()).await;
    let viewer = role_token(s, "console-viewer", "viewer").await;
    let helpdesk = role_token(s, "console-helpdesk", "helpdesk").await;
    let admin = role_token(s, "console-device-admin", "device_admin").await;

    // The list finds the phone by its serial number, and only it.
    let (st, list) = get(
        &app,
        &viewer,
        &format!("/console/devices?serial={}", phone.serial_number()),
    )
    .await;
    assert_eq!(st, 200);
    assert!(
        list.contains(&format!("/console/devices/{}", phone.udid())),
        "{list}"
    );
    assert!(!list.contains(&format!("/console/devices/{}", mac.udid())));

    // A viewer sees the device but no action, and cannot post one.
    let (st, page) = get(&app, &viewer, &format!("/console/devices/{}", phone.udid())).await;
    assert_eq!(st, 200);
    assert!(page.contains(phone.serial_number()));
    assert!(
        !page.contains("id=\"lock-form\""),
        "no actions for a viewer"
    );
    let (st, _) = act(&app, &viewer, phone.udid(), &[("kind", "lock")]).await;
    assert_eq!(st, 403);

    // Helpdesk: device actions, but nothing destructive.
    let (_, page) = get(
        &app,
        &helpdesk,
        &format!("/console/devices/{}", phone.udid()),
    )
    .await;
    assert!(page.contains("id=\"lock-form\""));
    assert!(
        !page.contains("value=\"erase\""),
        "no erase button for helpdesk"
    );
    let (st, page) = act(&app, &helpdesk, phone.udid(), &[("kind", "erase")]).await;
    assert_eq!(st, 403, "{page}");
    assert!(page.contains("Your role cannot send this command. Nothing was sent."));

    // Bad input: refused with the field named; nothing queued.
    for (form, says) in [
        (
            vec![("kind", "lost-on")],
            "Lost Mode needs a message or a phone number.",
        ),
        (
            vec![("kind", "lock"), ("phone", "call me <script>")],
            "Phone number on the screen: digits, spaces and + - ( ) . only.",
        ),
        (
            vec![("kind", "lock"), ("message", &*"x".repeat(201))],
            "Message on the screen: at most 200 characters",
        ),
        (vec![("kind", "Settings")], "That action is not known."),
    ] {
        let (st, page) = act(&app, &helpdesk, phone.udid(), &form).await;
        assert_eq!(st, 400, "{form:?}");
        assert!(page.contains(says), "{form:?}: {page}");
        // The answer is the device's page: its language switch links there,
        // not to the form's action (a GET there would be refused).
        assert!(
            page.contains(&format!(
                "href=\"/console/devices/{}?lang=ja\"",
                phone.udid()
            )),
            "{page}"
        );
    }
    assert!(
        commands(&app, phone.udid()).await.is_empty(),
        "nothing was sent"
    );

    // Lost Mode with a message: queued, and the page after says so.
    let r = app
        .http
        .post(app.admin_url(&format!("/console/devices/{}/actions", phone.udid())))
        .bearer_auth(&helpdesk)
        .form(&[("kind", "lost-on"), ("message", "Please return to IT, 3F")])
        .send()
        .await
        .unwrap();
    assert!(r.url().as_str().ends_with("?sent=1"), "{}", r.url());
    assert_eq!(commands(&app, phone.udid()).await, ["EnableLostMode"]);

    // Erasing needs the serial number typed: a wrong one sends nothing.
    let (st, page) = act(
        &app,
        &admin,
        phone.udid(),
        &[("kind", "erase"), ("confirm", "NOT-THE-SERIAL")],
    )
    .await;
    assert_eq!(st, 400);
    assert!(page.contains("The serial number typed does not match this device."));
    assert_eq!(commands(&app, phone.udid()).await, ["EnableLostMode"]);

    // A Mac's lock: its PIN shown this once, on the page that answers.
    let (st, page) = act(&app, &admin, mac.udid(), &[("kind", "lock")]).await;
    assert_eq!(st, 200, "{page}");
    let at = page.find("The Mac is locked with PIN ").expect("the PIN") + 27;
    let pin = &page[at..at + 6];
    assert!(pin.bytes().all(|b| b.is_ascii_digit()), "{pin}");
    let (_, again) = get(&app, &admin, &format!("/console/devices/{}", mac.udid())).await;
    assert!(
        !again.contains("locked with PIN"),
        "the PIN is not shown again"
    );
}

/// Signs `name` in through the console's forms with its password and a
/// TOTP code: the full session's cookie.
pub(crate) async fn console_session(app: &TestApp, name: &str, secret: &[u8]) -> String {
    console_session_at(app, name, secret, now_unix()).await
}

/// As [`console_session`], with the TOTP code of time `at` (a second
/// sign-in within the same 30 s needs the next code: each works once).
pub(crate) async fn console_session_at(
    app: &TestApp,
    name: &str,
    secret: &[u8],
    at: u64,
) -> String {
    let b = browser(app);
    let r = b
        .post(app.admin_url("/console/sign-in"))
        .form(&[("name", name), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = session_cookie(&r).unwrap();
    let page = b
        .get(app.admin_url("/console/second-factor"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let code = mamori_crypto::totp::totp_code(secret, at);
    let r = b
        .post(app.admin_url("/console/second-factor"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf_of(&page).as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    session_cookie(&r).expect("a full session")
}

#[tokio::test]
async fn an_erase_asks_for_a_step_up_on_the_page_then_is_sent() {
    // A step-up (and the sign-in, which counts as one) is good for 2 s.
    let app = spawn_with(|c| c.auth.step_up_window = time::Duration::seconds(2)).await;
    let phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let secret = totp_account(&app, "console-admin", Role::DeviceAdmin).await;
    let cookie = console_session(&app, "console-admin", &secret).await;
    let b = browser(&app);
    let device = format!("/console/devices/{}", phone.udid());
    let page = b
        .get(app.admin_url(&device))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&page);
    let post = |form: Vec<(&'static str, String)>| {
        b.post(app.admin_url(&format!("{device}/actions")))
            .header("cookie", &cookie)
            .header("accept-language", "en")
            .form(&form)
            .send()
    };
    let erase = |extra: Vec<(&'static str, String)>| {
        let mut form = vec![
            ("csrf", csrf.clone()),
            ("kind", "erase".to_owned()),
            ("confirm", phone.serial_number().to_owned()),
        ];
        form.extend(extra);
        form
    };

    // Signed in a while ago: the page asks who it is, inline.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let r = post(erase(vec![])).await.unwrap();
    assert_eq!(r.status(), 403);
    let page = r.text().await.unwrap();
    assert!(page.contains("id=\"step-up-form\""), "{page}");
    assert!(
        page.contains("name=\"confirm\" value=\""),
        "the action is carried"
    );

    // A wrong code: refused, nothing sent.
    let r = post(erase(vec![
        ("password", PASSWORD.to_owned()),
        ("code", "000000".to_owned()),
    ]))
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("The password, the code or the passkey was not accepted."));

    // The right password and a fresh code: the erase is sent with this
    // same request (no second step-up).
    let code = mamori_crypto::totp::totp_code(&secret, now_unix() + 30);
    let r = post(erase(vec![
        ("password", PASSWORD.to_owned()),
        ("code", code),
    ]))
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(commands(&app, phone.udid()).await, ["EraseDevice"]);
}

#[tokio::test]
async fn times_are_shown_in_the_organisations_time_zone() {
    let app = spawn_with(|c| c.time_zone = "America/New_York".into()).await;
    let phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let viewer = role_token(&app.running.services, "zone-viewer", "viewer").await;
    let (_, page) = get(&app, &viewer, &format!("/console/devices/{}", phone.udid())).await;
    let at = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(-5));
    let shown = format!(
        "{:04}-{:02}-{:02} {:02}:",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour()
    );
    // December: Eastern Standard Time (the test may straddle an hour).
    assert!(page.contains(" EST<") || page.contains(" EDT<"), "{page}");
    assert!(
        page.contains(&shown) || at.minute() == 59 || at.minute() == 0,
        "{shown} in {page}"
    );
}

/// A device's page shows its groups and commands; a located device's
/// position is shown only to a role that may read personal data (and the
/// read is recorded); taking it out of management asks for a step-up
/// and the serial number, and happens once.
#[tokio::test]
async fn a_device_page_shows_its_management_and_keeps_its_location_for_who_may_read_it() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let mut phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let udid = phone.udid().to_owned();
    let admin = role_token(s, "page-admin", "device_admin").await;
    let officer = role_token(s, "page-officer", "security_officer").await;

    let (st, g) = app
        .send(
            reqwest::Method::POST,
            "/api/v1/groups",
            Some(serde_json::json!({"name": "Field phones"})),
        )
        .await;
    assert_eq!(st, 201, "{g}");
    let gid = g["id"].as_str().unwrap().to_owned();
    let (st, _) = app
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/groups/{gid}/devices"),
            Some(serde_json::json!({"add": [udid]})),
        )
        .await;
    assert_eq!(st, 200);

    // Lost mode, then its location.
    let (st, body) = act(
        &app,
        &admin,
        &udid,
        &[("kind", "lost-on"), ("message", "Call IT")],
    )
    .await;
    assert_eq!(st, 200, "{body}");
    phone.run_queue().await.unwrap();
    let (st, _) = act(&app, &admin, &udid, &[("kind", "locate")]).await;
    assert_eq!(st, 200);
    phone.run_queue().await.unwrap();

    let device = format!("/console/devices/{udid}");
    let (st, page) = get(&app, &admin, &device).await;
    assert_eq!(st, 200);
    assert!(
        page.contains(&format!("href=\"/console/groups/{gid}\">Field phones<")),
        "{page}"
    );
    assert!(page.contains("id=\"device-person\"") || page.contains("Not assigned"));
    let link = page
        .split(&format!("href=\"{device}/commands/"))
        .find(|part| part.contains(">DeviceLocation<"))
        .map(|part| part.split('"').next().unwrap().to_owned())
        .expect("the location command is linked");
    let command = format!("{device}/commands/{link}");

    // The device administrator sees the answer, the position withheld.
    let (st, page) = get(&app, &admin, &command).await;
    assert_eq!(st, 200, "{page}");
    assert!(
        page.contains("id=\"command-state\">Acknowledged<"),
        "{page}"
    );
    let lat = page
        .split("data-key=\"Latitude\">")
        .nth(1)
        .expect("a latitude row");
    assert!(lat.starts_with("<span class=\"muted\">Withheld"), "{lat}");
    let before = app
        .audit_records()
        .await
        .iter()
        .filter(|r| r["action"] == "device.personal_read")
        .count();
    assert_eq!(before, 0);

    // The security officer sees it; the read is recorded first.
    let (st, page) = get(&app, &officer, &command).await;
    assert_eq!(st, 200, "{page}");
    let lat = page.split("data-key=\"Latitude\">").nth(1).unwrap();
    assert!(
        lat.chars().next().unwrap().is_ascii_digit() || lat.starts_with('-'),
        "{lat}"
    );
    let reads: Vec<_> = app
        .audit_records()
        .await
        .into_iter()
        .filter(|r| r["action"] == "device.personal_read")
        .collect();
    assert_eq!(reads.len(), 1);
    assert!(reads[0]["detail"]
        .as_str()
        .unwrap()
        .contains("result.Latitude"));

    // A command of another device, or none: not found.
    let (st, _) = get(
        &app,
        &admin,
        &format!("/console/devices/{udid}/commands/nope"),
    )
    .await;
    assert_eq!(st, 404);

    // Removing it from management: a token has no step-up, a wrong serial
    // changes nothing, a fresh session with the serial does it once.
    let (st, page) = act(
        &app,
        &admin,
        &udid,
        &[("kind", "unenroll"), ("confirm", phone.serial_number())],
    )
    .await;
    assert_eq!(st, 403);
    assert!(page.contains("id=\"step-up-form\""));
    let secret = totp_account(&app, "page-remover", Role::DeviceAdmin).await;
    let cookie = console_session(&app, "page-remover", &secret).await;
    let b = browser(&app);
    let page = b
        .get(app.admin_url(&device))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&page);
    let post = |confirm: &str| {
        b.post(app.admin_url(&format!("{device}/actions")))
            .header("cookie", &cookie)
            .header("accept-language", "en")
            .form(&[
                ("csrf", csrf.as_str()),
                ("kind", "unenroll"),
                ("confirm", confirm),
            ])
            .send()
    };
    let r = post("WRONG").await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(!commands(&app, &udid)
        .await
        .contains(&"RemoveProfile".to_owned()));
    let r = post(phone.serial_number()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("is being removed from management"));
    assert!(commands(&app, &udid)
        .await
        .contains(&"RemoveProfile".to_owned()));
    let r = post(phone.serial_number()).await.unwrap();
    assert_eq!(r.status(), 409, "once");
    assert!(app
        .audit_records()
        .await
        .iter()
        .any(|r| r["action"] == "device.offboard" && r["target"] == udid.as_str()));
}

/// The `name=value` of the cookie named `name` a response sets.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

/// A session that ends while a form is open: the form's post changes
/// nothing and goes to sign-in, and signing in again returns to the
/// form's page (never to another site).
#[tokio::test]
async fn a_session_that_ends_mid_form_returns_to_the_page_after_signing_in() {
    let app = spawn_app().await;
    let phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let key = totp_account(&app, "console-return", Role::Helpdesk).await;
    let cookie = console_session(&app, "console-return", &key).await;
    let b = browser(&app);
    let device = format!("/console/devices/{}", phone.udid());
    let page = b
        .get(app.admin_url(&device))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&page);
    // The session ends (signed out elsewhere, or expired).
    let r = b
        .post(app.admin_url("/console/sign-out"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // The lock form, posted now: nothing sent, to sign-in, and remembered.
    let r = b
        .post(app.admin_url(&format!("{device}/actions")))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("kind", "lock")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(crate::console::location(&r), "/console/sign-in");
    let next = set_cookie(&r, "__Host-mamori_next").expect("where to return");
    assert_eq!(
        next,
        format!("__Host-mamori_next=%2Fconsole%2Fdevices%2F{}", phone.udid())
    );
    assert!(
        commands(&app, phone.udid()).await.is_empty(),
        "nothing sent"
    );

    // Signed in again: the overview sends it back to the device's page,
    // once.
    let again = console_session_at(&app, "console-return", &key, now_unix() + 30).await;
    let r = b
        .get(app.admin_url("/console/"))
        .header("cookie", format!("{again}; {next}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(crate::console::location(&r), device);
    assert_eq!(
        set_cookie(&r, "__Host-mamori_next").as_deref(),
        Some("__Host-mamori_next="),
        "forgotten"
    );
    // A page asked for without a session comes back with its query.
    let r = b
        .get(app.admin_url("/console/devices?serial=ABC"))
        .send()
        .await
        .unwrap();
    assert_eq!(crate::console::location(&r), "/console/sign-in");
    assert_eq!(
        set_cookie(&r, "__Host-mamori_next").unwrap(),
        "__Host-mamori_next=%2Fconsole%2Fdevices%3Fserial%3DABC"
    );
    // A forged cookie pointing elsewhere is ignored.
    for forged in [
        "%2F%2Fevil.example%2F",
        "https%3A%2F%2Fevil.example%2F",
        "%2Fconsole%2F..%2F..%2Fx",
    ] {
        let r = b
            .get(app.admin_url("/console/"))
            .header("cookie", format!("{again}; __Host-mamori_next={forged}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{forged}");
    }
}

/// The device list filters by platform, group, compliance and last
/// check-in, each through the same use-cases as their own pages.
#[tokio::test]
async fn the_device_list_filters_by_platform_group_compliance_and_check_in() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let viewer = role_token(s, "filter-viewer", "viewer").await;
    let phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let mac = app.enrolled(DeviceKind::Mac, SimOptions::default()).await;
    let (_, g) = app
        .send(
            reqwest::Method::POST,
            "/api/v1/groups",
            Some(serde_json::json!({"name": "Macs"})),
        )
        .await;
    let gid = g["id"].as_str().unwrap().to_owned();
    app.send(
        reqwest::Method::POST,
        &format!("/api/v1/groups/{gid}/devices"),
        Some(serde_json::json!({"add": [mac.udid()]})),
    )
    .await;
    let (_, phones) = app
        .send(
            reqwest::Method::POST,
            "/api/v1/groups",
            Some(serde_json::json!({"name": "Phones", "rule": {"model": "iPhone"}})),
        )
        .await;
    let pid = phones["id"].as_str().unwrap().to_owned();
    let (st, _) = app
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/groups/{pid}/compliance"),
            Some(serde_json::json!({"min_os": {"iOS": "99.0"}})),
        )
        .await;
    assert!(st == 200 || st == 204, "{st}");

    let listed = |query: String| {
        let app = &app;
        let viewer = viewer.clone();
        async move {
            let (st, page) = get(app, &viewer, &format!("/console/devices?{query}")).await;
            (st, page)
        }
    };
    let shows = |page: &str, d: &str| page.contains(&format!("/console/devices/{d}\""));
    let (st, page) = listed("platform=macOS".into()).await;
    assert_eq!(st, 200);
    assert!(
        shows(&page, mac.udid()) && !shows(&page, phone.udid()),
        "{page}"
    );
    let (_, page) = listed(format!("group={gid}")).await;
    assert!(shows(&page, mac.udid()) && !shows(&page, phone.udid()));
    let (_, page) = listed("compliance=non_compliant".into()).await;
    assert!(
        shows(&page, phone.udid()) && !shows(&page, mac.udid()),
        "{page}"
    );
    let (_, page) = listed("compliance=compliant".into()).await;
    assert!(shows(&page, mac.udid()) && !shows(&page, phone.udid()));
    let (_, page) = listed("seen=1d".into()).await;
    assert!(shows(&page, mac.udid()) && shows(&page, phone.udid()));
    let (_, page) = listed("seen=not7d".into()).await;
    assert!(!shows(&page, mac.udid()) && !shows(&page, phone.udid()));
    let (st, _) = listed("group=no-such-group".into()).await;
    assert_eq!(st, 400);
}

/// A Mac's escrowed FileVault recovery key, in its SecurityInfo answer,
/// is shown by no command page and no API route.
#[tokio::test]
async fn a_security_info_answer_never_shows_the_escrowed_recovery_key() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let admin = role_token(s, "escrow-admin", "device_admin").await;
    let mut mac = app.enrolled(DeviceKind::Mac, SimOptions::default()).await;
    let (st, body) = app
        .send(
            reqwest::Method::POST,
            "/api/v1/commands?push=false",
            Some(serde_json::json!({"devices": [mac.udid()], "command": {"RequestType": "SecurityInfo"}})),
        )
        .await;
    assert!(st == 200 || st == 201, "{st} {body}");
    mac.run_queue().await.unwrap();
    let (_, list) = app
        .get(&format!("/api/v1/devices/{}/commands", mac.udid()))
        .await;
    let uuid = list["commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["request_type"] == "SecurityInfo")
        .and_then(|c| c["command_uuid"].as_str())
        .unwrap()
        .to_owned();
    let (st, page) = get(
        &app,
        &admin,
        &format!("/console/devices/{}/commands/{uuid}", mac.udid()),
    )
    .await;
    assert_eq!(st, 200, "{page}");
    assert!(page.contains("FDE_Enabled"), "{page}");
    assert!(!page.contains("FDE_PersonalRecoveryKeyCMS"), "{page}");
    let (_, status) = app.get(&format!("/api/v1/commands/{uuid}")).await;
    assert!(
        !status.to_string().contains("FDE_PersonalRecoveryKeyCMS"),
        "{status}"
    );
}

/// A group of a department tells whose devices are in it: a device's page
/// names it, and the list filters by it, only for a reader of personal
/// data.
#[tokio::test]
async fn a_departments_group_is_shown_only_to_readers_of_personal_data() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let viewer = role_token(s, "dept-viewer", "viewer").await;
    let officer = role_token(s, "dept-officer", "security_officer").await;
    let phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let (_, p) = app
        .send(
            reqwest::Method::POST,
            "/api/v1/people",
            Some(serde_json::json!({"name": "Sales Person", "user_id": "sp", "email": "sp@example.jp", "department": "Sales"})),
        )
        .await;
    let person = p["id"].as_str().unwrap().to_owned();
    app.send(
        reqwest::Method::PUT,
        &format!("/api/v1/devices/{}/person", phone.udid()),
        Some(serde_json::json!({"person_id": person})),
    )
    .await;
    let (_, g) = app
        .send(
            reqwest::Method::POST,
            "/api/v1/groups",
            Some(serde_json::json!({"name": "Sales team", "rule": {"department": "Sales"}})),
        )
        .await;
    let gid = g["id"].as_str().unwrap().to_owned();
    let device = format!("/console/devices/{}", phone.udid());
    let (_, page) = get(&app, &officer, &device).await;
    assert!(page.contains(">Sales team<"), "the officer sees it: {page}");
    let (_, page) = get(&app, &viewer, &device).await;
    assert!(!page.contains("Sales team"), "{page}");
    let (st, page) = get(&app, &viewer, &format!("/console/devices?group={gid}")).await;
    assert_eq!(st, 400);
    assert!(page.contains("personal_data_read"), "{page}");
    let (st, page) = get(&app, &officer, &format!("/console/devices?group={gid}")).await;
    assert_eq!(st, 200);
    assert!(page.contains(phone.udid()), "{page}");
}
