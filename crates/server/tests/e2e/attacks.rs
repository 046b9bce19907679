//! Attacks on device identity and on the admin surface: each must be refused
//! and change nothing.

use crate::common::{role_token, spawn_app};
use mamori_sim::{Credentials, DeviceKind, Identity, SimDevice, SimOptions};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_cannot_act_as_another() {
    let app = spawn_app().await;
    let mut a = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let mut b = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let b_udid = b.udid().to_owned();
    let q = app
        .enqueue(
            &[&b_udid],
            json!({"RequestType": "DeviceLock", "Message": "x"}),
        )
        .await;
    let b_cmd = &q[0].1;

    // A's valid certificate, B's UDID: fetching B's commands is refused.
    a.claim_udid(Some(b_udid.clone()));
    let err = a.connect_idle().await.expect_err("forged identity");
    assert_eq!(err.status(), Some(403));
    assert_eq!(app.command(b_cmd).await["status"], "Queued");

    // ... and so is answering B's command in B's name.
    let mut forged = plist::Dictionary::new();
    forged.insert("UDID".into(), b_udid.clone().into());
    forged.insert("Status".into(), "Acknowledged".into());
    forged.insert("CommandUUID".into(), b_cmd.clone().into());
    let r = a.connect_raw(forged).await.unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(app.command(b_cmd).await["status"], "Queued");

    // ... and re-Authenticating as B with A's certificate.
    let mut auth = plist::Dictionary::new();
    auth.insert("MessageType".into(), "Authenticate".into());
    auth.insert("UDID".into(), b_udid.clone().into());
    auth.insert("Topic".into(), b.profile().unwrap().topic.clone().into());
    let mut body = Vec::new();
    plist::to_writer_xml(&mut body, &plist::Value::Dictionary(auth)).unwrap();
    let r = a.checkin_raw(body, None).await.unwrap();
    assert_eq!(r.status, 403);

    // In its own name, A cannot answer B's command either: it is not A's.
    a.claim_udid(None);
    let mut own = plist::Dictionary::new();
    own.insert("UDID".into(), a.udid().to_owned().into());
    own.insert("Status".into(), "Acknowledged".into());
    own.insert("CommandUUID".into(), b_cmd.clone().into());
    let r = a.connect_raw(own).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(app.command(b_cmd).await["status"], "Queued");

    // B itself still gets its command.
    let cmd = b.connect_idle().await.unwrap().expect("B's command");
    assert_eq!(cmd.command_uuid, *b_cmd);
    let (_, d) = app.get(&format!("/api/v1/devices/{b_udid}")).await;
    assert_eq!(d["status"], "enrolled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_not_issued_here_are_refused() {
    let app = spawn_app().await;
    let other = spawn_app().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;

    // A certificate from another Mamori's CA (valid, just not ours).
    let foreign = other
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    dev.set_credentials(foreign.credentials().unwrap());
    let err = dev.connect_idle().await.expect_err("foreign CA");
    assert_eq!(err.status(), Some(401));

    // A self-signed certificate.
    let key = mamori_crypto::RsaPrivateKey::generate_2048().unwrap();
    let cert_der = mamori_crypto::certs::self_signed_cert(&key, "attacker").unwrap();
    dev.set_credentials(Credentials { cert_der, key });
    let err = dev.connect_idle().await.expect_err("self-signed");
    assert_eq!(err.status(), Some(401));
    for mode in [Identity::Mtls, Identity::Anonymous] {
        dev.set_identity(mode);
        let err = dev.connect_idle().await.expect_err("refused");
        assert_eq!(err.status(), Some(401), "{mode:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_are_not_on_the_device_listener_and_vice_versa() {
    let app = spawn_app().await;
    for path in ["/api/v1/devices", "/api/v1/openapi.yaml", "/healthz"] {
        let r = app
            .http
            .get(app.device_url(path))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path} on the device listener");
    }
    let r = app
        .http
        .post(app.device_url("/api/v1/commands"))
        .bearer_auth(&app.token)
        .json(&json!({"devices": ["X"], "command": {"RequestType": "ProfileList"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    for path in ["/mdm/connect", "/mdm/checkin", "/scep"] {
        let r = app.http.put(app.admin_url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path} on the admin listener");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_must_be_valid_unrevoked_unexpired_and_allowed() {
    let app = spawn_app().await;
    let get = |token: String| {
        let http = app.http.clone();
        let url = app.admin_url("/api/v1/devices");
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(get(app.token.clone()).await, 200);
    let r = app
        .http
        .get(app.admin_url("/api/v1/devices"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(get("mamori_0000000000000000_wrong".into()).await, 401);
    let tampered = format!("{}x", app.token);
    assert_eq!(get(tampered).await, 401);

    // Revoked through the API: refused on the very next request.
    let services = &app.running.services;
    let secret = role_token(services, "temp", "viewer").await;
    assert_eq!(get(secret.clone()).await, 200);
    let id = secret.split('_').nth(1).unwrap().to_owned();
    let r = app
        .http
        .delete(app.admin_url(&format!("/api/v1/tokens/{id}")))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(get(secret).await, 401);

    // Expired.
    let ctx = mamori_core::access::ClientContext::default();
    let owner = services
        .admin_named(&crate::common::operator(), "e2e-owner")
        .await
        .unwrap();
    let req = mamori_core::admin::tokens::TokenRequest {
        name: "short".into(),
        ttl_days: Some(1),
        ..Default::default()
    };
    let (tok, secret) = services
        .create_token(&crate::common::authorized(), &ctx, &owner, &req)
        .await
        .unwrap();
    let store = &services.store;
    let (mut stored, hash) = store.token(&tok.id).await.unwrap().unwrap();
    stored.id = mamori_domain::TokenId::parse("expired0000000001").unwrap();
    stored.expires_at = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    store.insert_token(&stored, &hash).await.unwrap();
    let expired_secret = secret.replace(tok.id.as_str(), "expired0000000001");
    assert_eq!(get(expired_secret).await, 401);

    // A viewer reads devices but cannot queue commands or mint tokens.
    let viewer = role_token(services, "viewer-1", "viewer").await;
    assert_eq!(get(viewer.clone()).await, 200);
    let r = app
        .http
        .post(app.admin_url("/api/v1/commands"))
        .bearer_auth(&viewer)
        .json(&json!({"devices": ["A"], "command": {"RequestType": "EraseDevice"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .http
        .post(app.admin_url("/api/v1/tokens"))
        .bearer_auth(&viewer)
        .json(&json!({"name": "escalate", "role": "owner"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Even the owner's token cannot mint tokens: that needs a person who
    // just re-authenticated.
    let r = app
        .post(
            "/api/v1/tokens",
            json!({"name": "minted", "role": "viewer"}),
        )
        .await;
    assert_eq!(r.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_cannot_enroll_without_a_valid_challenge() {
    let app = spawn_app().await;
    let profile = app.profile(json!({})).await;
    let text = String::from_utf8_lossy(
        &mamori_protocol::cms::verify_signed_data(&profile, None)
            .unwrap()
            .content,
    )
    .into_owned();
    let p = mamori_sim::DeviceProfile::parse(text.as_bytes()).unwrap();
    let challenge = p.scep_challenge.clone().unwrap();
    let forged = text.replace(&challenge, "guessed-challenge-000000000000000");
    let mut dev = SimDevice::new(DeviceKind::IPhone, SimOptions::default());
    assert!(dev
        .enroll(forged.as_bytes(), Some(&app.tls_ca_pem))
        .await
        .is_err());
    let (_, list) = app.get("/api/v1/devices").await;
    assert!(list["devices"].as_array().unwrap().is_empty());
    // The guess is on record.
    let audit = app.audit_records().await;
    let refused = audit
        .iter()
        .find(|r| r["action"] == "device.rejected")
        .unwrap()
        .clone();
    assert_eq!(refused["source"], "127.0.0.1");
    assert_eq!(
        refused["detail"],
        "scep: challenge unknown, expired or used up"
    );
}

/// Every admin route the router declares is reachable on the admin listener
/// and refuses anonymous callers, except the two public ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_route_demands_a_token() {
    let app = spawn_app().await;
    for (method, path, access) in mamori_http::admin::routes() {
        let concrete = path
            .replace("{udid}", "SOME-UDID")
            .replace("{command_uuid}", "SOME-UUID")
            .replace("{id}", "someid")
            .replace("{name}", "someone");
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = app
            .http
            .request(method.clone(), app.admin_url(&concrete))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        if access == mamori_http::auth::Access::Public {
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            // The login answers a bad login, not a missing one.
            let expected = if path == "/api/v1/auth/login" {
                401
            } else {
                200
            };
            assert_eq!(status, expected, "{method} {path}");
            assert_ne!(body["error"], "authentication required", "{method} {path}");
        } else {
            assert_eq!(status, 401, "{method} {path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_enrollment_retires_the_previous_identity() {
    let app = spawn_app().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let old = dev.credentials().unwrap();
    // The same device enrolls again with a new profile (new SCEP identity).
    let profile = app.profile(json!({})).await;
    let info = dev.info().clone();
    let mut again = SimDevice::with_info(info, SimOptions::default());
    again.enroll(&profile, Some(&app.tls_ca_pem)).await.unwrap();
    assert!(again.connect_idle().await.unwrap().is_none());
    // The old identity is live, so the new one waits for an administrator
    // (reenroll.rs); once approved, the old one is retired.
    let r = app
        .post(
            &format!("/api/v1/devices/{}/reenrollment/approve", again.udid()),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    // Whoever still holds the old certificate is locked out.
    dev.set_credentials(old);
    let err = dev.connect_idle().await.expect_err("old identity");
    assert_eq!(err.status(), Some(401));
}

/// A resumed TLS session (session ticket) still carries the device's client
/// certificate: mTLS devices stay authenticated, and nothing else does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_tls_sessions_keep_the_client_identity() {
    use rustls_pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let dev = app
        .enrolled(
            DeviceKind::IPhone,
            SimOptions {
                identity: Some(Identity::Mtls),
                ..SimOptions::default()
            },
        )
        .await;
    let creds = dev.credentials().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for der in mamori::keys::pem_certs(std::str::from_utf8(&app.tls_ca_pem).unwrap()).unwrap() {
        roots
            .add(rustls_pki_types::CertificateDer::from(der))
            .unwrap();
    }
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(creds.key.to_pkcs8_pem().as_bytes())
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![creds.cert_der.clone().into()], key)
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg));
    let body = format!(
        "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict><key>Status</key><string>Idle</string>\
         <key>UDID</key><string>{}</string></dict></plist>",
        dev.udid()
    );
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let tcp = tokio::net::TcpStream::connect(app.running.device_addr)
            .await
            .unwrap();
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let req = format!(
            "PUT /mdm/connect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        tls.write_all(req.as_bytes()).await.unwrap();
        let mut resp = Vec::new();
        let _ = tls.read_to_end(&mut resp).await;
        let resp = String::from_utf8_lossy(&resp).into_owned();
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        kinds.push(tls.get_ref().1.handshake_kind());
        // Let the server's session ticket arrive before the next connection.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(kinds[0], Some(rustls::HandshakeKind::Full));
    assert_eq!(kinds[1], Some(rustls::HandshakeKind::Resumed));
}

/// A certificate of ours that has expired (or is not yet valid) is refused,
/// even when it is recorded and bound to the device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_device_certificates_are_refused() {
    use mamori_crypto::certs::{CertProfile, IssueRequest};
    let app = spawn_app().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let key = mamori_crypto::RsaPrivateKey::generate_2048().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let services = &app.running.services;
    for (from, to) in [
        (
            now - time::Duration::days(10),
            now - time::Duration::days(1),
        ),
        (
            now + time::Duration::days(1),
            now + time::Duration::days(10),
        ),
    ] {
        let der = services
            .pki
            .device_ca
            .issue(&IssueRequest {
                subject_cn: "stale".into(),
                spki_der: key.public_key_spki_der(),
                serial: mamori_crypto::random_serial().unwrap(),
                not_before: from,
                not_after: to,
                profile: CertProfile::DeviceIdentity,
            })
            .unwrap();
        services
            .store
            .insert_certificate(&mamori_domain::DeviceCertificate {
                fingerprint: mamori_crypto::sha256_hex(&der),
                serial: "00".into(),
                profile_id: None,
                device: Some(mamori_domain::DeviceKey::parse(dev.udid()).unwrap()),
                renewed_from: None,
                not_after: to,
                issued_at: from,
                revoked_at: None,
            })
            .await
            .unwrap();
        dev.set_credentials(Credentials {
            cert_der: der,
            key: key.clone(),
        });
        let err = dev.connect_idle().await.expect_err("outside validity");
        assert_eq!(err.status(), Some(401));
    }
}

/// Finding 15: `mamori token create --admin NAME` on the host (and any other
/// caller of `create_token_for`) minted a working token for an account that
/// nobody had ever logged in to. A token is now issued only to an account
/// whose first login finished: password changed and a second factor its
/// role accepts; each refusal is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_for_an_account_whose_first_login_never_finished() {
    use mamori_core::access::ClientContext;
    use mamori_core::admin::tokens::TokenRequest;
    use mamori_domain::Role;
    let app = spawn_app().await;
    let s = &app.running.services;
    let ctx = ClientContext::default();
    let req = TokenRequest {
        name: "backdoor".into(),
        ..Default::default()
    };
    let (ctx_ref, req_ref) = (&ctx, &req);
    let refused = |name: &'static str| {
        let (ctx, req) = (ctx_ref, req_ref);
        async move {
            let admin = s
                .admin_named(&crate::common::operator(), name)
                .await
                .unwrap();
            match s
                .create_token(
                    &mamori_core::access::Actor::Host(mamori_core::access::HostUser::new(
                        "cli:mallory",
                    ))
                    .authorize()
                    .unwrap(),
                    ctx,
                    &admin,
                    req,
                )
                .await
            {
                Err(mamori_core::CoreError::Conflict(m)) => {
                    assert!(m.contains("has not finished setting up"), "{m}");
                }
                other => panic!("{name}: a token for an account not set up: {other:?}"),
            }
        }
    };

    // Created and never logged in to: an owner, and a viewer.
    let owner = crate::common::create_admin_now(s, &ctx, "dormant", Role::Owner).await;
    refused("dormant").await;
    let viewer = crate::common::create_admin_now(s, &ctx, "idle-viewer", Role::Viewer).await;
    refused("idle-viewer").await;

    // The owner changed the password but enrolled no passkey yet.
    let (_, cookie) = s
        .login("dormant", &owner.one_time_password, &ctx)
        .await
        .unwrap();
    let actor = s.authenticate_session(&cookie.secret, &ctx).await.unwrap();
    s.change_password(
        &actor,
        &owner.one_time_password,
        crate::common::SETUP_PASSWORD,
        &ctx,
    )
    .await
    .unwrap();
    assert!(
        !s.admin_named(&crate::common::operator(), "dormant")
            .await
            .unwrap()
            .must_change_password
    );
    refused("dormant").await;

    // The viewer enrolled TOTP but kept the one-time password.
    let (_, cookie) = s
        .login("idle-viewer", &viewer.one_time_password, &ctx)
        .await
        .unwrap();
    let actor = s.authenticate_session(&cookie.secret, &ctx).await.unwrap();
    let offer = s.totp_enroll_start(&actor).await.unwrap();
    let secret = mamori_crypto::totp::decode_totp_secret(&offer.secret).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = mamori_crypto::totp::totp_code(&secret, now);
    s.totp_enroll_confirm(&actor, &code, &ctx).await.unwrap();
    let v = s
        .admin_named(&crate::common::operator(), "idle-viewer")
        .await
        .unwrap();
    assert!(v.totp_enrolled && v.must_change_password);
    refused("idle-viewer").await;

    // A TOTP account made an owner: owners must use WebAuthn, so TOTP alone
    // does not count as set up for it.
    let totp_only = role_token(s, "was-helpdesk", "helpdesk").await;
    assert!(totp_only.starts_with("mamori_"));
    let a = s
        .admin_named(&crate::common::operator(), "was-helpdesk")
        .await
        .unwrap();
    assert!(a.totp_enrolled && !a.must_change_password);
    s.store.set_role(&a.id, Role::Owner).await.unwrap();
    refused("was-helpdesk").await;

    // Every refusal is in the audit log, with who asked.
    let denied = app
        .audit_records()
        .await
        .into_iter()
        .filter(|r| {
            r["action"] == "token.create" && r["outcome"] == "denied" && r["actor"] == "cli:mallory"
        })
        .count();
    assert_eq!(denied, 5);

    // After a complete first login (password and passkey), it works.
    let t = role_token(s, "ready-owner", "owner").await;
    let r = app
        .http
        .get(app.admin_url("/api/v1/devices"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Parallel guesses at one account's password, each from its own address
/// (so no source throttle applies): one check runs at a time, each failure
/// is written before the next guess is looked at, so no more passwords
/// are checked than the free failures before the account's backoff — and
/// the answers to the rest do not tell a right guess from a wrong one.
#[tokio::test]
async fn parallel_guesses_get_no_more_checks_than_one_after_another() {
    let app = spawn_app().await;
    let s = app.running.services.clone();
    let ctx = mamori_core::access::ClientContext::default();
    let created =
        crate::common::create_admin_now(&s, &ctx, "race-target", mamori_domain::Role::Viewer).await;
    crate::common::first_login(&s, "race-target", &created.one_time_password).await;
    let mut guesses = Vec::new();
    for i in 0..30u8 {
        let s = s.clone();
        guesses.push(tokio::spawn(async move {
            let ctx = mamori_core::access::ClientContext {
                source: format!("192.0.2.{i}"),
                user_agent: Some("race".into()),
                request_id: None,
            };
            s.login("race-target", &format!("wrong-guess-{i}"), &ctx)
                .await
                .err()
        }));
    }
    let mut checked = 0;
    for g in guesses {
        if matches!(
            g.await.unwrap(),
            Some(mamori_core::CoreError::InvalidCredentials)
        ) {
            checked += 1;
        }
    }
    let free = s.config.auth.backoff_after;
    assert!(
        checked <= free,
        "{checked} of 30 parallel guesses were checked; at most {free} may be"
    );
}
