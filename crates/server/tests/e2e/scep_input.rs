//! SCEP requests built to break the server's bookkeeping or its log: a
//! transactionID the CertRep cannot echo, and one that forges log lines.

use crate::common::{capture_log, spawn_app, TestApp};
use mamori_crypto::certs::self_signed_cert;
use mamori_crypto::{DigestAlg, RsaPrivateKey};
use mamori_protocol::cms::ContentEncryptionAlg;
use mamori_protocol::scep::{build_pki_request, MessageType};
use mamori_sim::{DeviceKind, DeviceProfile, SimDevice, SimOptions};
use serde_json::json;

/// The RA certificate (GetCACert lists it first).
async fn ra_cert(app: &TestApp) -> Vec<u8> {
    let r = app
        .http
        .get(app.device_url("/scep?operation=GetCACert"))
        .send()
        .await
        .unwrap();
    let certs = mamori_protocol::cms::certs_from_degenerate(&r.bytes().await.unwrap()).unwrap();
    certs[0].clone()
}

/// A PKCSReq for `challenge` with `transaction_id` (sent as a UTF8String
/// when it is not a PrintableString).
async fn pkcs_req(app: &TestApp, challenge: &str, transaction_id: &str) -> Vec<u8> {
    let ra = ra_cert(app).await;
    let key = RsaPrivateKey::generate_2048().unwrap();
    let signer = self_signed_cert(&key, "client").unwrap();
    let csr = mamori_protocol::csr::build_csr(&key, "client", Some(challenge)).unwrap();
    build_pki_request(
        MessageType::PkcsReq,
        &csr,
        &signer,
        &key,
        &ra,
        ContentEncryptionAlg::Aes128Cbc,
        DigestAlg::Sha256,
        transaction_id,
    )
    .unwrap()
}

async fn post_pki(app: &TestApp, msg: Vec<u8>) -> (u16, String) {
    let r = app
        .http
        .post(app.device_url("/scep?operation=PKIOperation"))
        .header("content-type", "application/x-pki-message")
        .body(msg)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (
        status,
        String::from_utf8_lossy(&r.bytes().await.unwrap()).into_owned(),
    )
}

/// (certificates recorded, challenge uses spent over all profiles).
fn issued_and_spent(app: &TestApp) -> (i64, i64) {
    let c = rusqlite::Connection::open(app.dir.path().join("data").join("mamori.db")).unwrap();
    let certs = c
        .query_row("SELECT COUNT(*) FROM device_certificates", [], |r| r.get(0))
        .unwrap();
    let uses = c
        .query_row(
            "SELECT COALESCE(SUM(uses), 0) FROM enrollment_profiles",
            [],
            |r| r.get(0),
        )
        .unwrap();
    (certs, uses)
}

/// A transactionID that is not a PrintableString used to be found out only
/// when the CertRep was built: after the certificate was recorded and the
/// challenge use spent, answered with a 500 and no audit record. It is now
/// a 400 before anything happens, recorded as a refused device request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_id_the_reply_cannot_echo_changes_nothing() {
    let app = spawn_app().await;
    let profile = app.profile(json!({"max_uses": 1})).await;
    let challenge = DeviceProfile::parse(&profile)
        .unwrap()
        .scep_challenge
        .unwrap();
    assert_eq!(issued_and_spent(&app), (0, 0));

    for tid in ["TX_1", "tx@example.com", "トランザクション"] {
        let (status, body) = post_pki(&app, pkcs_req(&app, &challenge, tid).await).await;
        assert_eq!(status, 400, "{tid}: {body}");
        assert!(body.contains("malformed SCEP message"), "{body}");
        assert_eq!(issued_and_spent(&app), (0, 0), "{tid}: nothing recorded");
    }
    let audit = app.audit_records().await;
    assert!(!audit
        .iter()
        .any(|r| r["action"] == "device.certificate_issue"));
    assert!(
        audit.iter().any(|r| r["action"] == "device.rejected"
            && r["detail"].as_str().unwrap_or("").starts_with("scep:")),
        "{audit:?}"
    );

    // The single use is still there: a device enrolls with the profile.
    let mut dev = SimDevice::new(DeviceKind::IPhone, SimOptions::default());
    dev.enroll(&profile, Some(&app.tls_ca_pem)).await.unwrap();
    assert_eq!(issued_and_spent(&app), (1, 1));
    let issued: Vec<_> = app
        .audit_records()
        .await
        .into_iter()
        .filter(|r| r["action"] == "device.certificate_issue")
        .collect();
    assert_eq!(issued.len(), 1, "one issuance, one record");
    // And it is spent now: the next request gets a SCEP refusal, no issuance.
    let (status, _) = post_pki(&app, pkcs_req(&app, &challenge, "TX2").await).await;
    assert_eq!(status, 200, "a failure CertRep");
    assert_eq!(issued_and_spent(&app), (1, 1));
}

