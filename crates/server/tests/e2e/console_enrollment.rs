//! Enrollment in the console, without a browser: a link shown once with
//! its QR code enrolls a device, the links still usable are listed, a
//! revoked link downloads nothing, bad numbers are refused with nothing
//! made, and a role without enrollment rights gets a page saying so.

use crate::common::{role_token, spawn_app, TestApp};
use mamori_sim::{DeviceKind, SimDevice, SimOptions};

async fn post(app: &TestApp, token: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let r = app
        .http
        .post(app.admin_url(path))
        .bearer_auth(token)
        .header("accept-language", "en")
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The download address a page shows once.
fn link_in(page: &str) -> String {
    let at = page.find("id=\"new-link-url\">").expect("the new link") + 18;
    page[at..].split('<').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_link_made_in_the_console_enrolls_a_device_and_can_be_revoked() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let admin = role_token(s, "enroll-admin", "device_admin").await;
    let viewer = role_token(s, "enroll-viewer", "viewer").await;

    let (st, page) = post(
        &app,
        &admin,
        "/console/enrollment/links",
        &[("uses", "1"), ("hours", "24")],
    )
    .await;
    assert_eq!(st, 201, "{page}");
    assert!(page.contains("id=\"new-link-qr\" src=\"data:image/svg+xml;base64,"));
    let url = link_in(&page);
    assert!(
        url.starts_with(&format!("{}/enroll/", app.running.public_url)),
        "{url}"
    );

    // The device's user opens it: the profile enrolls the phone.
    let r = app.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let profile = r.bytes().await.unwrap().to_vec();
    let mut phone = SimDevice::new(DeviceKind::IPhone, SimOptions::default());
    phone.enroll(&profile, Some(&app.tls_ca_pem)).await.unwrap();
    let (_, listed) = app.get("/api/v1/devices").await;
    assert_eq!(listed["devices"].as_array().unwrap().len(), 1);

    // Spent: no longer listed, and the page never shows a URL again.
    let r = app
        .http
        .get(app.admin_url("/console/enrollment"))
        .bearer_auth(&admin)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    let page = r.text().await.unwrap();
    assert!(page.contains("No link is usable now."), "{page}");
    assert!(!page.contains("/enroll/"));

    // A second link, revoked: it downloads nothing more.
    let (_, page) = post(
        &app,
        &admin,
        "/console/enrollment/links",
        &[("uses", "5"), ("hours", "1")],
    )
    .await;
    let url = link_in(&page);
    let at = page.find("data-link=\"").unwrap() + 11;
    let id = page[at..].split('"').next().unwrap().to_owned();
    let r = app
        .http
        .post(app.admin_url(&format!("/console/enrollment/links/{id}/revoke")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert!(r.url().as_str().ends_with("/console/enrollment?revoked=1"));
    assert_eq!(app.http.get(&url).send().await.unwrap().status(), 404);
    let (st, _) = post(
        &app,
        &admin,
        &format!("/console/enrollment/links/{id}/revoke"),
        &[],
    )
    .await;
    assert_eq!(st, 404, "revoked once");
    assert!(app
        .audit_records()
        .await
        .iter()
        .any(|r| r["action"] == "enrollment.link_revoke" && r["target"] == id.as_str()));

    // Bad numbers: refused, nothing made.
    for (uses, hours, says) in [
        ("0", "24", "Not made:"),
        ("x", "24", "Downloads allowed must be a whole number"),
        ("1", "99999", "Not made:"),
    ] {
        let (st, page) = post(
            &app,
            &admin,
            "/console/enrollment/links",
            &[("uses", uses), ("hours", hours)],
        )
        .await;
        assert_eq!(st, 400, "{uses} {hours}");
        assert!(page.contains(says), "{uses} {hours}: {page}");
        assert!(!page.contains("id=\"new-link-url\""));
    }

    // A profile file, downloaded from the page.
    let r = app
        .http
        .post(app.admin_url("/console/enrollment/profile"))
        .bearer_auth(&admin)
        .form(&[("uses", "1"), ("hours", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/x-apple-aspen-config"
    );

    // A viewer may not enroll devices.
    let r = app
        .http
        .get(app.admin_url("/console/enrollment"))
        .bearer_auth(&viewer)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Your role cannot open this page."));
}
