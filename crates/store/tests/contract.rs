//! The storage contract: what every backend of the ports must do. Runs on
//! SQLite now; the PostgreSQL backend will run the same suite.
#![allow(clippy::unwrap_used)]

use mamori_core::ports::*;
use mamori_domain::*;
use mamori_store::SqliteStore;
use serde_json::json;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

async fn sqlite() -> (Arc<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    (Arc::new(store), dir)
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn key(s: &str) -> DeviceKey {
    DeviceKey::parse(s).unwrap()
}

fn profile(id: &str, hash: &str, max_uses: u32, ttl: Duration) -> EnrollmentProfile {
    EnrollmentProfile {
        id: id.into(),
        challenge_hash: hash.into(),
        max_uses,
        uses: 0,
        created_at: now(),
        expires_at: now() + ttl,
    }
}

async fn enroll(s: &dyn Store, udid: &str) {
    s.authenticate(&AuthenticateRecord {
        device: key(udid),
        enrollment_id: None,
        topic: "topic".into(),
        fields: InventoryFields {
            serial_number: Some("SERIAL1".into()),
            ..InventoryFields::default()
        },
        now: now(),
    })
    .await
    .unwrap();
    assert!(s
        .token_update(&TokenUpdateRecord {
            device: key(udid),
            user_id: None,
            push_token: vec![1, 2, 3],
            push_magic: "magic".into(),
            topic: "topic".into(),
            sealed_unlock_token: Some(vec![9]),
            now: now(),
        })
        .await
        .unwrap());
}

fn cmd(uuid: &str, udid: &str) -> NewCommand {
    NewCommand {
        command_uuid: CommandUuid::parse(uuid).unwrap(),
        device: key(udid),
        request_type: "ProfileList".into(),
        payload: uuid.as_bytes().to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_respect_uses_and_expiry_even_under_concurrency() {
    let (s, _d) = sqlite().await;
    s.insert_profile(&profile("p1", "h1", 5, Duration::hours(1)))
        .await
        .unwrap();
    s.insert_profile(&profile("p2", "h2", 1, Duration::seconds(-1)))
        .await
        .unwrap();
    let tries = (0..20).map(|_| {
        let s = s.clone();
        tokio::spawn(async move { s.consume_challenge("h1", now()).await.unwrap() })
    });
    let won = futures::future::join_all(tries)
        .await
        .into_iter()
        .filter(|r| r.as_ref().unwrap().is_some())
        .count();
    assert_eq!(won, 5, "exactly max_uses spends succeed");
    assert_eq!(
        s.consume_challenge("h2", now()).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(s.consume_challenge("nope", now()).await.unwrap(), None);
}

#[tokio::test]
async fn enrollment_links_are_spent_once_per_download() {
    let (s, _d) = sqlite().await;
    let link = EnrollmentLink {
        id: "l1".into(),
        secret_hash: "sh".into(),
        max_uses: 2,
        uses: 0,
        signed: true,
        created_at: now(),
        expires_at: now() + Duration::hours(1),
    };
    s.insert_link(&link).await.unwrap();
    assert_eq!(s.consume_link("sh", now()).await.unwrap().unwrap().uses, 1);
    assert_eq!(s.consume_link("sh", now()).await.unwrap().unwrap().uses, 2);
    assert!(s.consume_link("sh", now()).await.unwrap().is_none());
    assert!(s
        .consume_link("sh", now() + Duration::hours(2))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn certificates_bind_and_revoke() {
    let (s, _d) = sqlite().await;
    let c = DeviceCertificate {
        fingerprint: "fp1".into(),
        serial: "01".into(),
        profile_id: None,
        device: None,
        renewed_from: None,
        not_after: now() + Duration::days(1),
        issued_at: now(),
        revoked_at: None,
    };
    s.insert_certificate(&c).await.unwrap();
    assert_eq!(s.certificate("fp1").await.unwrap().unwrap(), c);
    assert!(s.certificate("other").await.unwrap().is_none());
    s.bind_certificate("fp1", &key("DEV1")).await.unwrap();
    assert_eq!(
        s.certificate("fp1").await.unwrap().unwrap().device,
        Some(key("DEV1"))
    );
    assert_eq!(
        s.revoke_device_certificates(&key("DEV1"), now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.revoke_device_certificates(&key("DEV1"), now())
            .await
            .unwrap(),
        0
    );
    assert!(s
        .certificate("fp1")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());
    assert!(
        s.insert_certificate(&c).await.is_err(),
        "fingerprints are unique"
    );
}

#[tokio::test]
async fn enrollment_lifecycle_and_inventory() {
    let (s, _d) = sqlite().await;
    assert!(
        !s.token_update(&TokenUpdateRecord {
            device: key("GHOST"),
            user_id: None,
            push_token: vec![1],
            push_magic: "m".into(),
            topic: "t".into(),
            sealed_unlock_token: None,
            now: now(),
        })
        .await
        .unwrap(),
        "unknown devices are not created by TokenUpdate"
    );
    enroll(&*s, "DEV1").await;
    let d = s.device(&key("DEV1")).await.unwrap().unwrap();
    assert_eq!(d.status, EnrollmentStatus::Enrolled);
    assert!(d.push_ready && d.has_unlock_token);
    assert_eq!(d.serial_number.as_deref(), Some("SERIAL1"));
    assert_eq!(
        s.push_targets(&[key("DEV1"), key("GHOST")])
            .await
            .unwrap()
            .len(),
        1
    );

    let raw = json!({"OSVersion": "18.1", "SerialNumber": "SERIAL2"});
    let fields = InventoryFields {
        os_version: Some("18.1".into()),
        serial_number: Some("SERIAL2".into()),
        ..InventoryFields::default()
    };
    s.set_inventory(
        &key("DEV1"),
        InventoryKind::DeviceInformation,
        &raw,
        &fields,
    )
    .await
    .unwrap();
    let d = s.device(&key("DEV1")).await.unwrap().unwrap();
    assert_eq!(d.os_version.as_deref(), Some("18.1"));
    assert_eq!(d.serial_number.as_deref(), Some("SERIAL2"));
    assert_eq!(d.device_information, Some(raw));

    s.enqueue(&[cmd("C1", "DEV1")], now()).await.unwrap();
    assert!(s.check_out(&key("DEV1"), now()).await.unwrap());
    assert!(!s.check_out(&key("DEV1"), now()).await.unwrap());
    let d = s.device(&key("DEV1")).await.unwrap().unwrap();
    assert_eq!(d.status, EnrollmentStatus::CheckedOut);
    assert!(!d.push_ready && !d.has_unlock_token);
    assert!(s
        .command(&CommandUuid::parse("C1").unwrap())
        .await
        .unwrap()
        .is_none());
    assert!(s.push_targets(&[key("DEV1")]).await.unwrap().is_empty());
}

#[tokio::test]
async fn devices_page_in_order() {
    let (s, _d) = sqlite().await;
    for u in ["C", "A", "B"] {
        enroll(&*s, u).await;
    }
    let first = s.list_devices(None, 2).await.unwrap();
    let names: Vec<_> = first.iter().map(|d| d.udid.to_string()).collect();
    assert_eq!(names, ["A", "B"]);
    let rest = s.list_devices(Some(&key("B")), 2).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].udid, key("C"));
}

#[tokio::test]
async fn queue_order_not_now_and_ownership() {
    let (s, _d) = sqlite().await;
    enroll(&*s, "DEV1").await;
    enroll(&*s, "DEV2").await;
    s.enqueue(
        &[cmd("C1", "DEV1"), cmd("C2", "DEV1"), cmd("C3", "DEV2")],
        now(),
    )
    .await
    .unwrap();
    let u = |x: &str| CommandUuid::parse(x).unwrap();
    let next = s
        .next_command(&key("DEV1"), true, now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.command_uuid, u("C1"));
    // Another device cannot answer C1.
    let out = s
        .record_result(
            &key("DEV2"),
            &u("C1"),
            CommandState::Acknowledged,
            &json!({}),
            None,
            now(),
        )
        .await
        .unwrap();
    assert_eq!(out, ResultOutcome::UnknownCommand);
    let out = s
        .record_result(
            &key("DEV1"),
            &u("C1"),
            CommandState::NotNow,
            &json!({}),
            None,
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        out,
        ResultOutcome::Recorded {
            request_type: "ProfileList".into()
        }
    );
    // Not Idle: NotNow is skipped; Idle: it comes back first.
    let next = s
        .next_command(&key("DEV1"), false, now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.command_uuid, u("C2"));
    let next = s
        .next_command(&key("DEV1"), true, now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.command_uuid, u("C1"));
    for c in ["C1", "C2"] {
        s.record_result(
            &key("DEV1"),
            &u(c),
            CommandState::Acknowledged,
            &json!({"ok": c}),
            None,
            now(),
        )
        .await
        .unwrap();
    }
    assert!(s
        .next_command(&key("DEV1"), true, now())
        .await
        .unwrap()
        .is_none());
    let rec = s.command(&u("C2")).await.unwrap().unwrap();
    assert_eq!(rec.state, CommandState::Acknowledged);
    assert_eq!(rec.result, Some(json!({"ok": "C2"})));
    // Final answers are final.
    let out = s
        .record_result(
            &key("DEV1"),
            &u("C2"),
            CommandState::Error,
            &json!({}),
            None,
            now(),
        )
        .await
        .unwrap();
    assert_eq!(out, ResultOutcome::UnknownCommand);
    // Enqueue is all or nothing: a duplicate UUID rolls the batch back.
    assert!(s
        .enqueue(&[cmd("C9", "DEV2"), cmd("C3", "DEV2")], now())
        .await
        .is_err());
    assert!(s.command(&u("C9")).await.unwrap().is_none());
}

#[tokio::test]
async fn tokens_and_secrets() {
    let (s, _d) = sqlite().await;
    let t = ApiToken {
        id: TokenId::parse("abc").unwrap(),
        name: "n".into(),
        role: "owner".into(),
        created_at: now(),
        expires_at: now() + Duration::days(1),
        last_used_at: None,
        revoked_at: None,
    };
    s.insert_token(&t, "hash").await.unwrap();
    assert_eq!(
        s.token(&t.id).await.unwrap(),
        Some((t.clone(), "hash".into()))
    );
    s.touch_token(&t.id, now()).await.unwrap();
    assert_eq!(
        s.token(&t.id).await.unwrap().unwrap().0.last_used_at,
        Some(now())
    );
    assert!(s.revoke_token(&t.id, now()).await.unwrap());
    assert!(!s.revoke_token(&t.id, now()).await.unwrap());
    assert_eq!(s.list_tokens().await.unwrap().len(), 1);
    assert!(s.secret("x").await.unwrap().is_none());
    s.put_secret("x", b"one", now()).await.unwrap();
    s.put_secret("x", b"two", now()).await.unwrap();
    assert_eq!(s.secret("x").await.unwrap().unwrap(), b"two");
    assert!(s.delete_secret("x").await.unwrap());
    assert!(!s.delete_secret("x").await.unwrap());
    assert!(s.secret("x").await.unwrap().is_none());
}
