#![allow(clippy::unwrap_used)]
use super::*;
use tokio::time::Instant;

#[test]
fn accept_backoff_doubles_to_a_second_and_resets() {
    let mut b = AcceptBackoff::default();
    let delays: Vec<u64> = (0..9).map(|_| b.failed().as_millis() as u64).collect();
    assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
    b.succeeded();
    assert_eq!(b.failed(), AcceptBackoff::MIN);
}

#[test]
fn a_burst_of_errors_logs_once_per_second_with_a_count() {
    let mut t = LogThrottle::new(Duration::from_secs(1));
    let t0 = std::time::Instant::now();
    // 20 failures a second for three seconds (what filled the log).
    let mut lines = Vec::new();
    for i in 0..60u64 {
        if let Some(n) = t.hit(t0 + Duration::from_millis(i * 50)) {
            lines.push(n);
        }
    }
    assert_eq!(lines, [1, 20, 20]);
}

fn limits(total: usize, per_source: usize) -> Limits {
    Limits {
        max_connections: total,
        max_connections_per_ip: per_source,
        ..Limits::admin()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A connection on which a request authenticated.
fn trusted(p: Permit) -> Permit {
    p.standing().trust();
    p
}

fn evicted(p: &Permit) -> bool {
    p.standing().evicted.load(Ordering::SeqCst)
}

#[test]
fn caps_count_per_source_and_in_total_and_free_on_drop() {
    let t = Tracker::new(&limits(3, 2));
    let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
    let a1 = trusted(t.try_acquire(a).unwrap());
    let _a2 = trusted(t.try_acquire(a).unwrap());
    assert_eq!(t.try_acquire(a).unwrap_err(), Refusal::PerSource);
    let _b1 = trusted(t.try_acquire(b).unwrap());
    // Full of authenticated connections: nothing makes way.
    assert_eq!(t.try_acquire(b).unwrap_err(), Refusal::Total);
    assert_eq!(t.try_acquire(ip("192.0.2.9")).unwrap_err(), Refusal::Total);
    drop(a1);
    assert_eq!(t.total(), 2);
    let _a3 = trusted(t.try_acquire(a).unwrap());
    // An IPv4-mapped address is the same source; one /64 is one source.
    assert_eq!(
        t.try_acquire(ip("::ffff:192.0.2.1")).unwrap_err(),
        Refusal::PerSource
    );
    assert_eq!(
        source_key(ip("2001:db8:1:2:3:4:5:6")),
        source_key(ip("2001:db8:1:2:ffff::1"))
    );
}

#[test]
fn a_full_listener_evicts_the_oldest_unproven_connection_of_the_largest_source() {
    let t = Tracker::new(&limits(4, 3));
    let (attacker, user, admin) = (ip("192.0.2.1"), ip("198.51.100.7"), ip("203.0.113.5"));
    // Three half-open connections from one address, one from a user still
    // signing in: the listener is full.
    let held: Vec<Permit> = (0..3).map(|_| t.try_acquire(attacker).unwrap()).collect();
    let signing_in = t.try_acquire(user).unwrap();
    // An administrator arrives: the attacker's oldest makes way, nobody
    // else's.
    let first = t.try_acquire(admin).unwrap();
    assert!(evicted(&held[0]));
    assert!(!evicted(&held[1]) && !evicted(&held[2]) && !evicted(&signing_in));
    // The attacker's address is still at its own cap until the evicted
    // connection lets go...
    assert_eq!(t.try_acquire(attacker).unwrap_err(), Refusal::PerSource);
    let mut held = held.into_iter();
    drop(held.next());
    // ...and then cannot take a connection from anyone holding fewer than
    // it does: the user's and the administrator's stay.
    assert_eq!(t.try_acquire(attacker).unwrap_err(), Refusal::Total);
    assert!(!evicted(&signing_in) && !evicted(&first));
    // A second administrator connection takes the attacker's next oldest.
    let rest: Vec<Permit> = held.collect();
    let _second = t.try_acquire(admin).unwrap();
    assert!(evicted(&rest[0]) && !evicted(&rest[1]));
    assert_eq!(
        t.total(),
        5,
        "the evicted one holds its slot until it closes"
    );
}

/// Every /64 of a home /56 is a source of its own (256 of them), each
/// holding one half-open connection: they count as one network, so they
/// make way for an administrator and cannot take her connection back.
#[test]
fn the_subnets_of_one_network_count_as_one() {
    let t = Tracker::new(&limits(256, 4));
    let mut held: Vec<Permit> = (0..256)
        .map(|i| t.try_acquire(ip(&format!("2001:db8:1:{i:x}::1"))).unwrap())
        .collect();
    let admin = t.try_acquire(ip("192.0.2.10")).unwrap();
    assert!(evicted(&held[0]));
    // The attacker reconnects from the /64 that was freed, and from
    // another: its network already holds more than the administrator's.
    drop(held.remove(0));
    assert_eq!(
        t.try_acquire(ip("2001:db8:1:0::2")).unwrap_err(),
        Refusal::Total
    );
    assert!(!evicted(&admin));
    assert_eq!(
        network_key(ip("2001:db8:1:ff:1::1")),
        network_key(ip("2001:db8:1::1"))
    );
    assert_eq!(network_key(ip("198.51.100.7")), ip("198.51.100.0"));
}

#[test]
fn authenticated_connections_are_never_evicted() {
    let t = Tracker::new(&limits(2, 2));
    let a = ip("192.0.2.1");
    let p = [
        trusted(t.try_acquire(a).unwrap()),
        trusted(t.try_acquire(a).unwrap()),
    ];
    assert_eq!(t.try_acquire(ip("192.0.2.2")).unwrap_err(), Refusal::Total);
    assert!(p.iter().all(|p| !evicted(p)));
}

#[test]
fn evictions_still_closing_are_bounded() {
    let t = Tracker::new(&limits(1, 1));
    // Every newcomer evicts the one before it, none of them closes.
    let mut held = vec![t.try_acquire(ip("10.0.0.1")).unwrap()];
    for i in 1..=MAX_EVICTING {
        held.push(t.try_acquire(ip(&format!("10.{i}.0.1"))).unwrap());
    }
    assert_eq!(held.iter().filter(|p| evicted(p)).count(), MAX_EVICTING);
    assert_eq!(t.try_acquire(ip("10.200.0.1")).unwrap_err(), Refusal::Total);
    // One closes: the next newcomer may evict again.
    held.remove(0);
    let _next = t.try_acquire(ip("10.200.0.1")).unwrap();
    assert_eq!(t.total(), MAX_EVICTING + 1);
}

#[tokio::test]
async fn an_evicted_connection_learns_it_at_once() {
    let t = Tracker::new(&limits(1, 1));
    let first = t.try_acquire(ip("10.0.0.1")).unwrap();
    let standing = Arc::clone(first.standing());
    let waiting = tokio::spawn(async move { standing.evicted().await });
    tokio::task::yield_now().await;
    let _second = t.try_acquire(ip("10.1.0.2")).unwrap();
    tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn caps_shrink_to_fit_the_descriptor_table() {
    let (mut d, mut a) = (Limits::device(), Limits::admin());
    assert!(!fit_to_descriptors(&mut d, &mut a, 1 << 20));
    assert_eq!((d.max_connections, a.max_connections), (4096, 256));
    // The table of the original report: 256 descriptors.
    assert!(fit_to_descriptors(&mut d, &mut a, 256));
    assert!(d.max_connections + a.max_connections <= 256 - 128);
    assert!(a.max_connections >= 4 && d.max_connections > a.max_connections);
    assert!(d.max_connections_per_ip <= d.max_connections);
    assert!(a.max_connections_per_ip <= a.max_connections);
}

#[tokio::test]
async fn an_idle_connection_is_told_to_close_only_when_nothing_is_in_flight() {
    let s = ConnState::new();
    let idle = Duration::from_millis(200);
    let req = s.begin();
    // Busy for longer than the idle timeout: not idle.
    let waited = tokio::time::timeout(Duration::from_millis(600), s.should_close(idle)).await;
    assert!(waited.is_err());
    drop(req);
    let t0 = Instant::now();
    assert_eq!(s.should_close(idle).await, CloseReason::Idle);
    assert!(Instant::now() - t0 >= idle);
    s.request_close();
    assert_eq!(s.should_close(idle).await, CloseReason::SlowBody);
}
