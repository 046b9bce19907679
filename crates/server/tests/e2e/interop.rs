//! Interoperability with clients this project did not write: micromdm's
//! `scepclient` (Debian package `scep`) and OpenSSL-made Mdm-Signatures
//! (SHA-1 and SHA-256, as old and new Apple clients send them).

use crate::common::{spawn_app, TestApp};
use base64::Engine;
use mamori_sim::{DeviceKind, SimOptions};
use serde_json::json;
use std::process::Command;

fn challenge_of(profile: &[u8]) -> String {
    mamori_sim::DeviceProfile::parse(profile)
        .unwrap()
        .scep_challenge
        .unwrap()
}

/// Runs scepclient off the async runtime's threads.
async fn scepclient(
    app: &TestApp,
    dir: &std::path::Path,
    challenge: Option<&str>,
) -> std::process::Output {
    let app_dir = app.dir.path().to_path_buf();
    let url = app.device_url("/scep");
    let dir = dir.to_path_buf();
    let challenge = challenge.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        scepclient_blocking(&app_dir, &url, &dir, challenge.as_deref())
    })
    .await
    .unwrap()
}

fn scepclient_blocking(
    app_dir: &std::path::Path,
    url: &str,
    dir: &std::path::Path,
    challenge: Option<&str>,
) -> std::process::Output {
    let ca = app_dir.join("data/tls-ca.pem");
    let mut cmd = Command::new("scepclient");
    cmd.env("SSL_CERT_FILE", ca)
        .arg("-server-url")
        .arg(url)
        .arg("-private-key")
        .arg(dir.join("key.pem"))
        .arg("-certificate")
        .arg(dir.join("client.pem"))
        .arg("-cn")
        .arg("interop-device");
    if let Some(c) = challenge {
        cmd.arg("-challenge").arg(c);
    }
    cmd.output()
        .expect("scepclient is installed by scripts/test.sh")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scepclient_enrolls_renews_and_is_refused_a_spent_challenge() {
    let app = spawn_app().await;
    let profile = app.profile(json!({"signed": false})).await;
    let challenge = challenge_of(&profile);

    let first = tempfile::tempdir().unwrap();
    let out = scepclient(&app, first.path(), Some(&challenge)).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let pem = std::fs::read_to_string(first.path().join("client.pem")).unwrap();
    let der = mamori::keys::pem_certs(&pem).unwrap().remove(0);
    let now = time::OffsetDateTime::now_utc();
    let parsed = app
        .running
        .services
        .pki
        .device_ca
        .verify_issued(&der, now)
        .unwrap();
    assert_eq!(parsed.subject_cn.as_deref(), Some("interop-device"));
    let rec = app
        .running
        .services
        .store
        .certificate(&parsed.fingerprint_sha256_hex)
        .await
        .unwrap();
    assert!(rec.is_some(), "issued certificates are recorded");

    // Existing certificate: scepclient sends a RenewalReq signed with it.
    // Refused while the certificate is bound to no enrollment (a renewal
    // spends no challenge); accepted once a device Authenticated with it.
    let out = scepclient(&app, first.path(), None).await;
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(first.path().join("client.pem")).unwrap(),
        pem
    );
    let device = mamori_domain::DeviceKey::parse("INTEROP-DEVICE").unwrap();
    app.running
        .services
        .store
        .bind_certificate(&parsed.fingerprint_sha256_hex, &device)
        .await
        .unwrap();
    let out = scepclient(&app, first.path(), None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let renewed = std::fs::read_to_string(first.path().join("client.pem")).unwrap();
    assert_ne!(renewed, pem);

    // The single-use challenge is spent.
    let second = tempfile::tempdir().unwrap();
    let out = scepclient(&app, second.path(), Some(&challenge)).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("badRequest"));
    assert!(!second.path().join("client.pem").exists());
}

