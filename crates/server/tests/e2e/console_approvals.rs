//! Approvals in the console, without a browser: the one who asked cannot
//! approve, a stale session proves itself on the page, and the approval
//! carries the action out. (Two administrators in a real browser:
//! `browser.rs`.)

use crate::common::spawn_with;
use crate::console::{browser, csrf_of, location, now_unix, totp_account, PASSWORD};
use crate::console_devices::console_session;
use mamori_domain::Role;
use mamori_sim::{DeviceKind, SimOptions};

#[tokio::test]
async fn an_erase_waits_for_someone_else_who_proves_who_they_are() {
    let app = spawn_with(|c| {
        c.erase_approval_threshold = 0;
        c.auth.step_up_window = time::Duration::seconds(2);
    })
    .await;
    let phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let asker_key = totp_account(&app, "console-asker", Role::DeviceAdmin).await;
    let decider_key = totp_account(&app, "console-decider", Role::DeviceAdmin).await;
    let b = browser(&app);
    let get = |cookie: String, path: String| {
        let b = b.clone();
        let url = app.admin_url(&path);
        async move {
            b.get(url)
                .header("cookie", cookie)
                .header("accept-language", "en")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };

    // The asker erases; the console says it waits.
    let asker = console_session(&app, "console-asker", &asker_key).await;
    let device = format!("/console/devices/{}", phone.udid());
    let csrf = csrf_of(&get(asker.clone(), device.clone()).await);
    let r = b
        .post(app.admin_url(&format!("{device}/actions")))
        .header("cookie", &asker)
        .header("accept-language", "en")
        .form(&[
            ("csrf", csrf.as_str()),
            ("kind", "erase"),
            ("confirm", phone.serial_number()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("A second administrator must approve this"));
    let decider = console_session(&app, "console-decider", &decider_key).await;
    let page = get(decider.clone(), "/console/approvals".into()).await;
    let at = page
        .find("data-approval=\"")
        .expect("the request is listed")
        + 15;
    let id = page[at..].split('"').next().unwrap().to_owned();
    assert!(page.contains("console-asker"), "it names who asked");
    let decider_csrf = csrf_of(&page);

    // The asker cannot approve their own request.
    let page = get(asker.clone(), "/console/approvals".into()).await;
    let r = b
        .post(app.admin_url(&format!("/console/approvals/{id}/approve")))
        .header("cookie", &asker)
        .header("accept-language", "en")
        .form(&[("csrf", csrf_of(&page).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("Not decided:"));

    // Someone else, signed in a while ago: asked to prove it on the page,
    // then the one request both proves and approves.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let csrf = decider_csrf;
    let approve = |form: Vec<(&'static str, String)>| {
        b.post(app.admin_url(&format!("/console/approvals/{id}/approve")))
            .header("cookie", &decider)
            .header("accept-language", "en")
            .form(&form)
            .send()
    };
    let r = approve(vec![("csrf", csrf.clone())]).await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("id=\"step-up-form\""));
    let code = mamori_crypto::totp::totp_code(&decider_key, now_unix() + 30);
    let r = approve(vec![
        ("csrf", csrf),
        ("password", PASSWORD.to_owned()),
        ("code", code),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/console/approvals?done=approved");
    let (_, cmds) = app
        .get(&format!("/api/v1/devices/{}/commands", phone.udid()))
        .await;
    assert_eq!(cmds["commands"][0]["request_type"], "EraseDevice", "{cmds}");
}
