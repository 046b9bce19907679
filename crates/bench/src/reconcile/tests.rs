//! Tests of the `--reconcile` fixture and answer parsing.

#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn fixture_udids_are_device_keys() {
    for i in [0, 1, 9_999, 999_999] {
        mamori_domain::DeviceKey::parse(&udid(i)).unwrap();
    }
    assert!(udid(1) < udid(2));
}

#[test]
fn parses_the_report() {
    let v = json!({"devices": 10, "installs": 5, "removals": 1, "deferred": 2});
    let r = PassReport::parse(&v).unwrap();
    assert_eq!(r.queued(), 6);
    assert!(PassReport::parse(&json!({})).is_err());
}

#[test]
fn the_batch_holds_whole_devices() {
    assert_eq!(BATCH % POLICIES, 0);
}
