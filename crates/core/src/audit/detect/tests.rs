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

/// A reader's reads count under its account and its source network (an
/// IPv4 /24, an IPv6 /64), never under a token or a session: the windows
/// themselves are the store's (`crates/store/tests/read_windows.rs`).
#[test]
fn reads_count_per_account_and_per_network() {
    let id = |s: &str| AdminId::parse(s).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ReadKeys::of(&id("a"), "10.1.1.200").all(),
        ["account:a", "network:10.1.1.0/24"]
    );
    assert_eq!(
        ReadKeys::of(&id("a"), "10.1.1.7").all(),
        ["account:a", "network:10.1.1.0/24"]
    );
    assert_eq!(
        ReadKeys::of(&id("g"), "2001:db8:1:2:ffff::9").all(),
        ["account:g", "network:2001:db8:1:2::/64"]
    );
    assert_eq!(ReadKeys::of(&id("b"), "").all(), ["account:b"]);
}
