//! A leaver replaying dead credentials (finding 16): a session of a
//! disabled account raises the same alert as its token, and however often
//! a dead credential is replayed every use is refused but the audit log
//! gets one alert and one denial record per credential per minute, the next
//! one carrying the count of the uses in between.

use crate::admins::onboard_totp;
use crate::common::{role_token, spawn_app, TestApp};
use mamori_core::access::ClientContext;
use mamori_core::CoreError;
use mamori_domain::Role;
use mamori_ports::Clock;
use serde_json::Value;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// A clock running `0` ahead of the system's.
struct Ahead(Duration);

impl Clock for Ahead {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.0
    }
}

/// The audit records of `action` whose target satisfies `target`, oldest
/// first.
async fn records(app: &TestApp, action: &str, target: impl Fn(&str) -> bool) -> Vec<Value> {
    app.audit_records()
        .await
        .into_iter()
        .filter(|r| r["action"] == action && r["target"].as_str().is_some_and(&target))
        .collect()
}

/// The ID of a bearer token `mamori_<id>_<secret>`.
fn token_id(bearer: &str) -> String {
    let rest = bearer.strip_prefix("mamori_").unwrap();
    rest.split_once('_').unwrap().0.to_owned()
}

async fn bearer_status(app: &TestApp, token: &str) -> u16 {
    app.http
        .get(app.admin_url("/api/v1/devices"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_disabled_accounts_session_raises_the_offboarding_alert_once() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let (mut session, _, _) = onboard_totp(&app, "leaver", Role::Helpdesk).await;
    let token = role_token(s, "leaver", "helpdesk").await;
    assert_eq!(session.get("/api/v1/auth/session").await.0, 200);
    s.disable_admin(
        &crate::common::authorized(),
        &ClientContext::default(),
        "leaver",
        "offboarded",
    )
    .await
    .unwrap();

    // The first use is refused and recorded at once: alert and denial.
    assert_eq!(session.get("/api/v1/devices").await.0, 401);
    let alerts = records(&app, "alert.session_after_offboarding", |t| {
        t.starts_with("session:")
    })
    .await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        alerts[0]["detail"],
        "severity=high owner=leaver disabled (offboarded)"
    );
    assert_eq!(alerts[0]["outcome"], "alert");
    assert_eq!(alerts[0]["source"], "127.0.0.1");
    let session_id = alerts[0]["target"]
        .as_str()
        .unwrap()
        .strip_prefix("session:")
        .unwrap()
        .to_owned();
    let denied = records(&app, "auth.session", |t| t == session_id).await;
    assert_eq!(denied.len(), 1, "{denied:?}");

    // Replayed: refused every time, recorded no more within the minute.
    for _ in 0..10 {
        assert_eq!(session.get("/api/v1/devices").await.0, 401);
    }
    assert_eq!(
        records(&app, "alert.session_after_offboarding", |_| true)
            .await
            .len(),
        1
    );
    let denied = records(&app, "auth.session", |t| t == session_id).await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["outcome"], "denied");
    assert_eq!(denied[0]["detail"], "revoked session");

    // The token of the same account has its own alert, not held back by
    // the session's.
    assert_eq!(bearer_status(&app, &token).await, 401);
    let id = token_id(&token);
    let token_alerts = records(&app, "alert.token_after_offboarding", |t| {
        t == format!("token:{id}")
    })
    .await;
    assert_eq!(token_alerts.len(), 1, "{token_alerts:?}");
    assert_eq!(
        token_alerts[0]["detail"],
        "severity=high owner=leaver disabled (offboarded)"
    );
}

#[tokio::test]
async fn a_dead_token_replayed_fifty_times_is_refused_each_time_and_recorded_once() {
    let app = spawn_app().await;
    let s = &app.running.services;
    onboard_totp(&app, "leaver", Role::Helpdesk).await;
    let token = role_token(s, "leaver", "helpdesk").await;
    assert_eq!(bearer_status(&app, &token).await, 200);
    s.disable_admin(
        &crate::common::authorized(),
        &ClientContext::default(),
        "leaver",
        "offboarded",
    )
    .await
    .unwrap();
    let id = token_id(&token);
    let alert_target = format!("token:{id}");

    let started = std::time::Instant::now();
    for _ in 0..50 {
        assert_eq!(bearer_status(&app, &token).await, 401);
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(50),
        "the uses must fall within one minute"
    );
    let alerts = records(&app, "alert.token_after_offboarding", |t| t == alert_target).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        alerts[0]["detail"],
        "severity=high owner=leaver disabled (offboarded)"
    );
    let denials = records(&app, "auth.token", |t| t == id).await;
    assert_eq!(denials.len(), 1, "{denials:?}");
    assert_eq!(denials[0]["detail"], "revoked or expired token");

    // A minute later (the same services and limiter, their clock moved on):
    // refused, and recorded again with the count of the uses in between.
    let mut later = s.clone();
    later.clock = Arc::new(Ahead(Duration::seconds(61)));
    let ctx = ClientContext {
        source: "127.0.0.1".into(),
        ..ClientContext::default()
    };
    assert!(matches!(
        later.authenticate_token(&token, &ctx).await,
        Err(CoreError::Unauthorized)
    ));
    let alerts = records(&app, "alert.token_after_offboarding", |t| t == alert_target).await;
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(
        alerts[1]["detail"],
        "severity=high owner=leaver disabled (offboarded) (49 more uses since the previous record)"
    );
    let denials = records(&app, "auth.token", |t| t == id).await;
    assert_eq!(denials.len(), 2, "{denials:?}");
    assert_eq!(
        denials[1]["detail"],
        "revoked or expired token (49 more uses since the previous record)"
    );
    // ...and right after that, in its new minute, again only counted.
    assert!(later.authenticate_token(&token, &ctx).await.is_err());
    assert_eq!(records(&app, "auth.token", |t| t == id).await.len(), 2);
}
