//! Short-lived shared state (`EphemeralStore`): a one-time value is taken
//! once (of takers racing on separate servers exactly one gets it), and
//! not after its expiry; counters count within their window, start again
//! after it, and are one count for every server; gates let one event pass
//! per period and tell the refusals in between; claims are held by one at
//! a time, taken over once expired and released only by their holder; a
//! full space refuses new values and claims and pushes out its least
//! recently used counters; expired entries are swept. On PostgreSQL every
//! "other server" is a store handle with its own connection pool; on
//! SQLite, a second handle on the same file. Every test runs on both.
#![allow(clippy::unwrap_used)]

use backends::{Backend, Db};
use mamori_ports::*;
use mamori_store::SqliteStore;
use mamori_store_pg::PgStore;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

mod backends;

const MINUTE: Duration = Duration::minutes(1);
const HOUR: Duration = Duration::hours(1);

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn space(name: &str, cap: u64) -> Space<'_> {
    Space { name, cap }
}

/// `n` more handles on the store's database, as other servers have.
async fn others(d: &Db, n: usize) -> Vec<Arc<dyn EphemeralStore>> {
    let mut out: Vec<Arc<dyn EphemeralStore>> = Vec::new();
    for _ in 0..n {
        match d {
            Db::Postgres(url) => out.push(Arc::new(PgStore::connect(url).await.unwrap())),
            Db::Sqlite(dir) => out.push(Arc::new(
                SqliteStore::open(&dir.path().join("t.db")).await.unwrap(),
            )),
        }
    }
    out
}

fn rows(d: &Db, space: &str) -> i64 {
    d.raw_i64(&format!(
        "SELECT COUNT(*) FROM ephemeral WHERE space = '{space}'"
    ))
}

