//! Tests of [`super`].
use super::*;

#[test]
fn a_device_alternating_between_two_addresses_is_in_two_places() {
    let d = Detector::default();
    let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
    let a: IpAddr = "198.51.100.7".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let b: IpAddr = "203.0.113.9".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    // Repeats from one place, then a move to another: normal roaming.
    assert!(d.device_seen("D", a, t0).is_none());
    assert!(d.device_seen("D", a, t0 + Duration::seconds(5)).is_none());
    assert!(d.device_seen("D", b, t0 + Duration::seconds(10)).is_none());
    assert!(d.device_seen("D", b, t0 + Duration::seconds(15)).is_none());
    // Back to the first within the window: two holders.
    assert_eq!(
        d.device_seen("D", a, t0 + Duration::seconds(20)),
        Some((a, b))
    );
    // Slow alternation (hours apart) is roaming.
    let t1 = t0 + Duration::hours(1);
    assert!(d.device_seen("E", a, t1).is_none());
    assert!(d.device_seen("E", b, t1 + Duration::minutes(3)).is_none());
    assert!(d.device_seen("E", a, t1 + Duration::minutes(6)).is_none());
}

#[test]
fn refused_device_requests_are_recorded_once_a_minute_per_source() {
    let d = Detector::default();
    let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
    let ip = IpAddr::from([192, 0, 2, 1]);
    assert_eq!(d.rejection(ip, t0), Some(0));
    for i in 1..=50 {
        assert_eq!(d.rejection(ip, t0 + Duration::milliseconds(i * 100)), None);
    }
    assert_eq!(d.rejection(IpAddr::from([192, 0, 2, 2]), t0), Some(0));
    assert_eq!(d.rejection(ip, t0 + Duration::seconds(61)), Some(50));
}

fn keys(account: &str, source: &str) -> ReadKeys {
    ReadKeys {
        account: format!("account:{account}"),
        network: (!source.is_empty())
            .then(|| format!("network:{}", crate::audit::anomaly::network_of(source))),
    }
}

fn policy(threshold: usize) -> DetectionPolicy {
    DetectionPolicy {
        bulk_read_threshold: threshold,
        ..DetectionPolicy::default()
    }
}

fn granted(v: &Verdict) -> bool {
    matches!(v, Verdict::Granted(_))
}

#[test]
fn more_than_the_threshold_means_the_next_person_trips_it() {
    let d = Detector::default();
    let p = policy(5);
    let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
    let k = keys("a", "10.0.0.1");
    assert!(granted(&d.reserve(&k, 3, t0, &p)));
    assert!(granted(&d.reserve(&k, 2, t0, &p)), "exactly 5 is allowed");
    match d.reserve(&k, 1, t0, &p) {
        Verdict::Exceeded {
            key, read, alert, ..
        } => {
            assert_eq!((key.as_str(), read, alert), ("account:a", 5, true));
        }
        other => panic!("the 6th person must trip the limit: {other:?}"),
    }
    // Suspended: refused from now on, whatever the window.
    assert_eq!(
        d.reserve(&k, 1, t0 + Duration::hours(1), &p),
        Verdict::Blocked
    );
}

#[test]
fn the_limit_is_per_account_and_per_network_not_per_token() {
    let d = Detector::default();
    let p = policy(5);
    let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
    // One account from two networks (two tokens): 3 + 3 > 5.
    assert!(granted(&d.reserve(&keys("a", "10.0.0.1"), 3, t0, &p)));
    assert!(matches!(
        d.reserve(&keys("a", "10.9.0.1"), 3, t0, &p),
        Verdict::Exceeded { ref key, .. } if key == "account:a"
    ));
    // Two accounts from one /24: 3 + 3 > 5.
    assert!(granted(&d.reserve(&keys("b", "10.1.1.1"), 3, t0, &p)));
    assert!(matches!(
        d.reserve(&keys("c", "10.1.1.200"), 3, t0, &p),
        Verdict::Exceeded { ref key, .. } if key == "network:10.1.1.0/24"
    ));
    // A refused request counted nothing: the network still has 2 left.
    assert!(granted(&d.reserve(&keys("e", "10.1.1.7"), 2, t0, &p)));
    // IPv6 by /64.
    assert!(granted(&d.reserve(
        &keys("f", "2001:db8:1:2::1"),
        5,
        t0,
        &p
    )));
    assert!(matches!(
        d.reserve(&keys("g", "2001:db8:1:2:ffff::9"), 1, t0, &p),
        Verdict::Exceeded { ref key, .. } if key == "network:2001:db8:1:2::/64"
    ));
    // Reads leave the window.
    let later = t0 + Duration::minutes(2);
    assert!(granted(&d.reserve(&keys("h", "10.1.1.1"), 5, later, &p)));
}

#[test]
fn concurrent_reservations_never_pass_the_limit_together() {
    let d = std::sync::Arc::new(Detector::default());
    let p = policy(300);
    let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let d = std::sync::Arc::clone(&d);
            let p = p.clone();
            std::thread::spawn(move || {
                let k = keys("a", &format!("10.0.{i}.1"));
                (0..100)
                    .filter(|_| granted(&d.reserve(&k, 1, t0, &p)))
                    .count()
            })
        })
        .collect();
    let total: usize = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    assert_eq!(total, 300);
}

#[test]
fn alert_only_counts_and_alerts_once_per_burst() {
    let d = Detector::default();
    let p = DetectionPolicy {
        suspend_on_bulk_read: false,
        ..policy(2)
    };
    let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
    let k = keys("a", "");
    let first = d.reserve(&k, 2, t0, &p);
    let Verdict::Granted(id) = first else {
        panic!("{first:?}")
    };
    d.disclosed(
        &ReadPermit {
            id,
            keys: k.clone(),
        },
        &[7, 8],
    );
    assert!(matches!(
        d.reserve(&k, 1, t0, &p),
        Verdict::Exceeded { alert: true, granted: Some(_), ref evidence, .. } if evidence == &[7, 8]
    ));
    assert!(matches!(
        d.reserve(&k, 1, t0, &p),
        Verdict::Exceeded {
            alert: false,
            granted: Some(_),
            ..
        }
    ));
}