fn openssl_sign(dir: &std::path::Path, body: &[u8], md: &str, no_attr: bool) -> String {
    std::fs::write(dir.join("body"), body).unwrap();
    let mut cmd = Command::new("openssl");
    cmd.args(["cms", "-sign", "-binary", "-outform", "DER", "-md", md])
        .arg("-signer")
        .arg(dir.join("cert.pem"))
        .arg("-inkey")
        .arg(dir.join("key.pem"))
        .arg("-in")
        .arg(dir.join("body"))
        .arg("-out")
        .arg(dir.join("sig.der"));
    if no_attr {
        cmd.arg("-noattr");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(dir.join("sig.der")).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_made_mdm_signatures_with_sha1_and_sha256_are_accepted() {
    let app = spawn_app().await;
    let dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let udid = dev.udid().to_owned();
    let creds = dev.credentials().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cert.pem"),
        mamori::keys::cert_pem(&creds.cert_der),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("key.pem"),
        creds.key.to_pkcs8_pem().as_bytes(),
    )
    .unwrap();
    let q = app
        .enqueue(&[&udid], json!({"RequestType": "ProfileList"}))
        .await;
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>\
         <key>Status</key><string>Idle</string><key>UDID</key><string>{udid}</string>\
         </dict></plist>"
    );
    for (md, no_attr) in [("sha1", false), ("sha256", false), ("sha1", true)] {
        let sig = openssl_sign(dir.path(), body.as_bytes(), md, no_attr);
        // No Content-Type at all, as some clients send.
        let r = app
            .http
            .put(app.device_url("/mdm/connect"))
            .header("Mdm-Signature", sig.clone())
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{md} noattr={no_attr}");
        let cmd =
            plist::Value::from_reader(std::io::Cursor::new(r.bytes().await.unwrap())).unwrap();
        assert_eq!(
            cmd.as_dictionary().unwrap()["CommandUUID"].as_string(),
            Some(q[0].1.as_str())
        );
        // The same signature over a changed body is refused.
        let tampered = body.replace("<dict>", "<dict> ");
        let r = app
            .http
            .put(app.device_url("/mdm/connect"))
            .header("Mdm-Signature", sig)
            .body(tampered)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
}

/// Some SCEP clients POST the PKIOperation message base64-encoded rather
/// than binary; both reach the same answer (here: a refusal CertRep for an
/// unknown challenge, which proves the message was read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scep_post_accepts_binary_and_base64_bodies() {
    use mamori_crypto::certs::self_signed_cert;
    use mamori_crypto::{DigestAlg, RsaPrivateKey};
    use mamori_protocol::cms::ContentEncryptionAlg;
    use mamori_protocol::scep::{build_pki_request, parse_cert_rep, CertRepOutcome, MessageType};
    let app = spawn_app().await;
    let r = app
        .http
        .get(app.device_url("/scep?operation=GetCACert"))
        .send()
        .await
        .unwrap();
    let certs = mamori_protocol::cms::certs_from_degenerate(&r.bytes().await.unwrap()).unwrap();
    let ra = certs[0].clone();
    let key = RsaPrivateKey::generate_2048().unwrap();
    let signer = self_signed_cert(&key, "client").unwrap();
    let csr = mamori_protocol::csr::build_csr(&key, "client", Some("not-a-challenge")).unwrap();
    let msg = build_pki_request(
        MessageType::PkcsReq,
        &csr,
        &signer,
        &key,
        &ra,
        ContentEncryptionAlg::Aes128Cbc,
        DigestAlg::Sha256,
        "TX1",
    )
    .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&msg);
    for body in [msg.clone(), b64.into_bytes()] {
        let r = app
            .http
            .post(app.device_url("/scep?operation=PKIOperation"))
            .header("content-type", "application/x-pki-message")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let rep = parse_cert_rep(&r.bytes().await.unwrap(), &signer, &key).unwrap();
        assert!(matches!(rep, CertRepOutcome::Failure { .. }), "{rep:?}");
    }
}
