//! Tests of [`super`].
#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn every_alert_rule_has_its_audit_action() {
    for rule in [
        "new_network",
        "off_hours",
        "read_baseline",
        "mass_command",
        "recovery_code_used",
        "device_reenrollment",
        "device_reenrollment_retarget",
        "device_two_places",
    ] {
        assert!(
            AuditAction::parse(&format!("alert.{rule}")).is_some(),
            "{rule}"
        );
    }
}

fn rec(seq: i64, at: OffsetDateTime, actor: &str, action: &str, source: &str) -> AuditRecord {
    AuditRecord {
        seq,
        event: AuditEvent {
            at,
            actor: actor.into(),
            source: Some(source.into()),
            action: action.into(),
            target: None,
            outcome: "success".into(),
            request_id: None,
            detail: None,
        },
    }
}

fn t0() -> OffsetDateTime {
    // A Monday, 09:00 UTC.
    OffsetDateTime::from_unix_timestamp(1_800_003_600).unwrap()
}

#[test]
fn a_new_network_after_a_history_fires_once() {
    let p = AnomalyPolicy::default();
    let mut prof = Profiles::default();
    for i in 0..3 {
        assert!(prof
            .observe(
                &rec(i, t0(), "admin:a", "api.request", "10.1.2.3"),
                &p,
                true
            )
            .is_empty());
    }
    // Same /24: nothing.
    assert!(prof
        .observe(
            &rec(4, t0(), "admin:a", "api.request", "10.1.2.99"),
            &p,
            true
        )
        .is_empty());
    let a = prof.observe(
        &rec(5, t0(), "admin:a", "auth.login", "203.0.113.7"),
        &p,
        true,
    );
    assert_eq!(a.len(), 1);
    assert_eq!((a[0].rule, a[0].evidence.clone()), ("new_network", vec![5]));
    assert!(a[0].detail.contains("203.0.113.0/24"));
    assert!(prof
        .observe(
            &rec(6, t0(), "admin:a", "api.request", "203.0.113.8"),
            &p,
            true
        )
        .is_empty());
    // A newcomer has no history to depart from; failures and system
    // records are not behaviour.
    assert!(prof
        .observe(
            &rec(7, t0(), "admin:b", "auth.login", "198.51.100.1"),
            &p,
            true
        )
        .is_empty());
    let mut failed = rec(8, t0(), "admin:a", "auth.login", "192.0.2.1");
    failed.event.outcome = "failure".into();
    assert!(prof.observe(&failed, &p, true).is_empty());
    assert_eq!(network_of("2001:db8:1:2:3::4"), "2001:db8:1:2::/64");
}

#[test]
fn a_login_at_an_unusual_hour_fires_once_a_day() {
    let p = AnomalyPolicy::default();
    let mut prof = Profiles::default();
    for d in 0..10 {
        let at = t0() + Duration::days(d);
        prof.observe(&rec(d, at, "admin:a", "auth.login", "10.0.0.1"), &p, false);
    }
    let usual = t0() + Duration::days(10) + Duration::minutes(50);
    assert!(prof
        .observe(
            &rec(20, usual, "admin:a", "auth.login", "10.0.0.1"),
            &p,
            true
        )
        .is_empty());
    let night = t0() + Duration::days(10) + Duration::hours(17);
    let a = prof.observe(
        &rec(21, night, "admin:a", "auth.login", "10.0.0.1"),
        &p,
        true,
    );
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].rule, "off_hours");
    assert!(prof
        .observe(
            &rec(22, night, "admin:a", "auth.login", "10.0.0.1"),
            &p,
            true
        )
        .is_empty());
}

#[test]
fn a_token_used_at_an_unusual_hour_fires() {
    let p = AnomalyPolicy::default();
    let mut prof = Profiles::default();
    for d in 0..10 {
        let at = t0() + Duration::days(d);
        prof.observe(
            &rec(d, at, "token:t1:ci", "api.request", "10.0.0.1"),
            &p,
            false,
        );
    }
    let night = t0() + Duration::days(10) + Duration::hours(12);
    let a = prof.observe(
        &rec(30, night, "token:t1:ci", "people.read", "10.0.0.1"),
        &p,
        true,
    );
    assert_eq!(a.len(), 1);
    assert!(
        a[0].detail.starts_with("use at 21:00 UTC"),
        "{}",
        a[0].detail
    );
}

#[test]
fn reads_far_above_the_actors_own_average_fire() {
    let p = AnomalyPolicy::default();
    let mut prof = Profiles::default();
    let mut seq = 0;
    for d in 0..4 {
        for _ in 0..30 {
            seq += 1;
            let at = t0() + Duration::days(d);
            prof.observe(
                &rec(seq, at, "admin:s", "people.read", "10.0.0.1"),
                &p,
                false,
            );
        }
    }
    let today = t0() + Duration::days(4);
    let mut fired = Vec::new();
    for _ in 0..160 {
        seq += 1;
        fired.extend(prof.observe(
            &rec(seq, today, "admin:s", "people.read", "10.0.0.1"),
            &p,
            true,
        ));
    }
    // Average 30/day: the limit is max(100, 5 x 30) = 150.
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].rule, "read_baseline");
    assert_eq!(fired[0].evidence, vec![121, 121 + 150]);
}

#[test]
fn many_devices_locked_in_a_short_time_fire_high() {
    let p = AnomalyPolicy::default();
    let mut prof = Profiles::default();
    let cmd = |seq, at, n: usize| {
        let mut r = rec(seq, at, "token:t1:ops", "command.queue", "10.0.0.1");
        r.event.target = Some("DeviceLock".into());
        r.event.detail = Some(format!("devices={n}"));
        r
    };
    assert!(prof.observe(&cmd(1, t0(), 10), &p, true).is_empty());
    // Outside the window: the first batch no longer counts.
    let later = t0() + Duration::minutes(11);
    assert!(prof.observe(&cmd(2, later, 15), &p, true).is_empty());
    let a = prof.observe(&cmd(3, later, 5), &p, true);
    assert_eq!(a.len(), 1);
    assert_eq!((a[0].rule, a[0].severity), ("mass_command", "high"));
    assert_eq!(a[0].evidence, vec![2, 3]);
    let mut other = cmd(4, later, 50);
    other.event.target = Some("DeviceInformation".into());
    assert!(prof.observe(&other, &p, true).is_empty());
}
