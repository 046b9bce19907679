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