/// A transactionID carrying a newline and a fake log line (with ANSI
/// escapes) used to reach the text log raw, forging an INFO line. The
/// server's own log output (the text formatter `mamori serve` uses,
/// without colours) is captured: the value appears escaped, on the
/// server's line.
///
/// Current-thread runtime: the server's tasks run on this thread, so a
/// thread-local subscriber sees their events and no other test's.
#[tokio::test]
async fn a_forged_transaction_id_does_not_forge_log_lines() {
    let (capture, _log) = capture_log(tracing::Level::INFO);

    let app = spawn_app().await;
    let forged = "x\n2026-12-06T00:00:00.000000Z  INFO mamori_core::device::checkin: \
                  device authenticated device=FORGED-LOG-LINE\u{1b}[2K\r";
    // A wrong challenge: before the fix the request was refused with a
    // CertRep, logging the transactionID raw on the way.
    let (status, _) = post_pki(&app, pkcs_req(&app, "not-a-challenge", forged).await).await;
    assert_eq!(status, 400);
    // The SCEP operation name from the query string, too.
    let r = app
        .http
        .get(app.device_url(
            "/scep?operation=x%0A2026-12-06T00:00:00Z%20%20INFO%20FORGED-OPERATION%1b%5b2K",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let log = capture.text();
    for line in log.lines() {
        if line.contains("FORGED") {
            assert!(
                line.contains("WARN") && line.contains("SCEP"),
                "a line the server did not write: {line:?}\n{log}"
            );
        }
    }
    assert!(!log.contains('\u{1b}'), "raw escape in the log: {log:?}");
    assert!(
        !log.contains('\r'),
        "raw carriage return in the log: {log:?}"
    );
    assert!(log.contains("SCEP message refused"), "{log}");
    assert!(
        log.contains(r"transaction=x\n2026-12-06T00:00:00.000000Z  INFO"),
        "{log}"
    );
    assert!(log.contains(r"device=FORGED-LOG-LINE\u{1b}[2K\r"), "{log}");
    assert!(
        log.contains(r"operation=x\n2026-12-06T00:00:00Z  INFO FORGED-OPERATION\u{1b}[2K"),
        "{log}"
    );
}

/// The same for check-in: an enrolled device names a message type that is
/// a forged log line; the server's warning shows it escaped, on one line.
#[tokio::test]
async fn a_forged_check_in_message_type_does_not_forge_log_lines() {
    let (capture, _log) = capture_log(tracing::Level::INFO);

    let app = spawn_app().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let forged = "x\n2026-12-06T00:00:00.000000Z  INFO mamori_core::device::checkin: \
                  device authenticated device=FORGED-LOG-LINE\u{1b}[2K\r";
    let mut msg = plist::Dictionary::new();
    msg.insert("MessageType".into(), forged.into());
    msg.insert("UDID".into(), dev.udid().to_owned().into());
    let mut body = Vec::new();
    plist::to_writer_xml(&mut body, &plist::Value::Dictionary(msg)).unwrap();
    let r = dev.checkin_raw(body, None).await.unwrap();
    assert_eq!(r.status, 400);

    let log = capture.text();
    for line in log.lines() {
        if line.contains("FORGED") {
            assert!(
                line.contains("WARN") && line.contains("unsupported check-in message type"),
                "a line the server did not write: {line:?}\n{log}"
            );
        }
    }
    assert!(!log.contains('\u{1b}'), "raw escape in the log: {log:?}");
    // The newline stays (escaped); the escape and the carriage return
    // were replaced as the message was decoded (U+FFFD, as the console
    // would show them).
    assert!(log.contains("x\\n2026"), "{log}");
    assert!(
        log.contains("device=FORGED-LOG-LINE\u{fffd}[2K\u{fffd}"),
        "{log}"
    );
}
