//! The storage contract: what every backend of the ports must do. Every
//! test runs twice, on SQLite (`sqlite::…`) and on PostgreSQL
//! (`postgres::…`, in a throwaway cluster this binary starts, a fresh
//! database per test); the list at the end names them.
#![allow(clippy::unwrap_used)]

use backends::Backend;
use mamori_domain::*;
use mamori_ports::*;
use mamori_store::SqliteStore;
use rusqlite::Connection;
use serde_json::json;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

mod backends;
mod linker;

/// Appends `events`, linked by the store onto the chain's end (with a
/// stand-in for the service layer's hash, `linker::Linker`); returns
/// their sequence numbers.
async fn append_batch(s: &dyn Store, events: &[AuditEvent]) -> StoreResult<Vec<i64>> {
    s.append_audit(events, &linker::Linker::default()).await
}

/// Appends one record; returns its sequence number.
async fn append(s: &dyn Store, e: &AuditEvent) -> StoreResult<i64> {
    Ok(append_batch(s, std::slice::from_ref(e)).await?[0])
}

/// `record_issuance` with its audit record linked by the store.
async fn issue(
    s: &dyn Store,
    spend: Option<&str>,
    cert: &DeviceCertificate,
    e: &AuditEvent,
    now: OffsetDateTime,
) -> StoreResult<bool> {
    s.record_issuance(spend, cert, e, &linker::Linker::default(), now)
        .await
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

async fn challenges_respect_uses_and_expiry_even_under_concurrency(b: Backend) {
    let (s, _d) = b.open().await;
    s.insert_profile(&profile("p1", "h1", 5, Duration::hours(1)))
        .await
        .unwrap();
    s.insert_profile(&profile("p2", "h2", 1, Duration::seconds(-1)))
        .await
        .unwrap();
    let tries = (0..20).map(|_| {
        let s = Arc::clone(&s);
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

async fn enrollment_links_are_spent_once_per_download(b: Backend) {
    let (s, _d) = b.open().await;
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

async fn active_links_are_listed_and_a_revoked_one_is_over(b: Backend) {
    let (s, _d) = b.open().await;
    let link = |id: &str, hash: &str, max_uses: u32, created: i64| EnrollmentLink {
        id: id.into(),
        secret_hash: hash.into(),
        max_uses,
        uses: 0,
        signed: true,
        created_at: now() + Duration::seconds(created),
        expires_at: now() + Duration::hours(1),
    };
    s.insert_link(&link("old", "h1", 5, 0)).await.unwrap();
    s.insert_link(&link("new", "h2", 5, 10)).await.unwrap();
    s.insert_link(&link("spent", "h3", 1, 20)).await.unwrap();
    assert!(s.consume_link("h3", now()).await.unwrap().is_some());
    let ids = |v: Vec<EnrollmentLink>| v.into_iter().map(|l| l.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.active_links(now(), 10).await.unwrap()),
        ["new", "old"]
    );
    assert_eq!(ids(s.active_links(now(), 1).await.unwrap()), ["new"]);
    assert!(s.revoke_link("new", now()).await.unwrap());
    assert!(!s.revoke_link("new", now()).await.unwrap(), "already over");
    assert!(!s.revoke_link("nope", now()).await.unwrap());
    assert!(s.consume_link("h2", now()).await.unwrap().is_none());
    assert_eq!(ids(s.active_links(now(), 10).await.unwrap()), ["old"]);
    assert!(s
        .active_links(now() + Duration::hours(2), 10)
        .await
        .unwrap()
        .is_empty());
}

async fn certificates_bind_and_revoke(b: Backend) {
    let (s, _d) = b.open().await;
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

/// A renewal is stored only while the identity it renews is live: one
/// retired (revoked with its device's certificates) or held between the
/// request's check and the write issues nothing; a revocation ordered
/// after a renewal takes the renewed certificate with it.
async fn a_renewal_of_a_retired_identity_issues_nothing(b: Backend) {
    let (s, _d) = b.open().await;
    enroll(&*s, "DEVR").await;
    let cert = |fp: &str, from: Option<&str>| DeviceCertificate {
        fingerprint: fp.into(),
        serial: "01".into(),
        profile_id: None,
        device: Some(key("DEVR")),
        renewed_from: from.map(str::to_owned),
        not_after: now() + Duration::days(1),
        issued_at: now(),
        revoked_at: None,
    };
    s.insert_certificate(&cert("live", None)).await.unwrap();
    let e = event("device.certificate_issue", now());
    // Live: renewed.
    assert!(issue(&*s, None, &cert("r1", Some("live")), &e, now())
        .await
        .unwrap());
    // Retired since: nothing issued, nothing recorded.
    let before = s.list_audit(0, 100).await.unwrap().len();
    assert_eq!(
        s.revoke_device_certificates(&key("DEVR"), now())
            .await
            .unwrap(),
        2
    );
    assert!(!issue(&*s, None, &cert("r2", Some("live")), &e, now())
        .await
        .unwrap());
    assert!(s.certificate("r2").await.unwrap().is_none());
    assert_eq!(s.list_audit(0, 100).await.unwrap().len(), before);
    // The renewed one went with the device's others.
    assert!(s
        .certificate("r1")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());
    // A renewal claiming another device's identity is refused too.
    s.insert_certificate(&cert("live2", None)).await.unwrap();
    let other = DeviceCertificate {
        device: Some(key("ELSEWHERE")),
        ..cert("r3", Some("live2"))
    };
    assert!(!issue(&*s, None, &other, &e, now()).await.unwrap());
    // An unknown or expired signer: nothing.
    assert!(!issue(&*s, None, &cert("r4", Some("nobody")), &e, now())
        .await
        .unwrap());
    let late = now() + Duration::days(2);
    assert!(!issue(&*s, None, &cert("r5", Some("live2")), &e, late)
        .await
        .unwrap());
}

/// SCEP issuance: the challenge use, the certificate and the audit record
/// are written together or not at all.
async fn scep_issuance_is_one_transaction(b: Backend) {
    let (s, _d) = b.open().await;
    let cert = |fp: &str, profile: Option<&str>| DeviceCertificate {
        fingerprint: fp.into(),
        serial: "01".into(),
        profile_id: profile.map(str::to_owned),
        device: None,
        renewed_from: None,
        not_after: now() + Duration::days(1),
        issued_at: now(),
        revoked_at: None,
    };
    let event = |n: &str| AuditEvent {
        at: now(),
        actor: "anonymous".into(),
        source: None,
        action: "device.certificate_issue".into(),
        target: None,
        outcome: "success".into(),
        request_id: None,
        detail: Some(n.into()),
    };
    let audit_len = |s: Arc<dyn Store>| async move { s.list_audit(0, 1000).await.unwrap().len() };
    s.insert_profile(&profile("p1", "h1", 2, Duration::hours(1)))
        .await
        .unwrap();

    // Looking a challenge up spends nothing.
    for _ in 0..3 {
        assert_eq!(
            s.challenge_profile("h1", now()).await.unwrap().as_deref(),
            Some("p1")
        );
    }
    assert_eq!(s.challenge_profile("nope", now()).await.unwrap(), None);

    assert!(issue(
        &*s,
        Some("p1"),
        &cert("fpA", Some("p1")),
        &event("a"),
        now()
    )
    .await
    .unwrap());
    assert!(s.certificate("fpA").await.unwrap().is_some());
    assert_eq!(audit_len(Arc::clone(&s)).await, 1);

    // A failure inside the transaction (a duplicate fingerprint) leaves
    // the challenge use unspent and no audit record.
    assert!(issue(
        &*s,
        Some("p1"),
        &cert("fpA", Some("p1")),
        &event("dup"),
        now()
    )
    .await
    .is_err());
    assert_eq!(audit_len(Arc::clone(&s)).await, 1);
    assert_eq!(
        s.challenge_profile("h1", now()).await.unwrap().as_deref(),
        Some("p1"),
        "the failed issuance spent no use"
    );
    assert!(issue(
        &*s,
        Some("p1"),
        &cert("fpB", Some("p1")),
        &event("b"),
        now()
    )
    .await
    .unwrap());

    // Used up: nothing is written.
    assert_eq!(s.challenge_profile("h1", now()).await.unwrap(), None);
    assert!(!issue(
        &*s,
        Some("p1"),
        &cert("fpC", Some("p1")),
        &event("c"),
        now()
    )
    .await
    .unwrap());
    assert!(s.certificate("fpC").await.unwrap().is_none());
    assert_eq!(audit_len(Arc::clone(&s)).await, 2);
    // Unknown or expired profiles spend nothing either.
    assert!(
        !issue(&*s, Some("nope"), &cert("fpD", None), &event("d"), now())
            .await
            .unwrap()
    );
    assert!(!issue(
        &*s,
        Some("p1"),
        &cert("fpE", None),
        &event("e"),
        now() + Duration::hours(2)
    )
    .await
    .unwrap());
    // A renewal spends no challenge.
    assert!(issue(&*s, None, &cert("fpR", None), &event("r"), now())
        .await
        .unwrap());
    assert!(s.certificate("fpR").await.unwrap().is_some());
    let audit = s.list_audit(0, 1000).await.unwrap();
    let details: Vec<_> = audit
        .iter()
        .filter_map(|r| r.event.detail.clone())
        .collect();
    assert_eq!(details, ["a", "b", "r"]);

    // Concurrent issuances spend exactly the uses there are.
    s.insert_profile(&profile("p5", "h5", 5, Duration::hours(1)))
        .await
        .unwrap();
    let tries = (0..20).map(|i| {
        let s = Arc::clone(&s);
        tokio::spawn(async move {
            issue(
                &*s,
                Some("p5"),
                &cert(&format!("fp5-{i}"), Some("p5")),
                &event("p5"),
                now(),
            )
            .await
            .unwrap()
        })
    });
    let won = futures::future::join_all(tries)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(won, 5);
    assert_eq!(audit_len(Arc::clone(&s)).await, 3 + 5);
}

/// One device cannot grow the user-channel table without end: past
/// `MAX_USER_CHANNELS` a TokenUpdate for a new user is not stored, while
/// the users it has keep updating their tokens.
async fn a_device_has_at_most_max_user_channels(b: Backend) {
    let (s, _d) = b.open().await;
    enroll(&*s, "SHARED1").await;
    let update = |user: String| TokenUpdateRecord {
        device: key("SHARED1"),
        user_id: Some(user),
        push_token: vec![7],
        push_magic: "m".into(),
        topic: "topic".into(),
        sealed_unlock_token: None,
        now: now(),
    };
    let max = MAX_USER_CHANNELS;
    for i in 0..max {
        assert!(s.token_update(&update(format!("user-{i}"))).await.unwrap());
    }
    assert!(!s.token_update(&update("one-more".into())).await.unwrap());
    assert!(s.token_update(&update("user-0".into())).await.unwrap());
    assert_eq!(_d.raw_i64("SELECT COUNT(*) FROM user_channels"), max);
}

async fn enrollment_lifecycle_and_inventory(b: Backend) {
    let (s, _d) = b.open().await;
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

async fn devices_page_in_order(b: Backend) {
    let (s, _d) = b.open().await;
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

async fn device_counts_by_state_and_last_seen(b: Backend) {
    let (s, _d) = b.open().await;
    assert_eq!(
        s.device_counts(now()).await.unwrap(),
        DeviceCounts::default()
    );
    for u in ["A", "B", "C", "D"] {
        enroll(&*s, u).await;
    }
    // W sent Authenticate and nothing more.
    s.authenticate(&AuthenticateRecord {
        device: key("W"),
        enrollment_id: None,
        topic: "topic".into(),
        fields: InventoryFields::default(),
        now: now(),
    })
    .await
    .unwrap();
    let later = now() + Duration::hours(1);
    s.touch(&key("A"), later).await.unwrap();
    assert!(s.check_out(&key("D"), now()).await.unwrap());
    assert_eq!(
        s.device_counts(later).await.unwrap(),
        DeviceCounts {
            enrolled: 3,
            seen_since: 1,
            waiting: 1,
            checked_out: 1,
        }
    );
}

async fn queue_order_not_now_and_ownership(b: Backend) {
    let (s, _d) = b.open().await;
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

fn aid(s: &str) -> AdminId {
    AdminId::parse(s).unwrap()
}

fn sid(s: &str) -> SessionId {
    SessionId::parse(s).unwrap()
}

fn admin(id: &str, name: &str, role: Role) -> AdminAccount {
    AdminAccount {
        id: aid(id),
        name: name.into(),
        role,
        must_change_password: true,
        created_at: now(),
        password_set_at: now(),
        last_login_at: None,
        last_login_source: None,
        failed_logins: 0,
        throttled_until: None,
        locked_at: None,
        disabled_at: None,
        disabled_reason: None,
        suspended: None,
        totp_enrolled: false,
    }
}

fn password(hash: &str) -> AdminCredentials {
    AdminCredentials {
        password_hash: hash.into(),
        ..AdminCredentials::default()
    }
}

/// Inserts an owner account `id` named after it.
async fn add_admin(s: &dyn Store, id: &str) -> AdminAccount {
    let a = admin(id, &format!("name-{id}"), Role::Owner);
    assert!(s.insert_admin(&a, &password("ph")).await.unwrap());
    a
}

fn token(id: &str, owner: &str, created: OffsetDateTime) -> ApiToken {
    ApiToken {
        id: TokenId::parse(id).unwrap(),
        name: format!("token {id}"),
        admin_id: aid(owner),
        role: Role::DeviceAdmin,
        scope: None,
        created_at: created,
        expires_at: created + Duration::days(1),
        last_used_at: None,
        revoked_at: None,
    }
}

fn session(id: &str, owner: &str, created: OffsetDateTime, ttl: Duration) -> AdminSession {
    AdminSession {
        id: sid(id),
        admin_id: aid(owner),
        stage: SessionStage::Full,
        created_at: created,
        last_seen_at: created,
        expires_at: created + ttl,
        source: "192.0.2.1".into(),
        client_hash: "ua".into(),
        step_up_at: None,
        revoked_at: None,
    }
}

fn event(action: &str, at: OffsetDateTime) -> AuditEvent {
    AuditEvent {
        at,
        actor: "admin:alice".into(),
        source: Some("192.0.2.1".into()),
        action: action.into(),
        target: None,
        outcome: "success".into(),
        request_id: Some("req-1".into()),
        detail: None,
    }
}

async fn tokens_and_secrets(b: Backend) {
    let (s, _d) = b.open().await;
    add_admin(&*s, "a1").await;
    let t = ApiToken {
        scope: Some(vec![Permission::DevicesRead, Permission::CommandsRead]),
        ..token("abc", "a1", now())
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
    assert_eq!(s.list_tokens(None).await.unwrap().len(), 1);
    assert!(
        s.insert_token(&token("orphan", "nobody", now()), "h")
            .await
            .is_err(),
        "a token needs an owning account"
    );
    assert!(s.secret("x").await.unwrap().is_none());
    s.put_secret("x", b"one", now()).await.unwrap();
    s.put_secret("x", b"two", now()).await.unwrap();
    assert_eq!(s.secret("x").await.unwrap().unwrap(), b"two");
    assert!(s.delete_secret("x").await.unwrap());
    assert!(!s.delete_secret("x").await.unwrap());
    assert!(s.secret("x").await.unwrap().is_none());
    // Created once: a second creator learns it lost and keeps the first.
    assert!(s.put_secret_if_absent("y", b"first", now()).await.unwrap());
    assert!(!s.put_secret_if_absent("y", b"second", now()).await.unwrap());
    assert_eq!(s.secret("y").await.unwrap().unwrap(), b"first");
}

async fn tokens_list_by_owner_oldest_first(b: Backend) {
    let (s, _d) = b.open().await;
    add_admin(&*s, "a1").await;
    add_admin(&*s, "a2").await;
    let later = now() + Duration::minutes(1);
    s.insert_token(&token("t3", "a1", later), "h3")
        .await
        .unwrap();
    s.insert_token(&token("t2", "a2", now()), "h2")
        .await
        .unwrap();
    s.insert_token(&token("t1", "a1", now()), "h1")
        .await
        .unwrap();
    let ids = |v: Vec<ApiToken>| v.into_iter().map(|t| t.id.to_string()).collect::<Vec<_>>();
    assert_eq!(ids(s.list_tokens(None).await.unwrap()), ["t1", "t2", "t3"]);
    assert_eq!(
        ids(s.list_tokens(Some(&aid("a1"))).await.unwrap()),
        ["t1", "t3"]
    );
    assert_eq!(ids(s.list_tokens(Some(&aid("a2"))).await.unwrap()), ["t2"]);
    assert!(s.list_tokens(Some(&aid("a3"))).await.unwrap().is_empty());
}

async fn admins_insert_lookup_and_unique_names(b: Backend) {
    let (s, _d) = b.open().await;
    let a = admin("a1", "alice", Role::Owner);
    let creds = AdminCredentials {
        password_hash: "$argon2id$x".into(),
        totp_sealed: None,
        totp_pending_sealed: Some(vec![1, 2]),
        totp_last_step: None,
    };
    assert!(s.insert_admin(&a, &creds).await.unwrap());
    assert!(
        !s.insert_admin(&admin("a2", "alice", Role::Viewer), &password("x"))
            .await
            .unwrap(),
        "names are unique"
    );
    assert!(s.admin(&aid("a2")).await.unwrap().is_none());
    assert!(s
        .insert_admin(&admin("a3", "bob", Role::Viewer), &password("x"))
        .await
        .unwrap());
    assert_eq!(s.admin(&aid("a1")).await.unwrap(), Some(a.clone()));
    assert_eq!(s.admin_by_name("alice").await.unwrap(), Some(a.clone()));
    assert!(
        s.admin_by_name("Alice").await.unwrap().is_none(),
        "exact match"
    );
    assert_eq!(s.admin_credentials(&aid("a1")).await.unwrap(), Some(creds));
    assert!(s.admin_credentials(&aid("zz")).await.unwrap().is_none());
    let names: Vec<_> = s
        .list_admins()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["alice", "bob"]);

    s.set_password(&aid("a1"), "new-hash", false, now() + Duration::hours(1))
        .await
        .unwrap();
    s.set_role(&aid("a1"), Role::SecurityOfficer).await.unwrap();
    let got = s.admin(&aid("a1")).await.unwrap().unwrap();
    assert!(!got.must_change_password);
    assert_eq!(got.password_set_at, now() + Duration::hours(1));
    assert_eq!(got.role, Role::SecurityOfficer);
    assert_eq!(
        s.admin_credentials(&aid("a1"))
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "new-hash"
    );
}

async fn unknown_stored_role_is_an_error(b: Backend) {
    let (s, d) = b.open().await;
    add_admin(&*s, "a1").await;
    d.raw("UPDATE admins SET role = 'root' WHERE id = 'a1'")
        .unwrap();
    assert!(s.admin(&aid("a1")).await.is_err());
    assert!(s.list_admins().await.is_err());
}

async fn totp_enrollment_and_replay_protection(b: Backend) {
    let (s, _d) = b.open().await;
    let a = aid("a1");
    add_admin(&*s, "a1").await;
    assert!(!s.activate_totp(&a, 10).await.unwrap(), "nothing pending");
    s.set_totp_pending(&a, Some(&[7, 7])).await.unwrap();
    let c = s.admin_credentials(&a).await.unwrap().unwrap();
    assert_eq!(c.totp_pending_sealed, Some(vec![7, 7]));
    assert!(!s.admin(&a).await.unwrap().unwrap().totp_enrolled);
    assert!(s.activate_totp(&a, 100).await.unwrap());
    let c = s.admin_credentials(&a).await.unwrap().unwrap();
    assert_eq!(c.totp_sealed, Some(vec![7, 7]));
    assert_eq!(c.totp_pending_sealed, None);
    assert_eq!(c.totp_last_step, Some(100));
    assert!(s.admin(&a).await.unwrap().unwrap().totp_enrolled);
    assert!(
        !s.activate_totp(&a, 200).await.unwrap(),
        "pending was cleared"
    );

    assert!(
        !s.advance_totp_step(&a, 100).await.unwrap(),
        "the activation step is spent"
    );
    assert!(s.advance_totp_step(&a, 101).await.unwrap());
    assert!(!s.advance_totp_step(&a, 101).await.unwrap(), "replay");
    assert!(!s.advance_totp_step(&a, 99).await.unwrap(), "older step");
    assert!(s.advance_totp_step(&a, 105).await.unwrap());
    assert!(!s.advance_totp_step(&aid("zz"), 1).await.unwrap());

    // A fresh account (no step yet) accepts its first step once.
    add_admin(&*s, "a2").await;
    assert!(s.advance_totp_step(&aid("a2"), 5).await.unwrap());
    assert!(!s.advance_totp_step(&aid("a2"), 5).await.unwrap());

    // Clearing a pending offer.
    s.set_totp_pending(&a, Some(&[8])).await.unwrap();
    s.set_totp_pending(&a, None).await.unwrap();
    assert!(!s.activate_totp(&a, 300).await.unwrap());
}

async fn login_failures_blocks_unlock_and_login(b: Backend) {
    let (s, _d) = b.open().await;
    let a = aid("a1");
    add_admin(&*s, "a1").await;
    assert_eq!(s.add_login_failure(&a).await.unwrap(), 1);
    assert_eq!(s.add_login_failure(&a).await.unwrap(), 2);
    assert_eq!(s.add_login_failure(&aid("zz")).await.unwrap(), 0);
    let until = now() + Duration::minutes(5);
    s.set_login_block(&a, Some(until), Some(now()))
        .await
        .unwrap();
    let got = s.admin(&a).await.unwrap().unwrap();
    assert_eq!(
        (got.failed_logins, got.throttled_until, got.locked_at),
        (2, Some(until), Some(now()))
    );
    s.set_login_block(&a, Some(until), None).await.unwrap();
    assert_eq!(s.admin(&a).await.unwrap().unwrap().locked_at, None);
    s.set_login_block(&a, None, Some(now())).await.unwrap();
    s.unlock_admin(&a).await.unwrap();
    let got = s.admin(&a).await.unwrap().unwrap();
    assert_eq!(
        (got.failed_logins, got.throttled_until, got.locked_at),
        (0, None, None)
    );

    s.add_login_failure(&a).await.unwrap();
    s.set_login_block(&a, Some(until), None).await.unwrap();
    s.record_login(&a, now(), "198.51.100.7").await.unwrap();
    let got = s.admin(&a).await.unwrap().unwrap();
    assert_eq!(got.failed_logins, 0);
    assert_eq!(got.throttled_until, None);
    assert_eq!(got.last_login_at, Some(now()));
    assert_eq!(got.last_login_source.as_deref(), Some("198.51.100.7"));
}

async fn disable_revokes_sessions_and_tokens_together(b: Backend) {
    let (s, _d) = b.open().await;
    let a = aid("a1");
    add_admin(&*s, "a1").await;
    add_admin(&*s, "a2").await;
    let ttl = Duration::hours(1);
    s.insert_session(&session("s1", "a1", now(), ttl), "sh1")
        .await
        .unwrap();
    s.insert_session(&session("s2", "a1", now(), ttl), "sh2")
        .await
        .unwrap();
    s.insert_session(&session("s3", "a1", now(), ttl), "sh3")
        .await
        .unwrap();
    assert!(s.revoke_session(&a, &sid("s3"), now()).await.unwrap());
    s.insert_session(&session("other", "a2", now(), ttl), "sho")
        .await
        .unwrap();
    s.insert_token(&token("t1", "a1", now()), "h1")
        .await
        .unwrap();
    s.insert_token(&token("t2", "a2", now()), "h2")
        .await
        .unwrap();

    let later = now() + Duration::minutes(1);
    assert_eq!(
        s.disable_admin(&a, later, "offboarded", true)
            .await
            .unwrap(),
        Some((2, 1))
    );
    assert_eq!(
        s.disable_admin(&a, later, "again", true).await.unwrap(),
        None,
        "already disabled"
    );
    assert_eq!(
        s.disable_admin(&aid("zz"), later, "x", true).await.unwrap(),
        None
    );
    let got = s.admin(&a).await.unwrap().unwrap();
    assert_eq!(got.disabled_at, Some(later));
    assert_eq!(got.disabled_reason.as_deref(), Some("offboarded"));
    for h in ["sh1", "sh2"] {
        let sess = s.session_by_secret(h).await.unwrap().unwrap();
        assert_eq!(sess.revoked_at, Some(later));
    }
    assert_eq!(
        s.session_by_secret("sh3")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(now()),
        "an already revoked session keeps its revocation time"
    );
    assert_eq!(
        s.token(&TokenId::parse("t1").unwrap())
            .await
            .unwrap()
            .unwrap()
            .0
            .revoked_at,
        Some(later)
    );
    // The other account is untouched.
    assert!(s
        .session_by_secret("sho")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());
    assert!(s
        .token(&TokenId::parse("t2").unwrap())
        .await
        .unwrap()
        .unwrap()
        .0
        .revoked_at
        .is_none());
    assert!(s
        .admin(&aid("a2"))
        .await
        .unwrap()
        .unwrap()
        .disabled_at
        .is_none());

    assert!(s.enable_admin(&a).await.unwrap());
    assert!(!s.enable_admin(&a).await.unwrap(), "not disabled");
    assert!(!s.enable_admin(&aid("a2")).await.unwrap());
    let got = s.admin(&a).await.unwrap().unwrap();
    assert_eq!((got.disabled_at, got.disabled_reason), (None, None));
    assert!(
        s.list_sessions(&a, now()).await.unwrap().is_empty(),
        "sessions stay revoked after re-enabling"
    );
    assert!(s
        .token(&TokenId::parse("t1").unwrap())
        .await
        .unwrap()
        .unwrap()
        .0
        .revoked_at
        .is_some());
}

async fn recovery_codes_work_once(b: Backend) {
    let (s, _d) = b.open().await;
    let a = aid("a1");
    add_admin(&*s, "a1").await;
    add_admin(&*s, "a2").await;
    assert_eq!(s.recovery_codes_left(&a).await.unwrap(), 0);
    let codes: Vec<String> = ["c1", "c2", "c3"].map(String::from).to_vec();
    s.replace_recovery_codes(&a, &codes).await.unwrap();
    s.replace_recovery_codes(&aid("a2"), &["c1".to_owned()])
        .await
        .unwrap();
    assert_eq!(s.recovery_codes_left(&a).await.unwrap(), 3);
    assert!(s.use_recovery_code(&a, "c2", now()).await.unwrap());
    assert!(!s.use_recovery_code(&a, "c2", now()).await.unwrap(), "once");
    assert!(!s.use_recovery_code(&a, "nope", now()).await.unwrap());
    assert_eq!(s.recovery_codes_left(&a).await.unwrap(), 2);
    assert_eq!(
        s.recovery_codes_left(&aid("a2")).await.unwrap(),
        1,
        "codes are per account"
    );
    // Replacing drops the old codes, used or not.
    s.replace_recovery_codes(&a, &["c4".to_owned(), "c2".to_owned()])
        .await
        .unwrap();
    assert_eq!(s.recovery_codes_left(&a).await.unwrap(), 2);
    assert!(!s.use_recovery_code(&a, "c1", now()).await.unwrap());
    assert!(s.use_recovery_code(&a, "c2", now()).await.unwrap());
    // All or nothing: a duplicate in the batch leaves the old set in place.
    assert!(s
        .replace_recovery_codes(&a, &["c5".to_owned(), "c5".to_owned()])
        .await
        .is_err());
    assert_eq!(s.recovery_codes_left(&a).await.unwrap(), 1);
    assert!(s.use_recovery_code(&a, "c4", now()).await.unwrap());
}

async fn webauthn_credentials_register_and_update(b: Backend) {
    let (s, _d) = b.open().await;
    let a = aid("a1");
    add_admin(&*s, "a1").await;
    add_admin(&*s, "a2").await;
    let cred = |id: &str, owner: &str, at: OffsetDateTime| WebauthnCredential {
        id: id.into(),
        admin_id: aid(owner),
        name: format!("key {id}"),
        data: "{}".into(),
        created_at: at,
        last_used_at: None,
        usable_from: None,
    };
    let later = now() + Duration::minutes(1);
    assert!(s.insert_webauthn(&cred("k2", "a1", later)).await.unwrap());
    assert!(s.insert_webauthn(&cred("k1", "a1", now())).await.unwrap());
    assert!(s.insert_webauthn(&cred("k3", "a2", now())).await.unwrap());
    assert!(
        !s.insert_webauthn(&cred("k1", "a2", now())).await.unwrap(),
        "credential IDs are unique across accounts"
    );
    let got = s.webauthn_credentials(&a).await.unwrap();
    assert_eq!(got, vec![cred("k1", "a1", now()), cred("k2", "a1", later)]);
    s.update_webauthn("k1", r#"{"counter":5}"#, later)
        .await
        .unwrap();
    let got = s.webauthn_credentials(&a).await.unwrap();
    assert_eq!(got[0].data, r#"{"counter":5}"#);
    assert_eq!(got[0].last_used_at, Some(later));
    assert!(got[1].last_used_at.is_none());
    assert!(s.webauthn_credentials(&aid("zz")).await.unwrap().is_empty());
}

async fn sessions_lifecycle(b: Backend) {
    let (s, _d) = b.open().await;
    let a = aid("a1");
    add_admin(&*s, "a1").await;
    add_admin(&*s, "a2").await;
    let ttl = Duration::hours(1);
    let first = AdminSession {
        stage: SessionStage::SecondFactor,
        ..session("s1", "a1", now(), ttl)
    };
    s.insert_session(&first, "sh1").await.unwrap();
    assert_eq!(
        s.session_by_secret("sh1").await.unwrap(),
        Some(first.clone())
    );
    assert!(s.session_by_secret("nope").await.unwrap().is_none());
    assert!(
        s.insert_session(&session("s9", "a1", now(), ttl), "sh1")
            .await
            .is_err(),
        "secret hashes are unique"
    );

    let t1 = now() + Duration::minutes(1);
    s.touch_session(&sid("s1"), t1).await.unwrap();
    s.set_session_step_up(&sid("s1"), t1).await.unwrap();
    let got = s.session_by_secret("sh1").await.unwrap().unwrap();
    assert_eq!((got.last_seen_at, got.step_up_at), (t1, Some(t1)));

    s.insert_session(&session("s2", "a1", t1, ttl), "sh2")
        .await
        .unwrap();
    s.insert_session(&session("s3", "a1", t1, ttl), "sh3")
        .await
        .unwrap();
    s.insert_session(&session("old", "a1", now(), Duration::seconds(30)), "sho")
        .await
        .unwrap();
    s.insert_session(&session("x1", "a2", now(), ttl), "shx")
        .await
        .unwrap();
    let ids = |v: Vec<AdminSession>| v.into_iter().map(|s| s.id.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_sessions(&a, t1).await.unwrap()),
        ["s2", "s3", "s1"],
        "newest first, expired left out"
    );

    assert!(
        !s.revoke_session(&aid("a2"), &sid("s1"), t1).await.unwrap(),
        "not the account's session"
    );
    assert!(s.revoke_session(&a, &sid("s1"), t1).await.unwrap());
    assert!(!s.revoke_session(&a, &sid("s1"), t1).await.unwrap());
    assert!(!s.revoke_session(&a, &sid("zz"), t1).await.unwrap());
    let revoked = s.session_by_secret("sh1").await.unwrap().unwrap();
    assert_eq!(
        revoked.revoked_at,
        Some(t1),
        "revoked sessions are still found"
    );
    assert_eq!(ids(s.list_sessions(&a, t1).await.unwrap()), ["s2", "s3"]);

    // Keep s2; s3 and the expired-but-unrevoked one are revoked.
    assert_eq!(
        s.revoke_admin_sessions(&a, Some(&sid("s2")), t1)
            .await
            .unwrap(),
        2
    );
    assert_eq!(ids(s.list_sessions(&a, t1).await.unwrap()), ["s2"]);
    assert_eq!(s.revoke_admin_sessions(&a, None, t1).await.unwrap(), 1);
    assert!(s.list_sessions(&a, t1).await.unwrap().is_empty());
    assert_eq!(
        ids(s.list_sessions(&aid("a2"), t1).await.unwrap()),
        ["x1"],
        "other accounts are untouched"
    );
}

async fn a_suspension_is_kept_until_reinstated_and_revokes_everything_at_once(b: Backend) {
    let (s, _d) = b.open().await;
    let a = aid("a1");
    add_admin(&*s, "a1").await;
    add_admin(&*s, "a2").await;
    let ttl = Duration::hours(1);
    s.insert_session(&session("s1", "a1", now(), ttl), "sh1")
        .await
        .unwrap();
    s.insert_session(&session("other", "a2", now(), ttl), "sho")
        .await
        .unwrap();
    s.insert_token(&token("t1", "a1", now()), "h1")
        .await
        .unwrap();
    let later = now() + Duration::minutes(1);
    assert_eq!(
        s.suspend_admin(&a, later, "bulk reads").await.unwrap(),
        Some((1, 1))
    );
    assert_eq!(
        s.suspend_admin(&a, later, "again").await.unwrap(),
        None,
        "already suspended"
    );
    assert_eq!(s.suspend_admin(&aid("zz"), later, "x").await.unwrap(), None);
    let got = s.admin(&a).await.unwrap().unwrap();
    assert_eq!(
        got.suspended.as_deref(),
        Some(&Suspension {
            at: later,
            reason: "bulk reads".into()
        })
    );
    assert!(got.disabled_at.is_none(), "suspended, not disabled");
    assert_eq!(
        s.session_by_secret("sh1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(later)
    );
    assert!(s
        .session_by_secret("sho")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());
    // Listed with the account too.
    let listed = s.admin_by_name("name-a1").await.unwrap().unwrap();
    assert_eq!(listed.suspended.map(|s| s.at), Some(later));

    assert!(s.reinstate_admin(&a).await.unwrap());
    assert!(!s.reinstate_admin(&a).await.unwrap(), "not suspended");
    assert!(!s.reinstate_admin(&aid("a2")).await.unwrap());
    let got = s.admin(&a).await.unwrap().unwrap();
    assert_eq!(got.suspended, None);
    assert!(
        s.token(&TokenId::parse("t1").unwrap())
            .await
            .unwrap()
            .unwrap()
            .0
            .revoked_at
            .is_some(),
        "tokens stay revoked after reinstatement"
    );
}

/// A record whose detail, actor or target is long (a bulk action's list of
/// devices, a device-supplied string) is kept whole: an index on those
/// columns must never make an append fail (the action it records would be
/// refused), whatever the text, incompressible included.
async fn long_audit_text_is_appended_and_read_back_whole(b: Backend) {
    let (s, _d) = b.open().await;
    // Incompressible: hex of a hash chain, 96 KiB.
    let mut long = String::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while long.len() < 96 * 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        long.push_str(&format!("{x:016x}"));
    }
    let e = AuditEvent {
        actor: format!("admin:{}", &long[..8192]),
        target: Some(long[..16384].to_owned()),
        detail: Some(long.clone()),
        ..event("person.read", now())
    };
    let seq = append(&*s, &e).await.unwrap();
    let back = s.list_audit(seq - 1, 1).await.unwrap();
    assert_eq!(back[0].event, e);
    // And it is found by the access scan like any other.
    let found = s
        .newest_audit_by_action(
            &["person.read"],
            now(),
            now() + Duration::seconds(1),
            "",
            10,
        )
        .await
        .unwrap();
    assert_eq!(found.total, 1);
}

async fn an_audit_batch_is_appended_whole_and_in_order(b: Backend) {
    let (s, _d) = b.open().await;
    let first = append(&*s, &event("auth.login", now())).await.unwrap();
    let batch: Vec<AuditEvent> = (0..3)
        .map(|i| AuditEvent {
            target: Some(format!("p{i}")),
            ..event("people.read", now())
        })
        .collect();
    let seqs = append_batch(&*s, &batch).await.unwrap();
    assert_eq!(seqs, [first + 1, first + 2, first + 3]);
    assert!(append_batch(&*s, &[]).await.unwrap().is_empty());
    let all = s.list_audit(0, 10).await.unwrap();
    assert_eq!(
        all.iter()
            .map(|r| r.event.target.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["", "p0", "p1", "p2"]
    );
}

async fn audit_log_appends_pages_and_refuses_rewrites(b: Backend) {
    let (s, d) = b.open().await;
    let mut seqs = Vec::new();
    for i in 0..5 {
        let e = AuditEvent {
            target: Some(format!("t{i}")),
            detail: (i == 0).then(|| "first".to_owned()),
            ..event("auth.login", now() + Duration::seconds(i))
        };
        seqs.push(append(&*s, &e).await.unwrap());
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
    let all = s.list_audit(0, 100).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), seqs);
    assert_eq!(all[0].event.detail.as_deref(), Some("first"));
    assert_eq!(all[4].event.at, now() + Duration::seconds(4));
    assert_eq!(all[4].event.target.as_deref(), Some("t4"));
    let page = s.list_audit(seqs[1], 2).await.unwrap();
    assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), &seqs[2..4]);
    assert!(s.list_audit(seqs[4], 10).await.unwrap().is_empty());

    // The database itself refuses to rewrite history.
    let err = d
        .raw("UPDATE audit_log SET actor = 'someone else'")
        .unwrap_err();
    assert!(err.contains("append-only"), "{err}");
    let err = d.raw("DELETE FROM audit_log").unwrap_err();
    assert!(err.contains("append-only"), "{err}");
    assert_eq!(s.list_audit(0, 100).await.unwrap(), all);
}

async fn reset_clears_factors_and_revokes_everything_at_once(b: Backend) {
    let (s, _d) = b.open().await;
    s.insert_admin(&admin("r1", "rita", Role::Helpdesk), &password("h"))
        .await
        .unwrap();
    s.set_totp_pending(&aid("r1"), Some(b"sealed"))
        .await
        .unwrap();
    assert!(s.activate_totp(&aid("r1"), 7).await.unwrap());
    s.replace_recovery_codes(&aid("r1"), &["c1".into(), "c2".into()])
        .await
        .unwrap();
    let cred = WebauthnCredential {
        id: "cred-r1".into(),
        admin_id: aid("r1"),
        name: "key".into(),
        data: "{}".into(),
        created_at: now(),
        last_used_at: None,
        usable_from: None,
    };
    assert!(s.insert_webauthn(&cred).await.unwrap());
    let session = AdminSession {
        id: SessionId::parse("sess-r1").unwrap(),
        admin_id: aid("r1"),
        stage: SessionStage::Full,
        created_at: now(),
        last_seen_at: now(),
        expires_at: now() + Duration::hours(8),
        source: "10.0.0.1".into(),
        client_hash: "ua".into(),
        step_up_at: None,
        revoked_at: None,
    };
    s.insert_session(&session, "secret-r1").await.unwrap();
    assert_eq!(s.add_login_failure(&aid("r1")).await.unwrap(), 1);
    s.set_login_block(&aid("r1"), None, Some(now()))
        .await
        .unwrap();

    let later = now() + Duration::days(1);
    assert_eq!(
        s.reset_admin(&aid("r1"), "new-hash", later).await.unwrap(),
        Some((1, 0))
    );
    let a = s.admin(&aid("r1")).await.unwrap().unwrap();
    assert!(a.must_change_password && !a.totp_enrolled);
    assert_eq!((a.failed_logins, a.locked_at), (0, None));
    assert_eq!(a.password_set_at, later);
    let c = s.admin_credentials(&aid("r1")).await.unwrap().unwrap();
    assert_eq!(c.password_hash, "new-hash");
    assert_eq!((c.totp_sealed, c.totp_last_step), (None, None));
    assert!(s.webauthn_credentials(&aid("r1")).await.unwrap().is_empty());
    assert_eq!(s.recovery_codes_left(&aid("r1")).await.unwrap(), 0);
    assert!(s
        .session_by_secret("secret-r1")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());
    assert_eq!(s.reset_admin(&aid("zz"), "h", later).await.unwrap(), None);
}

async fn factors_are_removed_one_by_one(b: Backend) {
    let (s, _d) = b.open().await;
    for (id, name) in [("f1", "fay"), ("f2", "flo")] {
        s.insert_admin(&admin(id, name, Role::Owner), &password("h"))
            .await
            .unwrap();
    }
    assert!(!s.clear_totp(&aid("f1")).await.unwrap());
    s.set_totp_pending(&aid("f1"), Some(b"sealed"))
        .await
        .unwrap();
    assert!(s.activate_totp(&aid("f1"), 3).await.unwrap());
    assert!(s.clear_totp(&aid("f1")).await.unwrap());
    assert!(!s.admin(&aid("f1")).await.unwrap().unwrap().totp_enrolled);
    let cred = WebauthnCredential {
        id: "cred-f1".into(),
        admin_id: aid("f1"),
        name: "key".into(),
        data: "{}".into(),
        created_at: now(),
        last_used_at: None,
        usable_from: None,
    };
    assert!(s.insert_webauthn(&cred).await.unwrap());
    // Another account cannot delete it.
    assert!(!s.delete_webauthn(&aid("f2"), "cred-f1").await.unwrap());
    assert!(s.delete_webauthn(&aid("f1"), "cred-f1").await.unwrap());
    assert!(!s.delete_webauthn(&aid("f1"), "cred-f1").await.unwrap());
}

fn pid(s: &str) -> PersonId {
    PersonId::parse(s).unwrap()
}

fn person(id: &str, email: &str, user_id: &str) -> PersonRecord {
    PersonRecord {
        id: pid(id),
        status: EmploymentStatus::Active,
        departed_at: None,
        created_at: now(),
        updated_at: now(),
        key_id: "mk1".into(),
        wrapped_key: format!("wrapped-{id}").into_bytes(),
        sealed: format!("sealed-{id}").into_bytes(),
        email_index: email.into(),
        user_id_index: user_id.into(),
        department_index: None,
    }
}

fn dup(row: usize, index: PersonIndex) -> Result<(), PeopleConflict> {
    Err(PeopleConflict::Duplicate { row, index })
}

async fn people_round_trip_and_lookups(b: Backend) {
    let (s, _d) = b.open().await;
    let mut p = person("p1", "e1", "u1");
    p.status = EmploymentStatus::Departed;
    p.departed_at = Some(now() + Duration::days(3));
    p.updated_at = now() + Duration::days(4);
    assert_eq!(
        s.insert_people(std::slice::from_ref(&p)).await.unwrap(),
        Ok(())
    );
    assert_eq!(s.insert_people(&[]).await.unwrap(), Ok(()));
    assert_eq!(s.person(&pid("p1")).await.unwrap(), Some(p.clone()));
    assert_eq!(s.person(&pid("p2")).await.unwrap(), None);
    assert_eq!(
        s.person_by_index(PersonIndex::Email, "e1").await.unwrap(),
        Some(p.clone())
    );
    assert_eq!(
        s.person_by_index(PersonIndex::UserId, "u1").await.unwrap(),
        Some(p.clone())
    );
    assert_eq!(
        s.person_by_index(PersonIndex::Email, "u1").await.unwrap(),
        None,
        "indexes are looked up in their own column"
    );
    assert_eq!(
        s.person_by_index(PersonIndex::UserId, "e1").await.unwrap(),
        None
    );
    assert_eq!(s.count_people().await.unwrap(), 1);
}

async fn people_batch_with_an_in_batch_duplicate_stores_nothing(b: Backend) {
    let (s, _d) = b.open().await;
    let batch = [
        person("p1", "e1", "u1"),
        person("p2", "e2", "u2"),
        person("p3", "e1", "u3"),
    ];
    assert_eq!(
        s.insert_people(&batch).await.unwrap(),
        dup(2, PersonIndex::Email)
    );
    let batch = [
        person("p1", "e1", "u1"),
        person("p2", "e2", "u1"),
        person("p3", "e3", "u3"),
    ];
    assert_eq!(
        s.insert_people(&batch).await.unwrap(),
        dup(1, PersonIndex::UserId)
    );
    assert_eq!(s.count_people().await.unwrap(), 0);
    assert!(s.person(&pid("p1")).await.unwrap().is_none());
    assert!(s.list_people(None, 10).await.unwrap().is_empty());
}

async fn people_batch_colliding_with_a_stored_person_stores_nothing(b: Backend) {
    let (s, _d) = b.open().await;
    let stored = person("p0", "e0", "u0");
    s.insert_people(std::slice::from_ref(&stored))
        .await
        .unwrap()
        .unwrap();
    let batch = [
        person("p1", "e1", "u1"),
        person("p2", "e2", "u2"),
        person("p3", "e3", "u0"),
        person("p4", "e4", "u4"),
    ];
    assert_eq!(
        s.insert_people(&batch).await.unwrap(),
        dup(2, PersonIndex::UserId)
    );
    let batch = [
        person("p1", "e1", "u1"),
        person("p2", "e2", "u2"),
        person("p3", "e0", "u3"),
    ];
    assert_eq!(
        s.insert_people(&batch).await.unwrap(),
        dup(2, PersonIndex::Email)
    );
    assert_eq!(s.count_people().await.unwrap(), 1);
    assert!(s.person(&pid("p1")).await.unwrap().is_none());
    assert_eq!(s.person(&pid("p0")).await.unwrap(), Some(stored));

    // The first offending row is named, whichever kind of collision it is.
    let batch = [
        person("p1", "e1", "u1"),
        person("p2", "e0", "u2"),
        person("p3", "e1", "u3"),
    ];
    assert_eq!(
        s.insert_people(&batch).await.unwrap(),
        dup(1, PersonIndex::Email)
    );
    // E-mail is reported before user ID.
    let batch = [person("p1", "e1", "u1"), person("p2", "e0", "u1")];
    assert_eq!(
        s.insert_people(&batch).await.unwrap(),
        dup(1, PersonIndex::Email)
    );
    assert_eq!(s.count_people().await.unwrap(), 1);
    // A repeated ID is not an index conflict but still stores nothing.
    let batch = [person("p1", "e1", "u1"), person("p0", "e9", "u9")];
    assert!(s.insert_people(&batch).await.is_err());
    assert_eq!(s.count_people().await.unwrap(), 1);
}

async fn people_large_batch_stores_all_and_pages_in_order(b: Backend) {
    let (s, _d) = b.open().await;
    let batch: Vec<PersonRecord> = (0..1_000)
        .rev()
        .map(|i| person(&format!("p{i:04}"), &format!("e{i}"), &format!("u{i}")))
        .collect();
    assert_eq!(s.insert_people(&batch).await.unwrap(), Ok(()));
    assert_eq!(s.count_people().await.unwrap(), 1_000);

    let mut seen = Vec::new();
    let mut after: Option<PersonId> = None;
    loop {
        let page = s.list_people(after.as_ref(), 300).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 300);
        after = page.last().map(|p| p.id.clone());
        seen.extend(page);
    }
    let mut expected = batch.clone();
    expected.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    assert_eq!(seen, expected);
    assert_eq!(
        s.list_people(Some(&pid("p0997")), 10)
            .await
            .unwrap()
            .iter()
            .map(|p| p.id.as_str().to_owned())
            .collect::<Vec<_>>(),
        ["p0998", "p0999"]
    );
}

async fn update_person_replaces_fields_but_not_creation_or_key(b: Backend) {
    let (s, _d) = b.open().await;
    let batch = [person("p1", "e1", "u1"), person("p2", "e2", "u2")];
    s.insert_people(&batch).await.unwrap().unwrap();

    let mut changed = person("p1", "e1-new", "u1-new");
    changed.status = EmploymentStatus::Departed;
    changed.departed_at = Some(now() + Duration::days(1));
    changed.updated_at = now() + Duration::days(1);
    changed.sealed = b"resealed".to_vec();
    changed.created_at = now() + Duration::days(9);
    changed.key_id = "mk2".into();
    changed.wrapped_key = b"other".to_vec();
    assert_eq!(s.update_person(&changed).await.unwrap(), Ok(true));
    let got = s.person(&pid("p1")).await.unwrap().unwrap();
    assert_eq!(got.status, EmploymentStatus::Departed);
    assert_eq!(got.departed_at, changed.departed_at);
    assert_eq!(got.updated_at, changed.updated_at);
    assert_eq!(got.sealed, b"resealed");
    assert_eq!(got.email_index, "e1-new");
    assert_eq!(got.user_id_index, "u1-new");
    assert_eq!(got.created_at, now(), "creation time is kept");
    assert_eq!(got.key_id, "mk1", "the key is kept");
    assert_eq!(got.wrapped_key, b"wrapped-p1");
    assert!(s
        .person_by_index(PersonIndex::Email, "e1")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        s.person_by_index(PersonIndex::UserId, "u1-new")
            .await
            .unwrap()
            .map(|p| p.id),
        Some(pid("p1"))
    );

    // Back to active: the departure time is cleared; the same indexes are fine.
    let mut back = got.clone();
    back.status = EmploymentStatus::OnLeave;
    back.departed_at = None;
    assert_eq!(s.update_person(&back).await.unwrap(), Ok(true));
    assert_eq!(s.person(&pid("p1")).await.unwrap(), Some(back.clone()));

    // Another person's index: refused, nothing changed.
    let mut clash = back.clone();
    clash.email_index = "e2".into();
    clash.sealed = b"nope".to_vec();
    assert_eq!(
        s.update_person(&clash).await.unwrap(),
        Err(PeopleConflict::Duplicate {
            row: 0,
            index: PersonIndex::Email
        })
    );
    let mut clash = back.clone();
    clash.user_id_index = "u2".into();
    assert_eq!(
        s.update_person(&clash).await.unwrap(),
        Err(PeopleConflict::Duplicate {
            row: 0,
            index: PersonIndex::UserId
        })
    );
    assert_eq!(s.person(&pid("p1")).await.unwrap(), Some(back));

    assert_eq!(
        s.update_person(&person("ghost", "e9", "u9")).await.unwrap(),
        Ok(false)
    );
    assert_eq!(s.count_people().await.unwrap(), 2);
}

async fn unknown_stored_employment_status_is_an_error(b: Backend) {
    let (s, d) = b.open().await;
    s.insert_people(&[person("p1", "e1", "u1")])
        .await
        .unwrap()
        .unwrap();
    d.raw("UPDATE people SET status = 'retired' WHERE id = 'p1'")
        .unwrap();
    assert!(s.person(&pid("p1")).await.is_err());
    assert!(s.person_by_index(PersonIndex::Email, "e1").await.is_err());
    assert!(s.list_people(None, 10).await.is_err());
}

async fn devices_are_assigned_to_people(b: Backend) {
    let (s, _d) = b.open().await;
    for udid in ["DEV1", "DEV2", "DEV3", "DEV4"] {
        enroll(&*s, udid).await;
    }
    s.insert_people(&[
        person("p1", "e1", "u1"),
        person("p2", "e2", "u2"),
        person("p3", "e3", "u3"),
    ])
    .await
    .unwrap()
    .unwrap();
    assert!(s
        .assign_device(&key("DEV2"), Some(&pid("p1")))
        .await
        .unwrap());
    assert!(s
        .assign_device(&key("DEV1"), Some(&pid("p1")))
        .await
        .unwrap());
    assert!(s
        .assign_device(&key("DEV3"), Some(&pid("p2")))
        .await
        .unwrap());
    assert!(
        !s.assign_device(&key("GHOST"), Some(&pid("p1")))
            .await
            .unwrap(),
        "no such device"
    );
    let e = s
        .assign_device(&key("DEV4"), Some(&pid("nobody")))
        .await
        .unwrap_err();
    assert!(e.message().contains("no such person"), "{e}");
    assert_eq!(s.device_person(&key("DEV4")).await.unwrap(), None);

    assert_eq!(
        s.person_devices(&pid("p1")).await.unwrap(),
        [key("DEV1"), key("DEV2")]
    );
    assert_eq!(s.person_devices(&pid("p3")).await.unwrap(), []);
    assert_eq!(
        s.device_person(&key("DEV3")).await.unwrap(),
        Some(pid("p2"))
    );
    assert_eq!(s.device_person(&key("GHOST")).await.unwrap(), None);
    assert_eq!(
        s.people_devices(&[pid("p2"), pid("p3"), pid("p1"), pid("nobody"), pid("p2")])
            .await
            .unwrap(),
        vec![
            vec![key("DEV3")],
            vec![],
            vec![key("DEV1"), key("DEV2")],
            vec![],
            vec![key("DEV3")],
        ]
    );
    assert!(s.people_devices(&[]).await.unwrap().is_empty());

    // Reassigning moves the device; None unassigns it.
    assert!(s
        .assign_device(&key("DEV3"), Some(&pid("p1")))
        .await
        .unwrap());
    assert!(s.person_devices(&pid("p2")).await.unwrap().is_empty());
    assert!(s.assign_device(&key("DEV1"), None).await.unwrap());
    assert_eq!(s.device_person(&key("DEV1")).await.unwrap(), None);
    assert_eq!(
        s.person_devices(&pid("p1")).await.unwrap(),
        [key("DEV2"), key("DEV3")]
    );
    assert!(!s.assign_device(&key("GHOST"), None).await.unwrap());
}

async fn people_devices_spans_many_chunks(b: Backend) {
    let (s, _d) = b.open().await;
    let batch: Vec<PersonRecord> = (0..1_200)
        .map(|i| person(&format!("p{i:04}"), &format!("e{i}"), &format!("u{i}")))
        .collect();
    s.insert_people(&batch).await.unwrap().unwrap();
    for (udid, p) in [("DEVA", "p0003"), ("DEVB", "p0700"), ("DEVC", "p1199")] {
        enroll(&*s, udid).await;
        assert!(s.assign_device(&key(udid), Some(&pid(p))).await.unwrap());
    }
    let ids: Vec<PersonId> = batch.iter().map(|p| p.id.clone()).rev().collect();
    let got = s.people_devices(&ids).await.unwrap();
    assert_eq!(got.len(), 1_200);
    for (id, devices) in ids.iter().zip(&got) {
        let expected = match id.as_str() {
            "p0003" => vec![key("DEVA")],
            "p0700" => vec![key("DEVB")],
            "p1199" => vec![key("DEVC")],
            _ => vec![],
        };
        assert_eq!(devices, &expected, "{id}");
    }
}

async fn purge_destroys_keys_rows_and_links_and_leaves_tombstones(b: Backend) {
    let (s, _d) = b.open().await;
    enroll(&*s, "DEVP").await;
    let mut gone = person("p1", "e1", "u1");
    gone.status = EmploymentStatus::Departed;
    gone.departed_at = Some(now() - Duration::days(40));
    let mut recent = person("p2", "e2", "u2");
    recent.status = EmploymentStatus::Departed;
    recent.departed_at = Some(now() - Duration::days(1));
    let mut older = person("p3", "e3", "u3");
    older.status = EmploymentStatus::Departed;
    older.departed_at = Some(now() - Duration::days(50));
    s.insert_people(&[gone, recent, older, person("p4", "e4", "u4")])
        .await
        .unwrap()
        .unwrap();
    assert!(s
        .assign_device(&key("DEVP"), Some(&pid("p1")))
        .await
        .unwrap());
    let due = s
        .people_due_for_purge(now() - Duration::days(30), 10)
        .await
        .unwrap();
    assert_eq!(due, vec![pid("p3"), pid("p1")], "oldest departure first");
    assert_eq!(
        s.people_due_for_purge(now() - Duration::days(30), 1)
            .await
            .unwrap(),
        vec![pid("p3")]
    );
    let purged = s
        .purge_people(&[pid("p1"), pid("p3"), pid("nobody")], now())
        .await
        .unwrap();
    assert_eq!(purged, 2);
    assert!(s.person(&pid("p1")).await.unwrap().is_none());
    assert!(s.is_purged(&pid("p1")).await.unwrap());
    assert!(!s.is_purged(&pid("p2")).await.unwrap());
    assert!(!s.is_purged(&pid("nobody")).await.unwrap());
    assert_eq!(s.device_person(&key("DEVP")).await.unwrap(), None);
    assert_eq!(s.count_people().await.unwrap(), 2);
    s.forget_deleted().await.unwrap();
    // The key row is gone, not just the person row.
    let keys = _d.raw_i64("SELECT COUNT(*) FROM person_keys WHERE person_id IN ('p1', 'p3')");
    assert_eq!(keys, 0);
}

async fn offboarding_closes_linked_accounts_and_marks_devices(b: Backend) {
    let (s, _d) = b.open().await;
    enroll(&*s, "DEVO").await;
    s.insert_people(&[person("po", "eo", "uo"), person("px", "ex", "ux")])
        .await
        .unwrap()
        .unwrap();
    let a = add_admin(&*s, "ao").await;
    let other = add_admin(&*s, "ax").await;
    assert!(s.link_admin_person(&a.id, Some(&pid("po"))).await.unwrap());
    assert!(!s
        .link_admin_person(&aid("ghost"), Some(&pid("po")))
        .await
        .unwrap());
    s.insert_token(&token("tok-ao", "ao", now()), "h1")
        .await
        .unwrap();
    s.insert_token(&token("tok-ax", "ax", now()), "h2")
        .await
        .unwrap();

    let linked = s.person_admins(&pid("po")).await.unwrap();
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0].id, a.id);
    let closed = s
        .offboard_person(&pid("po"), now(), &[a.id.clone(), other.id.clone()])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(closed, vec![(a.id.clone(), a.name.clone(), 0, 1)]);
    let p = s.person(&pid("po")).await.unwrap().unwrap();
    assert_eq!(p.status, EmploymentStatus::Departed);
    assert_eq!(p.departed_at, Some(now()));
    assert!(s.admin(&a.id).await.unwrap().unwrap().disabled_at.is_some());
    assert!(s
        .admin(&other.id)
        .await
        .unwrap()
        .unwrap()
        .disabled_at
        .is_none());
    assert!(s
        .token(&TokenId::parse("tok-ax").unwrap())
        .await
        .unwrap()
        .unwrap()
        .0
        .revoked_at
        .is_none());
    // Again: nothing more to close, the first departure time is kept.
    let later = now() + Duration::days(2);
    assert_eq!(
        s.offboard_person(&pid("po"), later, std::slice::from_ref(&a.id))
            .await
            .unwrap(),
        Some(vec![])
    );
    assert_eq!(
        s.person(&pid("po")).await.unwrap().unwrap().departed_at,
        Some(now())
    );
    assert_eq!(
        s.offboard_person(&pid("nobody"), now(), &[]).await.unwrap(),
        None
    );

    let cmd = CommandUuid::parse("CMD-OFF").unwrap();
    assert_eq!(s.device_offboarding(&key("DEVO")).await.unwrap(), None);
    s.set_device_offboarding(&key("DEVO"), Some((&cmd, now() + Duration::days(7))))
        .await
        .unwrap();
    assert_eq!(
        s.device_offboarding(&key("DEVO")).await.unwrap(),
        Some((cmd.clone(), now() + Duration::days(7)))
    );
    assert!(s.offboarding_overdue(now()).await.unwrap().is_empty());
    assert_eq!(
        s.offboarding_overdue(now() + Duration::days(8))
            .await
            .unwrap(),
        vec![key("DEVO")]
    );
    s.set_device_offboarding(&key("DEVO"), None).await.unwrap();
    assert_eq!(s.device_offboarding(&key("DEVO")).await.unwrap(), None);
}

async fn a_device_lists_its_certificates_newest_first(b: Backend) {
    let (s, _d) = b.open().await;
    for (fp, day) in [("fa", 1), ("fb", 2)] {
        let c = DeviceCertificate {
            fingerprint: fp.into(),
            serial: fp.into(),
            profile_id: None,
            device: None,
            renewed_from: None,
            not_after: now() + Duration::days(30),
            issued_at: now() + Duration::days(day),
            revoked_at: None,
        };
        s.insert_certificate(&c).await.unwrap();
        s.bind_certificate(fp, &key("DEVC")).await.unwrap();
    }
    let certs = s.device_certificates(&key("DEVC")).await.unwrap();
    let fps: Vec<&str> = certs.iter().map(|c| c.fingerprint.as_str()).collect();
    assert_eq!(fps, ["fb", "fa"]);
    assert!(s
        .device_certificates(&key("NONE"))
        .await
        .unwrap()
        .is_empty());
}

async fn data_keys_are_rewrapped_only_from_the_expected_key(b: Backend) {
    let (s, _d) = b.open().await;
    s.insert_people(&[person("r1", "e1", "u1"), person("r2", "e2", "u2")])
        .await
        .unwrap()
        .unwrap();
    let left = s.person_keys_not_under("mk2", 10).await.unwrap();
    assert_eq!(left.len(), 2);
    assert_eq!(
        left[0],
        (pid("r1"), "mk1".to_owned(), b"wrapped-r1".to_vec())
    );
    let n = s
        .rewrap_person_keys(&[
            (pid("r1"), "mk1".into(), "mk2".into(), b"new-r1".to_vec()),
            // Stale: r2 is not wrapped by "mk9"; nothing changes.
            (pid("r2"), "mk9".into(), "mk2".into(), b"new-r2".to_vec()),
        ])
        .await
        .unwrap();
    assert_eq!(n, 1);
    let r1 = s.person(&pid("r1")).await.unwrap().unwrap();
    assert_eq!(
        (r1.key_id.as_str(), r1.wrapped_key.as_slice()),
        ("mk2", &b"new-r1"[..])
    );
    assert_eq!(
        s.person_keys_not_under("mk2", 10).await.unwrap(),
        vec![(pid("r2"), "mk1".to_owned(), b"wrapped-r2".to_vec())]
    );
}

async fn approvals_are_decided_once_and_expire(b: Backend) {
    let (s, _d) = b.open().await;
    let a = Approval {
        id: "ap1".into(),
        action: "erase_devices".into(),
        devices: vec![key("D1"), key("D2")],
        params: json!({"command": {"RequestType": "EraseDevice"}}),
        reason: "offboarding".into(),
        requested_by: "admin:dana".into(),
        requested_by_admin: Some("a-dana".into()),
        requested_at: now(),
        expires_at: now() + Duration::hours(24),
        status: ApprovalStatus::Pending,
        decided_by: None,
        decided_at: None,
        used_at: None,
    };
    s.insert_approval(&a).await.unwrap();
    let mut b = a.clone();
    b.id = "ap2".into();
    b.expires_at = now() + Duration::hours(1);
    s.insert_approval(&b).await.unwrap();
    assert_eq!(s.approval("ap1").await.unwrap().unwrap(), a);
    assert_eq!(s.pending_approvals(now()).await.unwrap().len(), 2);
    let later = now() + Duration::hours(2);
    assert_eq!(s.pending_approvals(later).await.unwrap(), vec![a.clone()]);
    assert!(
        !s.decide_approval("ap2", ApprovalStatus::Approved, "admin:omar", later)
            .await
            .unwrap(),
        "expired"
    );
    assert!(s
        .decide_approval("ap1", ApprovalStatus::Approved, "admin:omar", later)
        .await
        .unwrap());
    assert!(
        !s.decide_approval("ap1", ApprovalStatus::Rejected, "admin:omar", later)
            .await
            .unwrap(),
        "decided once"
    );
    let got = s.approval("ap1").await.unwrap().unwrap();
    assert_eq!(got.status, ApprovalStatus::Approved);
    assert_eq!(got.decided_by.as_deref(), Some("admin:omar"));
    assert!(s.approval("nope").await.unwrap().is_none());
    // An approved request is used once; a pending or unknown one never.
    assert!(!s.use_approval("ap2", later).await.unwrap(), "not approved");
    assert!(s.use_approval("ap1", later).await.unwrap());
    assert!(!s.use_approval("ap1", later).await.unwrap(), "used once");
    assert_eq!(
        s.approval("ap1").await.unwrap().unwrap().used_at,
        Some(later)
    );
    assert!(!s.use_approval("nope", later).await.unwrap());
}

async fn audit_records_are_chained_and_checkpoints_kept(b: Backend) {
    let (s, _d) = b.open().await;
    let ev = |action: &str| AuditEvent {
        at: now(),
        actor: "system".into(),
        source: None,
        action: action.into(),
        target: None,
        outcome: "success".into(),
        request_id: None,
        detail: None,
    };
    assert_eq!(s.last_audit_hash().await.unwrap(), None);
    for a in ["one", "two", "three"] {
        append(&*s, &ev(a)).await.unwrap();
    }
    let chain = s.audit_chain(0, 10).await.unwrap();
    assert_eq!(chain.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(chain[0].prev_hash.as_deref(), Some(&chain::GENESIS[..]));
    assert_eq!(chain[1].prev_hash, chain[0].hash);
    assert_eq!(chain[2].prev_hash, chain[1].hash);
    assert_ne!(chain[1].hash, chain[0].hash);
    assert_eq!(
        s.last_audit_hash().await.unwrap(),
        Some((3, chain[2].hash.clone().unwrap()))
    );
    let cp = chain::Checkpoint {
        seq: 3,
        hash: chain[2].hash.clone().unwrap(),
        at: 1,
        signature: vec![1, 2, 3],
    };
    s.insert_audit_checkpoint(&cp).await.unwrap();
    s.insert_audit_checkpoint(&cp).await.unwrap();
    assert_eq!(s.audit_checkpoints().await.unwrap(), vec![cp]);
}

async fn audit_records_are_found_by_action_time_and_actor(b: Backend) {
    let (s, _d) = b.open().await;
    let ev = |action: &str, actor: &str, at: OffsetDateTime| AuditEvent {
        at,
        actor: actor.into(),
        source: None,
        action: action.into(),
        target: Some("p1".into()),
        outcome: "success".into(),
        request_id: None,
        detail: Some("fields=name".into()),
    };
    append(&*s, &ev("people.read", "a", now())).await.unwrap();
    append(&*s, &ev("people.lookup", "a", now())).await.unwrap();
    append(&*s, &ev("people.read", "b", now() + Duration::hours(1)))
        .await
        .unwrap();
    append(&*s, &ev("people.export", "a", now() + Duration::hours(2)))
        .await
        .unwrap();
    let all = s
        .audit_by_action(
            &["people.read", "people.export"],
            now(),
            now() + Duration::days(1),
            None,
        )
        .await
        .unwrap();
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 3, 4]);
    let a = s
        .audit_by_action(
            &["people.read", "people.export"],
            now(),
            now() + Duration::days(1),
            Some("a"),
        )
        .await
        .unwrap();
    assert_eq!(a.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 4]);
    let window = s
        .audit_by_action(&["people.read"], now(), now() + Duration::hours(1), None)
        .await
        .unwrap();
    assert_eq!(window.len(), 1, "the end is exclusive");
}

/// The newest records of some actions in a window, with their counts:
/// the counts cover the whole window, the records stop at the limit.
async fn the_newest_records_of_some_actions_come_with_their_counts(b: Backend) {
    let (s, _d) = b.open().await;
    let ev = |action: &str, detail: Option<&str>, at: OffsetDateTime| AuditEvent {
        detail: detail.map(str::to_owned),
        ..event(action, at)
    };
    let high = Some("severity=high reads=9");
    let medium = Some("severity=medium reads=2");
    let mut events = Vec::new();
    for i in 0..5 {
        events.push(ev("alert.a", high, now() + Duration::minutes(i)));
        events.push(ev("alert.b", medium, now() + Duration::minutes(i)));
    }
    events.push(ev("alert.b", None, now() + Duration::minutes(9)));
    events.push(ev("other", high, now() + Duration::minutes(9)));
    events.push(ev("alert.a", high, now() + Duration::hours(3)));
    append_batch(&*s, &events).await.unwrap();
    let to = now() + Duration::hours(1);
    let found = s
        .newest_audit_by_action(&["alert.a", "alert.b"], now(), to, "severity=high ", 3)
        .await
        .unwrap();
    assert_eq!((found.total, found.with_prefix), (11, 5));
    // Newest first, across both actions: seq 11 (alert.b at 9 min), then
    // the two of minute 4.
    let seqs: Vec<i64> = found.newest.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [11, 10, 9]);
    let none = s
        .newest_audit_by_action(&["alert.c"], now(), to, "severity=high ", 3)
        .await
        .unwrap();
    assert_eq!(none, NewestByAction::default());
}

async fn a_sink_cursor_survives_and_never_moves_backwards(b: Backend) {
    let (s, _d) = b.open().await;
    assert_eq!(s.sink_state("siem").await.unwrap(), None);
    let mut st = SinkState {
        name: "siem".into(),
        delivered_seq: 0,
        delivered_at: None,
        failing_since: Some(now()),
        last_error: Some("connection refused".into()),
    };
    s.save_sink_state(&st).await.unwrap();
    assert_eq!(s.sink_state("siem").await.unwrap(), Some(st.clone()));
    st.delivered_seq = 40;
    st.delivered_at = Some(now());
    st.failing_since = None;
    st.last_error = None;
    s.save_sink_state(&st).await.unwrap();
    // A late writer with an older cursor does not rewind it.
    s.save_sink_state(&SinkState {
        delivered_seq: 12,
        ..st.clone()
    })
    .await
    .unwrap();
    assert_eq!(
        s.sink_state("siem").await.unwrap().unwrap().delivered_seq,
        40
    );
    assert_eq!(s.sink_state("other").await.unwrap(), None);
}

async fn incidents_keep_who_was_told_when_their_scope_changes(b: Backend) {
    let (s, _d) = b.open().await;
    let i = Incident {
        id: "inc1".into(),
        title: "Bulk read".into(),
        status: IncidentStatus::Open,
        opened_at: now(),
        opened_by: "system".into(),
        alert_seq: Some(42),
        discovered_at: now(),
        window_from: now() - Duration::days(1),
        window_to: now(),
        actor: Some("token:t:x".into()),
        facts: IncidentFacts::default(),
        updated_at: now(),
    };
    assert!(s.insert_incident(&i).await.unwrap());
    let again = Incident {
        id: "inc2".into(),
        ..i.clone()
    };
    assert!(!s.insert_incident(&again).await.unwrap(), "one per alert");
    assert_eq!(s.incident("inc1").await.unwrap().unwrap(), i);
    let fields = |f: &[&str]| f.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    s.set_incident_people(
        "inc1",
        &[
            ("p1".into(), fields(&["email"])),
            ("p2".into(), fields(&["name", "email"])),
            ("p3".into(), fields(&["phone"])),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        s.mark_notified("inc1", Some(&["p1".into(), "p9".into()]), now())
            .await
            .unwrap(),
        1
    );
    // Rescoped: p2 gains a field, p3 (never told) drops out, p1 (told)
    // stays even though the new scope misses it.
    s.set_incident_people(
        "inc1",
        &[("p2".into(), fields(&["name", "email", "phone"]))],
    )
    .await
    .unwrap();
    let people = s.incident_people("inc1").await.unwrap();
    assert_eq!(people.len(), 2);
    assert_eq!(people[0].person, "p1");
    assert_eq!(people[0].notified_at, Some(now()));
    assert_eq!(people[1].fields, fields(&["name", "email", "phone"]));
    assert_eq!(s.mark_notified("inc1", None, now()).await.unwrap(), 1);
    let mut changed = i.clone();
    changed.status = IncidentStatus::Reported;
    changed.facts.misuse_intent = true;
    assert!(s.update_incident(&changed).await.unwrap());
    assert_eq!(s.list_incidents().await.unwrap(), vec![changed]);
}

async fn policies_keep_unique_names_and_change_only_from_the_version_read(b: Backend) {
    let (s, _d) = b.open().await;
    let p = Policy {
        id: "pol1".into(),
        name: "Corp Wi-Fi".into(),
        kind: PolicyKind::Wifi,
        settings: json!({"SSID_STR": "Corp"}),
        secrets: vec!["/Password".into()],
        platforms: vec!["iOS".into()],
        version: 1,
        profile_identifier: "com.mamori.policy.pol1".into(),
        payload_uuid: "A".into(),
        profile_uuid: "B".into(),
        created_at: now(),
        updated_at: now(),
    };
    assert!(s.insert_policy(&p, Some(&[1, 2, 3])).await.unwrap());
    let twin = Policy {
        id: "pol2".into(),
        ..p.clone()
    };
    assert!(!s.insert_policy(&twin, None).await.unwrap(), "name taken");
    assert_eq!(
        s.policy("pol1").await.unwrap(),
        Some((p.clone(), Some(vec![1, 2, 3])))
    );
    let mut v2 = p.clone();
    v2.version = 2;
    v2.profile_uuid = "C".into();
    v2.secrets.clear();
    assert!(s.update_policy(&v2, None, 1).await.unwrap());
    assert!(
        !s.update_policy(&v2, None, 1).await.unwrap(),
        "stale version"
    );
    assert_eq!(s.policy("pol1").await.unwrap(), Some((v2.clone(), None)));
    let other = Policy {
        id: "pol3".into(),
        name: "Passcode".into(),
        kind: PolicyKind::Passcode,
        ..p.clone()
    };
    assert!(s.insert_policy(&other, None).await.unwrap());
    let mut rename = other.clone();
    rename.name = "Corp Wi-Fi".into();
    rename.version = 2;
    assert!(
        !s.update_policy(&rename, None, 1).await.unwrap(),
        "name taken"
    );
    assert_eq!(s.list_policies().await.unwrap().len(), 2);
    assert!(s.delete_policy("pol1").await.unwrap());
    assert!(!s.delete_policy("pol1").await.unwrap());
}

async fn groups_hold_members_and_policies_and_profile_rows_follow_commands(b: Backend) {
    let (s, _d) = b.open().await;
    let g = DeviceGroup {
        id: "g1".into(),
        name: "Fleet".into(),
        rule: None,
        members: vec![],
        policies: vec![],
        created_at: now(),
    };
    assert!(s.insert_group(&g).await.unwrap());
    assert!(!s
        .insert_group(&DeviceGroup {
            id: "g2".into(),
            ..g.clone()
        })
        .await
        .unwrap());
    let dynamic = DeviceGroup {
        id: "g3".into(),
        name: "Macs".into(),
        rule: Some(GroupRule {
            model: Some("Mac".into()),
            ..GroupRule::default()
        }),
        ..g.clone()
    };
    assert!(s.insert_group(&dynamic).await.unwrap());
    s.change_group_members("g1", &["D1".into(), "D2".into(), "D1".into()], &[])
        .await
        .unwrap();
    s.change_group_members("g1", &[], &["D2".into()])
        .await
        .unwrap();
    s.set_group_policies("g1", &["p1".into(), "p2".into()])
        .await
        .unwrap();
    s.set_group_policies("g1", &["p2".into()]).await.unwrap();
    let all = s.list_groups().await.unwrap();
    assert_eq!(all.len(), 2);
    let fleet = all.iter().find(|x| x.id == "g1").unwrap();
    assert_eq!(fleet.members, vec!["D1".to_owned()]);
    assert_eq!(fleet.policies, vec!["p2".to_owned()]);
    assert_eq!(
        all.iter().find(|x| x.id == "g3").unwrap().rule,
        dynamic.rule
    );
    let row = DeviceProfile {
        udid: "D1".into(),
        profile_identifier: "com.mamori.policy.p2".into(),
        policy_id: "p2".into(),
        profile_uuid: "U1".into(),
        state: ProfileState::Installing,
        command_uuid: Some("C1".into()),
        attempts: 0,
        retry_at: None,
        updated_at: now(),
    };
    s.put_device_profiles(std::slice::from_ref(&row))
        .await
        .unwrap();
    assert_eq!(
        s.device_profile_by_command("C1").await.unwrap(),
        Some(row.clone())
    );
    let installed = DeviceProfile {
        state: ProfileState::Installed,
        ..row.clone()
    };
    s.put_device_profiles(std::slice::from_ref(&installed))
        .await
        .unwrap();
    assert_eq!(s.profiles_of_device("D1").await.unwrap(), vec![installed]);
    s.delete_device_profile("D1", "com.mamori.policy.p2")
        .await
        .unwrap();
    assert!(s.device_profiles().await.unwrap().is_empty());
    assert!(s.delete_group("g1").await.unwrap());
    assert!(!s.delete_group("g1").await.unwrap());
}

async fn offboarding_never_closes_the_last_enabled_owner(b: Backend) {
    let (s, _d) = b.open().await;
    s.insert_people(&[person("pz", "ez", "uz")])
        .await
        .unwrap()
        .unwrap();
    // One person behind both owner accounts: closing both would leave none.
    let a = add_admin(&*s, "oa").await;
    let b = add_admin(&*s, "ob").await;
    for x in [&a, &b] {
        assert!(s.link_admin_person(&x.id, Some(&pid("pz"))).await.unwrap());
    }
    let closed = s
        .offboard_person(&pid("pz"), now(), &[a.id.clone(), b.id.clone()])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(closed.len(), 1, "{closed:?}");
    let enabled = s
        .list_admins()
        .await
        .unwrap()
        .into_iter()
        .filter(|x| x.role == Role::Owner && x.disabled_at.is_none())
        .count();
    assert_eq!(enabled, 1);
}

async fn held_reenrollments_are_kept_until_released_or_revoked(b: Backend) {
    let (s, _d) = b.open().await;
    enroll(&*s, "DEVH").await;
    for fp in ["held1", "held2"] {
        s.insert_certificate(&DeviceCertificate {
            fingerprint: fp.into(),
            serial: "02".into(),
            profile_id: None,
            device: None,
            renewed_from: None,
            not_after: now() + Duration::days(1),
            issued_at: now(),
            revoked_at: None,
        })
        .await
        .unwrap();
        let held = PendingReenrollment {
            fingerprint: fp.into(),
            authenticate: AuthenticateRecord {
                device: key("DEVH"),
                enrollment_id: None,
                topic: "topic".into(),
                fields: InventoryFields {
                    serial_number: Some("SERIAL-H".into()),
                    device_name: Some("sealed-name".into()),
                    ..InventoryFields::default()
                },
                now: now(),
            },
            source: Some("192.0.2.7".into()),
            push: None,
        };
        assert!(s.hold_reenrollment(&held).await.unwrap());
        // Held again for the same device: renewed. For another: refused,
        // the hold stays where it was.
        assert!(s.hold_reenrollment(&held).await.unwrap());
        let mut elsewhere = held.clone();
        elsewhere.authenticate.device = key("OTHER");
        elsewhere.source = Some("198.51.100.9".into());
        assert!(!s.hold_reenrollment(&elsewhere).await.unwrap());
    }
    let push = PendingPush {
        token: vec![7; 32],
        magic: "m".into(),
        sealed_unlock_token: Some(vec![1]),
    };
    assert!(s.set_held_push("held1", &push).await.unwrap());
    assert!(!s.set_held_push("nobody", &push).await.unwrap());
    let h = s.held_reenrollment("held1").await.unwrap().unwrap();
    assert_eq!(h.push, Some(push));
    assert_eq!(h.authenticate.device, key("DEVH"));
    assert_eq!(
        h.authenticate.fields.device_name.as_deref(),
        Some("sealed-name")
    );
    assert_eq!(h.source.as_deref(), Some("192.0.2.7"));
    assert_eq!(
        s.held_reenrollments(Some(&key("DEVH")))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        s.held_reenrollments(Some(&key("OTHER")))
            .await
            .unwrap()
            .len(),
        0
    );
    // Released: gone, certificate untouched. Revoked: gone, certificate dead.
    assert!(s.release_reenrollment("held1").await.unwrap());
    assert!(!s.release_reenrollment("held1").await.unwrap());
    assert!(s
        .certificate("held1")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());
    assert!(s.revoke_held("held2", now()).await.unwrap());
    assert!(s
        .certificate("held2")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());
    assert!(s.held_reenrollments(None).await.unwrap().is_empty());
}

async fn a_new_enrollment_clears_the_earlier_assignment_with_its_authenticate(b: Backend) {
    let (s, _d) = b.open().await;
    for udid in ["DEVA", "DEVB"] {
        enroll(&*s, udid).await;
    }
    s.insert_people(&[person("p1", "e1", "u1")])
        .await
        .unwrap()
        .unwrap();
    let g = DeviceGroup {
        id: "g1".into(),
        name: "Office".into(),
        rule: None,
        members: vec![],
        policies: vec![],
        created_at: now(),
    };
    assert!(s.insert_group(&g).await.unwrap());
    s.change_group_members("g1", &["DEVA".into(), "DEVB".into()], &[])
        .await
        .unwrap();
    for udid in ["DEVA", "DEVB"] {
        assert!(s.assign_device(&key(udid), Some(&pid("p1"))).await.unwrap());
    }
    let rec = |udid: &str| AuthenticateRecord {
        device: key(udid),
        enrollment_id: None,
        topic: "topic".into(),
        fields: InventoryFields::default(),
        now: now(),
    };
    // The same identity authenticating again keeps everything.
    s.authenticate(&rec("DEVB")).await.unwrap();
    assert_eq!(
        s.device_person(&key("DEVB")).await.unwrap(),
        Some(pid("p1"))
    );
    // A new enrollment: unassigned, out of its static groups, others kept.
    let cleared = s.authenticate_anew(&rec("DEVA")).await.unwrap();
    assert_eq!(
        cleared,
        ClearedAssignment {
            person: true,
            static_groups: 1
        }
    );
    assert_eq!(s.device_person(&key("DEVA")).await.unwrap(), None);
    assert_eq!(
        s.device_person(&key("DEVB")).await.unwrap(),
        Some(pid("p1"))
    );
    let groups = s.list_groups().await.unwrap();
    assert_eq!(groups[0].members, ["DEVB"]);
    let d = s.device(&key("DEVA")).await.unwrap().unwrap();
    assert_eq!(d.status, EnrollmentStatus::Authenticated);
    // Nothing left to clear; a device never seen starts with nothing.
    assert_eq!(
        s.authenticate_anew(&rec("DEVA")).await.unwrap(),
        ClearedAssignment::default()
    );
    assert_eq!(
        s.authenticate_anew(&rec("DEVNEW")).await.unwrap(),
        ClearedAssignment::default()
    );
    assert!(s.device(&key("DEVNEW")).await.unwrap().is_some());
}

async fn a_pending_passkey_is_activated_once(b: Backend) {
    let (s, _d) = b.open().await;
    add_admin(&*s, "pk").await;
    let pending = WebauthnCredential {
        id: "cred-pending".into(),
        admin_id: aid("pk"),
        name: "recovery key".into(),
        data: "{}".into(),
        created_at: now(),
        last_used_at: None,
        usable_from: Some(now() + Duration::hours(72)),
    };
    assert!(s.insert_webauthn(&pending).await.unwrap());
    let stored = s.webauthn_credentials(&aid("pk")).await.unwrap();
    assert_eq!(stored, vec![pending.clone()]);
    assert!(!stored[0].usable_at(now()));
    assert!(stored[0].usable_at(now() + Duration::hours(72)));
    assert!(!s
        .activate_webauthn(&aid("other"), "cred-pending")
        .await
        .unwrap());
    assert!(s
        .activate_webauthn(&aid("pk"), "cred-pending")
        .await
        .unwrap());
    assert!(!s
        .activate_webauthn(&aid("pk"), "cred-pending")
        .await
        .unwrap());
    let stored = s.webauthn_credentials(&aid("pk")).await.unwrap();
    assert_eq!(stored[0].usable_from, None);
}

/// Two accounts are one person when either controls the other (directly
/// or through a chain) or one account controls both; co-controllers of a
/// third account are not linked by it, and rows before `since` count not.
async fn control_links_follow_chains_and_shared_controllers(b: Backend) {
    let (s, _d) = b.open().await;
    let t = now();
    let since = t - Duration::days(30);
    let link = |a: &str, b: &str| {
        let s = Arc::clone(&s);
        let (a, b) = (aid(a), aid(b));
        async move { s.controls_either(&a, &b, since).await.unwrap() }
    };
    // Direct, both ways.
    s.record_control(&aid("own"), &aid("kid1"), "create", t)
        .await
        .unwrap();
    assert!(link("own", "kid1").await);
    assert!(link("kid1", "own").await);
    // Siblings: the same owner created both.
    s.record_control(&aid("own"), &aid("kid2"), "create", t)
        .await
        .unwrap();
    assert!(link("kid1", "kid2").await);
    assert!(link("kid2", "kid1").await);
    // A chain: own -> kid1 -> grand -> great.
    s.record_control(&aid("kid1"), &aid("grand"), "role", t)
        .await
        .unwrap();
    s.record_control(&aid("grand"), &aid("great"), "reset", t)
        .await
        .unwrap();
    assert!(link("own", "great").await);
    assert!(link("great", "own").await);
    assert!(link("kid2", "great").await, "great's chain meets kid2's");
    // Two approvers of the same change (both control x) stay two people.
    s.record_control(&aid("p1"), &aid("x"), "create", t)
        .await
        .unwrap();
    s.record_control(&aid("p2"), &aid("x"), "create", t)
        .await
        .unwrap();
    assert!(!link("p1", "p2").await);
    assert!(!link("own", "p1").await);
    // A row before the window links nothing, in a chain neither.
    s.record_control(
        &aid("old"),
        &aid("o1"),
        "create",
        since - Duration::seconds(1),
    )
    .await
    .unwrap();
    s.record_control(&aid("old"), &aid("o2"), "create", t)
        .await
        .unwrap();
    assert!(!link("old", "o1").await);
    assert!(!link("o1", "o2").await);
    // Cycles end.
    s.record_control(&aid("c1"), &aid("c2"), "role", t)
        .await
        .unwrap();
    s.record_control(&aid("c2"), &aid("c1"), "role", t)
        .await
        .unwrap();
    assert!(link("c1", "c2").await);
    assert!(!link("c1", "own").await);
}

/// SQLite only (its migration 26): a database from before the control rows gets them from its audit log
/// (successful create, reset, role, enable and unlock records by an
/// administrator's session or token) and from the requesters of approved
/// account changes; the audit log itself is left as it was.
#[tokio::test]
async fn control_rows_are_backfilled_from_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let s = SqliteStore::open(&path).await.unwrap();
    for id in ["a1", "b1", "c1", "d1", "e1", "f1"] {
        add_admin(&s, id).await;
    }
    let t = now();
    let rec = |actor: &str, action: &str, target: &str, outcome: &str| AuditEvent {
        actor: actor.into(),
        target: Some(target.into()),
        outcome: outcome.into(),
        ..event(action, t)
    };
    for e in [
        rec("admin:name-a1", "admin.create", "name-b1", "success"),
        rec("token:tok-1:name-a1", "admin.role", "name-c1", "success"),
        rec("admin:name-b1", "admin.unlock", "name-d1", "success"),
        // None of these links anyone.
        rec("admin:name-e1", "admin.create", "name-f1", "failure"),
        rec("cli:root(uid=0)", "admin.reset", "name-f1", "success"),
        rec("admin:name-e1", "admin.disable", "name-f1", "success"),
        rec("admin:name-e1", "admin.reset", "name-e1", "success"),
        rec("admin:ghost", "admin.reset", "name-f1", "success"),
    ] {
        append(&s, &e).await.unwrap();
    }
    s.close().await;
    // Back to version 25: no control rows, and an approved request whose
    // requester (e1) had f1 created.
    let audit_before: Vec<(i64, Vec<u8>)> = {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "DELETE FROM admin_control;
             DROP INDEX IF EXISTS admin_control_controlled;
             -- Later migrations run again: their tables go too.
             DROP TABLE job_leases;
             DROP TABLE ephemeral;
             DROP TABLE read_reservations;
             DROP TABLE read_evidence;
             DROP TABLE read_alerts;
             DROP TABLE people_key_choice;
             DROP TABLE people_key_holders;
             DROP TABLE queue_budget;
             PRAGMA user_version = 25;",
        )
        .unwrap();
        c.execute(
            "INSERT INTO approvals (id, action, devices, reason, requested_by, requested_by_admin,
                 requested_at, expires_at, status, decided_by, decided_at, params)
             VALUES ('ap1', 'create_admin', '[]', 'r', 'admin:name-e1', 'e1', ?1, ?1,
                 'approved', 'admin:name-a1', ?1, '{\"admin\":\"name-f1\",\"role\":\"security_officer\"}'),
                ('ap2', 'create_admin', '[]', 'r', 'admin:name-c1', 'c1', ?1, ?1,
                 'rejected', 'admin:name-a1', ?1, '{\"admin\":\"name-d1\"}'),
                ('ap3', 'reset_admin', '[]', 'r', 'admin:name-c1', 'c1', ?1, ?1,
                 'approved', 'admin:name-a1', ?1, 'not json')",
            [t.unix_timestamp()],
        )
        .unwrap();
        let mut q = c
            .prepare("SELECT seq, hash FROM audit_log ORDER BY seq")
            .unwrap();
        let rows = q
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get::<_, Option<Vec<u8>>>(1)?.unwrap_or_default(),
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows
    };
    let s = SqliteStore::open(&path).await.unwrap();
    let since = t - Duration::days(30);
    let linked = |a: &str, b: &str| {
        let (a, b) = (aid(a), aid(b));
        let s = &s;
        async move { s.controls_either(&a, &b, since).await.unwrap() }
    };
    assert!(linked("a1", "b1").await, "session actor");
    assert!(linked("a1", "c1").await, "token actor");
    assert!(linked("b1", "d1").await, "unlock");
    assert!(linked("c1", "b1").await, "siblings through a1");
    assert!(linked("e1", "f1").await, "requester of an approved create");
    assert!(!linked("e1", "a1").await);
    s.close().await;
    let c = Connection::open(&path).unwrap();
    let rows: Vec<(String, String, String, i64)> = c
        .prepare("SELECT controller, controlled, kind, at FROM admin_control ORDER BY controller, controlled")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let at = t.unix_timestamp();
    assert_eq!(
        rows,
        vec![
            ("a1".into(), "b1".into(), "create".into(), at),
            ("a1".into(), "c1".into(), "role".into(), at),
            ("b1".into(), "d1".into(), "unlock".into(), at),
            ("e1".into(), "f1".into(), "create".into(), at),
        ]
    );
    let mut q = c
        .prepare("SELECT seq, hash FROM audit_log ORDER BY seq")
        .unwrap();
    let audit_after: Vec<(i64, Vec<u8>)> = q
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, Option<Vec<u8>>>(1)?.unwrap_or_default(),
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(audit_after, audit_before, "the audit log is untouched");
}

