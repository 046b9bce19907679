//! Enrollment over SCEP and check-in, with both identity transports.

use crate::common::spawn_app;
use mamori_sim::{
    ContentEncryptionAlg, DeviceKind, DigestAlg, Identity, ScepMethod, SimDevice, SimOptions,
};
use serde_json::json;

fn opts(identity: Identity) -> SimOptions {
    SimOptions {
        identity: Some(identity),
        ..SimOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_enrolls_with_mdm_signature_and_returns_device_information() {
    let app = spawn_app().await;
    let mut dev = app
        .enrolled(
            DeviceKind::IPhone,
            opts(Identity::MdmSignature {
                digest: DigestAlg::Sha256,
            }),
        )
        .await;
    let udid = dev.udid().to_owned();

    let (status, d) = app.get(&format!("/api/v1/devices/{udid}")).await;
    assert_eq!(status, 200);
    assert_eq!(d["status"], "enrolled");
    assert_eq!(d["push_ready"], true);
    assert_eq!(d["has_unlock_token"], true);

    let queued = app
        .enqueue(
            &[&udid],
            json!({"RequestType": "DeviceInformation",
                   "Queries": ["DeviceName", "OSVersion", "SerialNumber", "ModelName"]}),
        )
        .await;
    assert_eq!(queued.len(), 1);
    let uuid = &queued[0].1;
    assert_eq!(app.command(uuid).await["status"], "Queued");

    let answered = dev.run_queue().await.unwrap();
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].command_uuid, *uuid);

    let cmd = app.command(uuid).await;
    assert_eq!(cmd["status"], "Acknowledged");
    assert_eq!(cmd["request_type"], "DeviceInformation");
    assert_eq!(cmd["devices"][0]["udid"], udid.as_str());
    let responses = &cmd["result"]["QueryResponses"];
    assert_eq!(responses["SerialNumber"], dev.serial_number());
    assert!(responses["OSVersion"].is_string());

    // Inventory follows the result.
    let (_, d) = app.get(&format!("/api/v1/devices/{udid}")).await;
    assert_eq!(d["serial_number"], dev.serial_number());
    assert_eq!(d["device_information"]["OSVersion"], responses["OSVersion"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_enrolls_with_mtls_from_an_unsigned_profile() {
    let app = spawn_app().await;
    let profile = app.profile(json!({"signed": false})).await;
    assert!(
        profile.starts_with(b"<?xml"),
        "unsigned profile is a plain plist"
    );
    let mut dev = SimDevice::new(
        DeviceKind::Mac,
        SimOptions {
            identity: Some(Identity::Mtls),
            scep_method: ScepMethod::Get,
            content_alg: ContentEncryptionAlg::DesEde3Cbc,
            ..SimOptions::default()
        },
    );
    // The profile carries the TLS CA as a root payload: no CA given here.
    dev.enroll(&profile, None).await.unwrap();
    let udid = dev.udid().to_owned();
    let queued = app
        .enqueue(&[&udid], json!({"RequestType": "SecurityInfo"}))
        .await;
    dev.run_queue().await.unwrap();
    let cmd = app.command(&queued[0].1).await;
    assert_eq!(cmd["status"], "Acknowledged");
    let (_, d) = app.get(&format!("/api/v1/devices/{udid}")).await;
    assert!(d["security_info"].is_object(), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scep_cipher_clients_use_is_accepted() {
    let app = spawn_app().await;
    for alg in [
        ContentEncryptionAlg::DesCbc,
        ContentEncryptionAlg::DesEde3Cbc,
        ContentEncryptionAlg::Aes128Cbc,
        ContentEncryptionAlg::Aes256Cbc,
    ] {
        let profile = app.profile(json!({})).await;
        let mut dev = SimDevice::new(
            DeviceKind::IPhone,
            SimOptions {
                content_alg: alg,
                ..SimOptions::default()
            },
        );
        dev.enroll(&profile, Some(&app.tls_ca_pem))
            .await
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
    }
    let (_, list) = app.get("/api/v1/devices").await;
    assert_eq!(list["devices"].as_array().unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenge_is_limited_in_uses() {
    let app = spawn_app().await;
    let profile = app.profile(json!({"max_uses": 2})).await;
    for _ in 0..2 {
        let mut dev = SimDevice::new(DeviceKind::IPhone, SimOptions::default());
        dev.enroll(&profile, Some(&app.tls_ca_pem)).await.unwrap();
    }
    let mut third = SimDevice::new(DeviceKind::IPhone, SimOptions::default());
    let err = third
        .enroll(&profile, Some(&app.tls_ca_pem))
        .await
        .expect_err("a third use of a two-use challenge must fail");
    assert!(
        err.to_string().to_lowercase().contains("badrequest")
            || err.to_string().to_lowercase().contains("bad request")
            || err.to_string().to_lowercase().contains("fail"),
        "{err}"
    );
    let (_, list) = app.get("/api/v1/devices").await;
    assert_eq!(list["devices"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_identity_keeps_the_enrollment() {
    let app = spawn_app().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let before = dev.credentials().unwrap().cert_der;
    dev.renew().await.unwrap();
    let after = dev.credentials().unwrap().cert_der;
    assert_ne!(before, after);
    let udid = dev.udid().to_owned();
    let queued = app
        .enqueue(&[&udid], json!({"RequestType": "ProfileList"}))
        .await;
    dev.run_queue().await.unwrap();
    assert_eq!(app.command(&queued[0].1).await["status"], "Acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_profile_verifies_and_carries_the_mdm_payload() {
    let app = spawn_app().await;
    let signed = app.profile(json!({"signed": true})).await;
    let verified = mamori_protocol::cms::verify_signed_data(&signed, None).unwrap();
    let tls_leaf = std::fs::read_to_string(app.dir.path().join("data/tls.pem")).unwrap();
    let leaf = mamori::keys::pem_certs(&tls_leaf).unwrap().remove(0);
    assert_eq!(
        verified.signer_cert_der, leaf,
        "signed by the server certificate"
    );
    let p = mamori_sim::DeviceProfile::parse(&verified.content).unwrap();
    assert!(p.server_url.ends_with("/mdm/connect"));
    assert!(p
        .checkin_url
        .as_deref()
        .unwrap_or("")
        .ends_with("/mdm/checkin"));
    assert!(p.sign_message);
    assert!(p.check_out_when_removed);
    assert_eq!(p.scep_keysize, 2048);
    let tls_ca = std::fs::read_to_string(app.dir.path().join("data/tls-ca.pem")).unwrap();
    assert_eq!(p.root_certs, mamori::keys::pem_certs(&tls_ca).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_download_profiles_through_a_limited_link() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/enrollment-links",
            json!({"max_uses": 2, "signed": false}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let link: serde_json::Value = r.json().await.unwrap();
    let url = link["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&app.running.public_url));
    assert!(url.contains("/enroll/"));

    let mut challenges = Vec::new();
    for _ in 0..2 {
        let r = app.http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"],
            "application/x-apple-aspen-config"
        );
        let profile = r.bytes().await.unwrap().to_vec();
        let p = mamori_sim::DeviceProfile::parse(&profile).unwrap();
        challenges.push(p.scep_challenge.clone().unwrap());
        let mut dev = SimDevice::new(DeviceKind::IPhone, SimOptions::default());
        dev.enroll(&profile, None).await.unwrap();
    }
    assert_ne!(
        challenges[0], challenges[1],
        "each download has its own challenge"
    );
    // Used up; and a guessed link looks the same.
    assert_eq!(app.http.get(&url).send().await.unwrap().status(), 404);
    let guessed = app.device_url("/enroll/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(app.http.get(&guessed).send().await.unwrap().status(), 404);
    let (_, list) = app.get("/api/v1/devices").await;
    assert_eq!(list["devices"].as_array().unwrap().len(), 2);
}

/// Modern clients get the ECDSA server certificate (cheap handshakes); it
/// chains to the same TLS CA the profiles carry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_listener_serves_an_ecdsa_certificate_from_the_tls_ca() {
    let app = spawn_app().await;
    let mut roots = rustls::RootCertStore::empty();
    for der in mamori::keys::pem_certs(std::str::from_utf8(&app.tls_ca_pem).unwrap()).unwrap() {
        roots
            .add(rustls_pki_types::CertificateDer::from(der))
            .unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(app.running.device_addr)
        .await
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let parsed = mamori_crypto::certs::parse_cert(leaf.as_ref()).unwrap();
    assert_eq!(
        mamori_crypto::public_key_kind(&parsed.spki_der).unwrap(),
        mamori_crypto::KeyKind::EcP256
    );
}