async fn a_one_time_value_is_taken_once_on_any_server(b: Backend) {
    let (s, d) = b.open().await;
    let other = others(&d, 1).await.pop().unwrap();
    let sp = space("ceremony", 10);
    let now = t0();
    assert!(s
        .put_once(sp, "session-1", b"first", now + MINUTE, now)
        .await
        .unwrap());
    // A second put replaces the value.
    assert!(s
        .put_once(sp, "session-1", b"second", now + MINUTE, now)
        .await
        .unwrap());
    assert_eq!(
        other.take_once(sp, "session-1", now).await.unwrap(),
        Some(b"second".to_vec())
    );
    // Taken: nothing more, here or there.
    assert_eq!(s.take_once(sp, "session-1", now).await.unwrap(), None);
    assert_eq!(other.take_once(sp, "session-1", now).await.unwrap(), None);
    // Another space's key of the same name is another entry.
    assert!(s
        .put_once(sp, "session-2", b"x", now + MINUTE, now)
        .await
        .unwrap());
    assert_eq!(
        s.take_once(space("other", 10), "session-2", now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.take_once(sp, "session-2", now).await.unwrap(),
        Some(b"x".to_vec())
    );
}

async fn of_takers_racing_on_separate_servers_exactly_one_gets_the_value(b: Backend) {
    let (s, d) = b.open().await;
    let takers = others(&d, 6).await;
    let sp = space("ceremony", 100);
    let now = t0();
    for round in 0..15 {
        let key = format!("session-{round}");
        assert!(s
            .put_once(sp, &key, round.to_string().as_bytes(), now + MINUTE, now)
            .await
            .unwrap());
        let barrier = Arc::new(tokio::sync::Barrier::new(takers.len()));
        let tasks: Vec<_> = takers
            .iter()
            .map(|t| {
                let (t, key, barrier) = (Arc::clone(t), key.clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    t.take_once(space("ceremony", 100), &key, now)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut got = Vec::new();
        for t in tasks {
            got.extend(t.await.unwrap());
        }
        assert_eq!(got, vec![round.to_string().into_bytes()], "round {round}");
    }
}

async fn an_expired_value_is_not_given_and_does_not_count(b: Backend) {
    let (s, d) = b.open().await;
    let sp = space("ceremony", 2);
    let now = t0();
    assert!(s.put_once(sp, "a", b"a", now + MINUTE, now).await.unwrap());
    assert_eq!(
        s.take_once(sp, "a", now + MINUTE).await.unwrap(),
        None,
        "taken at its expiry"
    );
    assert_eq!(rows(&d, "ceremony"), 0, "an expired value taken is gone");
    // Two live values fill the space; a third is refused (it must not push
    // out someone else's), replacing one is not.
    for k in ["a", "b"] {
        assert!(s.put_once(sp, k, b"v", now + MINUTE, now).await.unwrap());
    }
    assert!(!s.put_once(sp, "c", b"v", now + MINUTE, now).await.unwrap());
    assert!(s.put_once(sp, "a", b"w", now + MINUTE, now).await.unwrap());
    assert_eq!(s.take_once(sp, "c", now).await.unwrap(), None);
    // Once they expire they no longer count, and they are swept.
    let later = now + MINUTE;
    assert!(s
        .put_once(sp, "c", b"v", later + MINUTE, later)
        .await
        .unwrap());
    assert!(s
        .put_once(sp, "d", b"v", later + MINUTE, later)
        .await
        .unwrap());
    assert_eq!(rows(&d, "ceremony"), 2, "the expired ones were swept");
}

async fn counters_count_within_their_window_and_start_again_after_it(b: Backend) {
    let (s, _d) = b.open().await;
    let sp = space("throttle", 10);
    let now = t0();
    let count = |at: OffsetDateTime| {
        let s = Arc::clone(&s);
        async move {
            s.count_event(sp, "source:192.0.2.7", HOUR, HOUR, at)
                .await
                .unwrap()
        }
    };
    assert_eq!(s.tally(sp, "source:192.0.2.7", now).await.unwrap(), None);
    for n in 1..=3 {
        let t = count(now + Duration::seconds(i64::from(n))).await;
        assert_eq!(t.count, n);
        assert_eq!(t.last, now + Duration::seconds(i64::from(n)));
    }
    assert_eq!(
        s.tally(sp, "source:192.0.2.7", now).await.unwrap(),
        Some(Tally {
            count: 3,
            last: now + Duration::seconds(3)
        })
    );
    assert_eq!(s.tally(sp, "source:198.51.100.1", now).await.unwrap(), None);
    // A clock stepping back counts as within the window.
    assert_eq!(count(now).await.count, 4);
    // Just short of the idle window: still counting; at it: from 1 again.
    // Times are kept to the millisecond.
    let t = count(now + HOUR - Duration::milliseconds(1)).await;
    assert_eq!(t.count, 5);
    assert_eq!(t.last, now + HOUR - Duration::milliseconds(1));
    let last = now + 2 * HOUR - Duration::milliseconds(1);
    assert_eq!(count(last - Duration::milliseconds(1)).await.count, 6);
    assert_eq!(
        count(last + HOUR - Duration::milliseconds(1)).await.count,
        1
    );
    // Kept until `keep` after the last event, then gone.
    let last = last + HOUR - Duration::milliseconds(1);
    assert!(s
        .tally(
            sp,
            "source:192.0.2.7",
            last + HOUR - Duration::milliseconds(1)
        )
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        s.tally(sp, "source:192.0.2.7", last + HOUR).await.unwrap(),
        None
    );
    assert_eq!(count(last + HOUR).await.count, 1, "an expired counter");
    s.forget(sp, "source:192.0.2.7").await.unwrap();
    assert_eq!(
        s.tally(sp, "source:192.0.2.7", last + HOUR).await.unwrap(),
        None
    );
}

async fn a_counter_is_one_count_for_every_server_on_the_database(b: Backend) {
    let (s, d) = b.open().await;
    let other = others(&d, 1).await.pop().unwrap();
    let sp = space("throttle", 10);
    let now = t0();
    for i in 0..10u32 {
        let at = now + Duration::seconds(i64::from(i));
        let store: &dyn EphemeralStore = if i % 2 == 0 { &*s } else { &*other };
        let t = store
            .count_event(sp, "name:someone", HOUR, HOUR, at)
            .await
            .unwrap();
        assert_eq!(t.count, i + 1, "event {i}");
    }
    let seen = other.tally(sp, "name:someone", now).await.unwrap().unwrap();
    assert_eq!(seen.count, 10);
    s.forget(sp, "name:someone").await.unwrap();
    assert_eq!(other.tally(sp, "name:someone", now).await.unwrap(), None);
    // Counted at once from many servers, no event is lost.
    let handles = others(&d, 4).await;
    let tasks: Vec<_> = handles
        .into_iter()
        .map(|h| {
            tokio::spawn(async move {
                for _ in 0..10 {
                    h.count_event(space("throttle", 10), "source:x", HOUR, HOUR, now)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        s.tally(sp, "source:x", now).await.unwrap().unwrap().count,
        40
    );
}

async fn a_full_space_pushes_out_the_least_recently_used_counter(b: Backend) {
    let (s, d) = b.open().await;
    let sp = space("throttle", 3);
    let now = t0();
    let has = |k: &'static str| {
        let s = Arc::clone(&s);
        async move {
            s.tally(space("throttle", 3), k, now)
                .await
                .unwrap()
                .is_some()
        }
    };
    for k in ["a", "b", "c"] {
        s.count_event(sp, k, HOUR, HOUR, now).await.unwrap();
    }
    // "a" is read again (a read counts as a use), so "b" is the oldest.
    assert!(has("a").await);
    s.count_event(sp, "d", HOUR, HOUR, now).await.unwrap();
    assert_eq!(rows(&d, "throttle"), 3);
    assert!(has("a").await && !has("b").await);
    // Read in this order, "a" is the oldest now.
    assert!(has("c").await && has("d").await);
    s.count_event(sp, "e", HOUR, HOUR, now).await.unwrap();
    assert!(!has("a").await, "a was read before c and d");
    assert_eq!(rows(&d, "throttle"), 3);

    // A flood of new keys: whoever keeps failing (or being told to wait)
    // now and then stays, and keeps the count it had.
    let sp = space("flood", 50);
    for _ in 0..6 {
        s.count_event(sp, "attacker", HOUR, HOUR, now)
            .await
            .unwrap();
    }
    for i in 0..200 {
        s.count_event(sp, &format!("filler-{i}"), HOUR, HOUR, now)
            .await
            .unwrap();
        if i % 40 == 0 {
            s.count_event(sp, "attacker", HOUR, HOUR, now)
                .await
                .unwrap();
        }
        if i % 40 == 20 {
            assert!(s.tally(sp, "attacker", now).await.unwrap().is_some());
        }
    }
    assert_eq!(rows(&d, "flood"), 50);
    assert_eq!(
        s.tally(sp, "attacker", now).await.unwrap().unwrap().count,
        11,
        "the attacker's count survived the flood"
    );
    assert!(s.tally(sp, "filler-0", now).await.unwrap().is_none());
    assert!(s.tally(sp, "filler-199", now).await.unwrap().is_some());
    // Other spaces were left alone.
    assert_eq!(rows(&d, "throttle"), 3);
}

async fn a_gate_lets_one_pass_per_period_and_tells_the_refusals_between(b: Backend) {
    let (s, _d) = b.open().await;
    let sp = space("dead", 100);
    let now = t0();
    let day = Duration::days(1);
    let gate = |k: &'static str, at: OffsetDateTime| {
        let s = Arc::clone(&s);
        async move {
            s.pass_gate(space("dead", 100), k, MINUTE, day, at)
                .await
                .unwrap()
        }
    };
    assert_eq!(gate("auth.token tok", now).await, Some(0));
    for i in 1..=37 {
        assert_eq!(
            gate("auth.token tok", now + Duration::seconds(i)).await,
            None
        );
    }
    // Another key is gated on its own.
    assert_eq!(gate("auth.token other", now).await, Some(0));
    assert_eq!(
        gate("alert.x tok", now + Duration::seconds(5)).await,
        Some(0)
    );
    // Just short of the period: refused; at it: passes, with the 38.
    assert_eq!(
        gate("auth.token tok", now + MINUTE - Duration::milliseconds(1)).await,
        None
    );
    assert_eq!(gate("auth.token tok", now + MINUTE).await, Some(38));
    assert_eq!(gate("auth.token tok", now + MINUTE).await, None);
    // Long after: passes, with the one refused since.
    assert_eq!(
        gate("auth.token tok", now + Duration::hours(3)).await,
        Some(1)
    );
    // A clock stepping back does not open the gate.
    assert_eq!(gate("auth.token tok", now).await, None);

    // What passed came to nothing: the next one passes, carrying it.
    assert_eq!(gate("k", now).await, Some(0));
    assert_eq!(gate("k", now).await, None);
    assert_eq!(gate("k", now + MINUTE).await, Some(1));
    s.reopen_gate(sp, "k", 1).await.unwrap();
    assert_eq!(gate("k", now + MINUTE).await, Some(1));
    assert_eq!(gate("k", now + MINUTE).await, None);
    // Kept for `keep`: after that a gate starts afresh.
    assert_eq!(gate("k", now + MINUTE + day).await, Some(0));
}

async fn a_full_space_of_gates_keeps_the_busy_one(b: Backend) {
    let (s, d) = b.open().await;
    let sp = space("dead", 20);
    let now = t0();
    let day = Duration::days(1);
    assert_eq!(
        s.pass_gate(sp, "busy", MINUTE, day, now).await.unwrap(),
        Some(0)
    );
    for i in 0..100 {
        let k = format!("filler{i}");
        assert_eq!(
            s.pass_gate(sp, &k, MINUTE, day, now).await.unwrap(),
            Some(0)
        );
        // The replayed credential stays recently used: still held back.
        assert_eq!(
            s.pass_gate(sp, "busy", MINUTE, day, now).await.unwrap(),
            None
        );
    }
    assert_eq!(rows(&d, "dead"), 20);
    assert_eq!(
        s.pass_gate(sp, "filler0", MINUTE, day, now).await.unwrap(),
        Some(0),
        "pushed out: passes again at once"
    );
    assert_eq!(
        s.pass_gate(sp, "filler99", MINUTE, day, now).await.unwrap(),
        None
    );
    assert_eq!(
        s.pass_gate(sp, "busy", MINUTE, day, now + MINUTE)
            .await
            .unwrap(),
        Some(100)
    );
}

async fn a_claim_is_held_by_one_until_released_or_expired(b: Backend) {
    let (s, d) = b.open().await;
    let other = others(&d, 1).await.pop().unwrap();
    let sp = space("sign-in", 10);
    let now = t0();
    let until = now + MINUTE;
    assert!(s.claim(sp, "name:ann", b"one", until, now).await.unwrap());
    assert!(!s.claim(sp, "name:ann", b"one", until, now).await.unwrap());
    assert!(!other
        .claim(sp, "name:ann", b"two", until, now)
        .await
        .unwrap());
    assert!(other
        .claim(sp, "name:bob", b"two", until, now)
        .await
        .unwrap());
    // Only the holder releases it.
    assert!(!other.release(sp, "name:ann", b"two").await.unwrap());
    assert!(!other
        .claim(sp, "name:ann", b"two", until, now)
        .await
        .unwrap());
    assert!(s.release(sp, "name:ann", b"one").await.unwrap());
    assert!(other
        .claim(sp, "name:ann", b"two", until, now)
        .await
        .unwrap());
    // A holder that died: its claim runs out and is taken over; when it
    // comes back, its release leaves the new holder's claim alone.
    assert!(!s
        .claim(
            sp,
            "name:ann",
            b"three",
            until,
            until - Duration::seconds(1)
        )
        .await
        .unwrap());
    assert!(s
        .claim(sp, "name:ann", b"three", until + MINUTE, until)
        .await
        .unwrap());
    assert!(!other.release(sp, "name:ann", b"two").await.unwrap());
    assert!(!other
        .claim(sp, "name:ann", b"two", until + MINUTE, until)
        .await
        .unwrap());
    // A full space refuses new claims.
    let full = space("sign-in-full", 2);
    assert!(s.claim(full, "a", b"h", until, now).await.unwrap());
    assert!(s.claim(full, "b", b"h", until, now).await.unwrap());
    assert!(!s.claim(full, "c", b"h", until, now).await.unwrap());
    assert!(s.release(full, "a", b"h").await.unwrap());
    assert!(s.claim(full, "c", b"h", until, now).await.unwrap());
}

async fn of_claimers_racing_on_separate_servers_exactly_one_wins(b: Backend) {
    let (_s, d) = b.open().await;
    let claimers = others(&d, 6).await;
    let now = t0();
    for round in 0..15 {
        let key = format!("name:user-{round}");
        let barrier = Arc::new(tokio::sync::Barrier::new(claimers.len()));
        let tasks: Vec<_> = claimers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (c, key, barrier) = (Arc::clone(c), key.clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    let holder = [u8::try_from(i).unwrap()];
                    c.claim(space("sign-in", 100), &key, &holder, now + MINUTE, now)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            won += usize::from(t.await.unwrap());
        }
        assert_eq!(won, 1, "round {round}");
    }
}

async fn expired_entries_are_swept(b: Backend) {
    let (s, d) = b.open().await;
    let now = t0();
    let later = now + Duration::days(2);
    for i in 0..5 {
        let k = format!("k{i}");
        s.put_once(space("ceremony", 10), &k, b"v", now + MINUTE, now)
            .await
            .unwrap();
        s.count_event(space("throttle", 10), &k, HOUR, HOUR, now)
            .await
            .unwrap();
        s.claim(space("sign-in", 10), &k, b"h", now + MINUTE, now)
            .await
            .unwrap();
    }
    // One that is still live then stays.
    s.put_once(space("ceremony", 10), "live", b"v", later + MINUTE, now)
        .await
        .unwrap();
    assert_eq!(d.raw_i64("SELECT COUNT(*) FROM ephemeral"), 16);
    assert_eq!(s.sweep_ephemeral(later).await.unwrap(), 15);
    assert_eq!(d.raw_i64("SELECT COUNT(*) FROM ephemeral"), 1);

    // Without a sweep, a new counter sweeps a batch of others' expired
    // entries as it is stored.
    for i in 0..5 {
        s.claim(
            space("sign-in", 10),
            &format!("c{i}"),
            b"h",
            now + MINUTE,
            now,
        )
        .await
        .unwrap();
    }
    s.count_event(space("throttle", 10), "new", HOUR, HOUR, later)
        .await
        .unwrap();
    assert_eq!(rows(&d, "sign-in"), 0);
}

on_both_backends!(
    a_one_time_value_is_taken_once_on_any_server,
    of_takers_racing_on_separate_servers_exactly_one_gets_the_value,
    an_expired_value_is_not_given_and_does_not_count,
    counters_count_within_their_window_and_start_again_after_it,
    a_counter_is_one_count_for_every_server_on_the_database,
    a_full_space_pushes_out_the_least_recently_used_counter,
    a_gate_lets_one_pass_per_period_and_tells_the_refusals_between,
    a_full_space_of_gates_keeps_the_busy_one,
    a_claim_is_held_by_one_until_released_or_expired,
    of_claimers_racing_on_separate_servers_exactly_one_wins,
    expired_entries_are_swept,
);