/// The last enabled owner is disabled only when the caller says so (the
/// host's command line): the count is taken in the disabling statement, so
/// two owners disabling each other at once leave one.
async fn disabling_keeps_the_last_enabled_owner(b: Backend) {
    let (s, _d) = b.open().await;
    add_admin(&*s, "o1").await;
    add_admin(&*s, "o2").await;
    let viewer = admin("v1", "viewer-1", Role::Viewer);
    assert!(s.insert_admin(&viewer, &password("ph")).await.unwrap());
    let later = now() + Duration::minutes(1);
    let (o1, o2) = (aid("o1"), aid("o2"));
    let (x, y) = tokio::join!(
        s.disable_admin(&o1, later, "each other", true),
        s.disable_admin(&o2, later, "each other", true),
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert!(
        x.is_some() != y.is_some(),
        "exactly one disabled: {x:?} {y:?}"
    );
    let last = if x.is_some() { "o2" } else { "o1" };
    assert!(s
        .admin(&aid(last))
        .await
        .unwrap()
        .unwrap()
        .disabled_at
        .is_none());
    // Other roles are not held back.
    assert_eq!(
        s.disable_admin(&aid("v1"), later, "left", true)
            .await
            .unwrap(),
        Some((0, 0))
    );
    // The last owner goes only without the guard.
    assert_eq!(
        s.disable_admin(&aid(last), later, "host", false)
            .await
            .unwrap(),
        Some((0, 0))
    );
}

/// Each append is linked onto the end the store holds when it writes, not
/// onto an end its caller saw earlier: another handle (another server)
/// appending in between changes the links, never refuses the append.
async fn an_append_is_linked_onto_the_end_the_store_holds(b: Backend) {
    let (s, d) = b.open().await;
    let other = d.another().await;
    let e = |n: &str| AuditEvent {
        detail: Some(n.into()),
        ..event("auth.login", now())
    };
    let seen = s.audit_head().await.unwrap();
    assert_eq!(seen, chain::ChainLink::genesis());
    // Another server appends after this one looked at the end.
    assert_eq!(append(&*other, &e("a")).await.unwrap(), 1);
    let a = s.audit_head().await.unwrap();
    assert_eq!(a.seq, 1);
    // This one's batch goes after it, linked onto it, whole and in order.
    let asked = linker::Linker::default();
    let seqs = s.append_audit(&[e("b"), e("c")], &asked).await.unwrap();
    assert_eq!(seqs, [2, 3]);
    let chain = linker::verify(&*s).await;
    assert_eq!(
        asked.asked(),
        [(a.hash.clone(), 2), (chain[1].hash.clone().unwrap(), 3)],
        "the links were asked for onto the stored end"
    );
    // An empty batch asks for nothing and writes nothing.
    let idle = linker::Linker::default();
    assert!(s.append_audit(&[], &idle).await.unwrap().is_empty());
    assert!(idle.asked().is_empty());
    // Alternating handles, each onto the other's last record.
    assert_eq!(append(&*other, &e("d")).await.unwrap(), 4);
    assert_eq!(append(&*s, &e("e")).await.unwrap(), 5);
    let chain = linker::verify(&*s).await;
    assert_eq!(
        chain
            .iter()
            .filter_map(|r| r.event.detail.clone())
            .collect::<Vec<_>>(),
        ["a", "b", "c", "d", "e"]
    );
    assert_eq!(
        other.audit_head().await.unwrap(),
        chain::ChainLink {
            seq: 5,
            hash: chain[4].hash.clone().unwrap()
        }
    );
}

/// An issuance's audit record is linked onto the end the store holds in
/// the issuance's own transaction, whoever appended before it; one that
/// spends no use writes no record.
async fn an_issuance_is_linked_onto_the_end_the_store_holds(b: Backend) {
    let (s, d) = b.open().await;
    let other = d.another().await;
    s.insert_profile(&profile("p1", "h1", 1, Duration::hours(1)))
        .await
        .unwrap();
    let cert = |fp: &str| DeviceCertificate {
        fingerprint: fp.into(),
        serial: "01".into(),
        profile_id: Some("p1".into()),
        device: None,
        renewed_from: None,
        not_after: now() + Duration::days(1),
        issued_at: now(),
        revoked_at: None,
    };
    // Another server appends after this one looked at the end.
    assert_eq!(s.audit_head().await.unwrap().seq, 0);
    append(&*other, &event("auth.login", now())).await.unwrap();
    let login = s.audit_head().await.unwrap();
    let asked = linker::Linker::default();
    let issued = event("device.certificate_issue", now());
    assert!(s
        .record_issuance(Some("p1"), &cert("fpS"), &issued, &asked, now())
        .await
        .unwrap());
    assert!(s.certificate("fpS").await.unwrap().is_some());
    assert_eq!(asked.asked(), [(login.hash, 2)]);
    let chain = linker::verify(&*s).await;
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1].event, issued);
    // The profile's one use is gone: nothing is written, no record either.
    assert!(!s
        .record_issuance(Some("p1"), &cert("fpT"), &issued, &asked, now())
        .await
        .unwrap());
    assert!(s.certificate("fpT").await.unwrap().is_none());
    assert_eq!(linker::verify(&*s).await.len(), 2);
}

