//! Settings in the console, without a browser: the checklist of what a
//! real device needs reads this server's own settings; a push certificate
//! is installed from the page, renewed with the same topic, and one for
//! another topic is refused (the enrolled devices would be cut off).

use crate::common::{role_token, spawn_app, TestApp};
use mamori_testkit::apns::{new_topic, Ca};

async fn page(app: &TestApp, token: &str) -> (u16, String) {
    let r = app
        .http
        .get(app.admin_url("/console/settings"))
        .bearer_auth(token)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn install(app: &TestApp, cert: &str, key: &str) -> (u16, String) {
    let r = app
        .http
        .post(app.admin_url("/console/settings/push-certificate"))
        .bearer_auth(&app.token)
        .header("accept-language", "en")
        .form(&[("certificate", cert), ("key", key)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The state a checklist item shows (`ok`, `warn`, `fail`).
fn check(page: &str, id: &str) -> String {
    let at = page.find(&format!("id=\"{id}\" data-check=\"")).expect(id) + id.len() + 18;
    page[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_checklist_reads_the_settings_and_a_renewal_keeps_the_topic() {
    let app = spawn_app().await;
    let (st, settings) = page(&app, &app.token).await;
    assert_eq!(st, 200);
    // The test server: a loopback public URL, its generated certificate,
    // no push certificate; passkeys work at https://localhost.
    assert_eq!(check(&settings, "ready-public-url"), "fail", "{settings}");
    assert_eq!(check(&settings, "ready-tls"), "warn");
    assert_eq!(check(&settings, "ready-push"), "fail");
    assert_eq!(check(&settings, "ready-passkeys"), "ok");
    assert!(settings.contains("Start the server with --public-url"));

    let apple = Ca::new("Test Apple CA");
    let topic = new_topic();
    let (cert, key) = apple.push_cert(Some(&topic));
    let (st, _) = install(&app, &cert, &key).await;
    assert_eq!(st, 200, "followed to the settings page");
    let (_, settings) = page(&app, &app.token).await;
    assert!(settings.contains(&topic), "{settings}");
    assert_eq!(check(&settings, "ready-push"), "ok");

    // A renewal (new key, same topic) is taken; another topic is not.
    let (renewed, renewed_key) = apple.push_cert(Some(&topic));
    assert_eq!(install(&app, &renewed, &renewed_key).await.0, 200);
    let other = new_topic();
    let (cert, key) = apple.push_cert(Some(&other));
    let (st, body) = install(&app, &cert, &key).await;
    assert_eq!(st, 400);
    assert!(body.contains("renew the installed certificate"), "{body}");
    assert_eq!(app.running.services.push_topic(), Some(topic));
    // A key that is not the certificate's: refused, next to the form.
    let (cert, _) = apple.push_cert(Some(&new_topic()));
    let (st, body) = install(&app, &cert, &renewed_key).await;
    assert_eq!(st, 400);
    assert!(body.contains("id=\"push-error\""));

    // The command line checks the stored certificate too (its own server
    // has none in memory): another topic is refused there as well.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = apple.push_cert(Some(&new_topic()));
    std::fs::write(dir.path().join("c.pem"), cert).unwrap();
    std::fs::write(dir.path().join("k.pem"), key).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mamori"))
        .args(["push-cert", "install", "--data-dir"])
        .arg(app.dir.path().join("data"))
        .arg("--cert")
        .arg(dir.path().join("c.pem"))
        .arg("--key")
        .arg(dir.path().join("k.pem"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("renew the installed certificate"), "{err}");

    // Settings are the owner's.
    let device_admin = role_token(&app.running.services, "settings-admin", "device_admin").await;
    assert_eq!(page(&app, &device_admin).await.0, 403);
}

/// A push certificate made from a request made here: the key never leaves
/// the server, the certificate is installed without it, and then the
/// pending key is gone.
#[tokio::test]
async fn a_push_certificate_is_requested_here_and_installed_without_its_key() {
    let app = spawn_app().await;
    // Without a request made here, a certificate without a key is refused.
    let apple = Ca::new("Test Apple CA");
    let topic = new_topic();
    let (stray, _) = apple.push_cert(Some(&topic));
    let (st, body) = install(&app, &stray, "").await;
    assert_eq!(st, 400);
    assert!(
        body.contains("no certificate signing request made here"),
        "{body}"
    );

    let r = app
        .http
        .post(app.admin_url("/console/settings/push-request"))
        .bearer_auth(&app.token)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body = r.text().await.unwrap();
    let start = body
        .find("-----BEGIN CERTIFICATE REQUEST-----")
        .expect("the request");
    let end = body.find("-----END CERTIFICATE REQUEST-----").unwrap() + 33;
    let csr = body[start..end].to_owned();
    assert!(body.contains("download=\"mamori-push.csr\""));
    assert!(!body.contains("PRIVATE KEY"), "the key stays on the server");
    let (_, settings) = page(&app, &app.token).await;
    assert!(settings.contains("id=\"push-pending\""));
    // The same request can be copied or downloaded again until its
    // certificate is installed (it was lost once, and a new one would
    // replace the key Apple is signing for).
    assert!(settings.contains(&csr), "the request shown again");
    assert!(settings.contains("download=\"mamori-push.csr\""));
    assert!(!settings.contains("<details open"), "closed when not new");
    // A second press does not silently replace the pending key.
    let r = app
        .http
        .post(app.admin_url("/console/settings/push-request"))
        .bearer_auth(&app.token)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("id=\"push-replace\""));

    // Apple's certificate for that request, installed without a key.
    let cert = apple.push_cert_for_request(&csr, &topic);
    let (st, body) = install(&app, &cert, "").await;
    assert_eq!(st, 200, "{body}");
    let (_, settings) = page(&app, &app.token).await;
    assert!(settings.contains(&topic), "{settings}");
    assert!(
        !settings.contains("id=\"push-pending\""),
        "the pending key is gone"
    );
    let audit = app.audit_records().await;
    assert!(audit
        .iter()
        .any(|r| r["action"] == "settings.push_certificate"
            && r["detail"]
                .as_str()
                .unwrap_or("")
                .contains("certificate signing request made")));
}