on_both_backends!(
    a_device_has_at_most_max_user_channels,
    a_renewal_of_a_retired_identity_issues_nothing,
    long_audit_text_is_appended_and_read_back_whole,
    challenges_respect_uses_and_expiry_even_under_concurrency,
    enrollment_links_are_spent_once_per_download,
    active_links_are_listed_and_a_revoked_one_is_over,
    certificates_bind_and_revoke,
    scep_issuance_is_one_transaction,
    enrollment_lifecycle_and_inventory,
    devices_page_in_order,
    device_counts_by_state_and_last_seen,
    queue_order_not_now_and_ownership,
    tokens_and_secrets,
    tokens_list_by_owner_oldest_first,
    admins_insert_lookup_and_unique_names,
    unknown_stored_role_is_an_error,
    totp_enrollment_and_replay_protection,
    login_failures_blocks_unlock_and_login,
    disable_revokes_sessions_and_tokens_together,
    recovery_codes_work_once,
    webauthn_credentials_register_and_update,
    sessions_lifecycle,
    a_suspension_is_kept_until_reinstated_and_revokes_everything_at_once,
    an_audit_batch_is_appended_whole_and_in_order,
    audit_log_appends_pages_and_refuses_rewrites,
    reset_clears_factors_and_revokes_everything_at_once,
    factors_are_removed_one_by_one,
    people_round_trip_and_lookups,
    people_batch_with_an_in_batch_duplicate_stores_nothing,
    people_batch_colliding_with_a_stored_person_stores_nothing,
    people_large_batch_stores_all_and_pages_in_order,
    update_person_replaces_fields_but_not_creation_or_key,
    unknown_stored_employment_status_is_an_error,
    devices_are_assigned_to_people,
    people_devices_spans_many_chunks,
    purge_destroys_keys_rows_and_links_and_leaves_tombstones,
    offboarding_closes_linked_accounts_and_marks_devices,
    a_device_lists_its_certificates_newest_first,
    data_keys_are_rewrapped_only_from_the_expected_key,
    approvals_are_decided_once_and_expire,
    audit_records_are_chained_and_checkpoints_kept,
    audit_records_are_found_by_action_time_and_actor,
    the_newest_records_of_some_actions_come_with_their_counts,
    a_sink_cursor_survives_and_never_moves_backwards,
    incidents_keep_who_was_told_when_their_scope_changes,
    policies_keep_unique_names_and_change_only_from_the_version_read,
    groups_hold_members_and_policies_and_profile_rows_follow_commands,
    offboarding_never_closes_the_last_enabled_owner,
    held_reenrollments_are_kept_until_released_or_revoked,
    a_new_enrollment_clears_the_earlier_assignment_with_its_authenticate,
    a_pending_passkey_is_activated_once,
    control_links_follow_chains_and_shared_controllers,
    disabling_keeps_the_last_enabled_owner,
    an_append_is_linked_onto_the_end_the_store_holds,
    an_issuance_is_linked_onto_the_end_the_store_holds,
);
