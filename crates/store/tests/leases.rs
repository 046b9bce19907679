//! The jobs' leases: of holders racing for one, exactly one wins (on
//! PostgreSQL, each holder with its own pool, as separate servers); a held
//! lease is refused to others until it runs out or is released; the holder
//! renews it; a holder whose lease was taken over cannot take it back by
//! renewing. Every test runs on both backends.
#![allow(clippy::unwrap_used)]

use backends::{Backend, Db};
use mamori_ports::*;
use mamori_store_pg::PgStore;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

mod backends;

const MINUTE: Duration = Duration::from_secs(60);

/// `n` holders' views of the store: on PostgreSQL each its own connection
/// pool (separate servers), on SQLite the one store (one server per file).
async fn contenders(s: &Arc<dyn Store>, d: &Db, n: usize) -> Vec<Arc<dyn LeaseStore>> {
    let mut out: Vec<Arc<dyn LeaseStore>> = Vec::new();
    for _ in 0..n {
        match d {
            Db::Postgres(url) => out.push(Arc::new(PgStore::connect(url).await.unwrap())),
            Db::Sqlite(_) => out.push(Arc::clone(s) as Arc<dyn LeaseStore>),
        }
    }
    out
}

/// Makes every stored lease run out (beneath the ports).
fn expire_all(d: &Db) {
    d.raw("UPDATE job_leases SET until_ms = 1").unwrap();
}

async fn of_holders_racing_for_a_lease_exactly_one_wins(b: Backend) {
    let (s, d) = b.open().await;
    let holders = contenders(&s, &d, 8).await;
    for round in 0..12 {
        let name = format!("job-{round}");
        if round % 2 == 1 {
            // A lease whose holder died: as free as one never taken.
            assert!(s
                .acquire_lease(&name, "dead", MINUTE)
                .await
                .unwrap()
                .is_some());
            expire_all(&d);
        }
        let start = Arc::new(tokio::sync::Barrier::new(holders.len()));
        let tries = holders.iter().enumerate().map(|(i, h)| {
            let (h, start, name) = (Arc::clone(h), Arc::clone(&start), name.clone());
            tokio::spawn(async move {
                start.wait().await;
                let me = format!("server-{i}");
                let granted = h.acquire_lease(&name, &me, MINUTE).await.unwrap();
                granted.map(|_| me)
            })
        });
        let mut winners = Vec::new();
        for t in tries.collect::<Vec<_>>() {
            winners.extend(t.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let stored = s.leases().await.unwrap();
        let lease = stored.iter().find(|l| l.name == name).unwrap();
        assert_eq!(lease.holder, winners[0], "round {round}");
    }
}

async fn a_held_lease_is_refused_to_others_and_handed_over_when_it_runs_out(b: Backend) {
    let (s, _d) = b.open().await;
    let before = OffsetDateTime::now_utc();
    let until = s.acquire_lease("job", "a", MINUTE).await.unwrap().unwrap();
    let after = OffsetDateTime::now_utc();
    // It ends a minute from when it was granted (the database's clock is
    // this machine's; a few seconds' slack).
    let slack = time::Duration::seconds(5);
    assert!(until >= before + MINUTE - slack && until <= after + MINUTE + slack);
    assert_eq!(s.acquire_lease("job", "b", MINUTE).await.unwrap(), None);
    // A short lease, not renewed, runs out and goes to the next holder.
    let short = Duration::from_millis(300);
    assert!(s
        .acquire_lease("short", "a", short)
        .await
        .unwrap()
        .is_some());
    let mut taken = None;
    for _ in 0..300 {
        taken = s.acquire_lease("short", "b", MINUTE).await.unwrap();
        if taken.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(taken.is_some(), "the lease never ran out");
    assert_eq!(s.acquire_lease("short", "a", short).await.unwrap(), None);
    let stored = s.leases().await.unwrap();
    let holder = |name: &str| {
        stored
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.holder.clone())
    };
    assert_eq!(holder("job").as_deref(), Some("a"));
    assert_eq!(holder("short").as_deref(), Some("b"));
}

async fn the_holder_renews_its_lease(b: Backend) {
    let (s, d) = b.open().await;
    let first = s.acquire_lease("job", "a", MINUTE).await.unwrap().unwrap();
    let renewed = s
        .acquire_lease("job", "a", 10 * MINUTE)
        .await
        .unwrap()
        .unwrap();
    assert!(renewed >= first + 8 * MINUTE, "{first} → {renewed}");
    assert_eq!(s.acquire_lease("job", "b", MINUTE).await.unwrap(), None);
    let stored = s.leases().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].holder.as_str(), stored[0].until), ("a", renewed));
    // A renewal that comes late, when no one took the lease over, is still
    // granted to its holder.
    expire_all(&d);
    assert!(s.acquire_lease("job", "a", MINUTE).await.unwrap().is_some());
    assert_eq!(s.acquire_lease("job", "b", MINUTE).await.unwrap(), None);
}

async fn a_stale_holder_cannot_renew_a_lease_taken_over(b: Backend) {
    let (s, d) = b.open().await;
    assert!(s.acquire_lease("job", "a", MINUTE).await.unwrap().is_some());
    expire_all(&d);
    let taken = s.acquire_lease("job", "b", MINUTE).await.unwrap().unwrap();
    // The old holder comes back: its renewal is refused, its release
    // leaves the new holder's lease alone.
    assert_eq!(s.acquire_lease("job", "a", MINUTE).await.unwrap(), None);
    assert!(!s.release_lease("job", "a").await.unwrap());
    let stored = s.leases().await.unwrap();
    assert_eq!(
        stored,
        vec![Lease {
            name: "job".into(),
            holder: "b".into(),
            until: taken
        }]
    );
    assert_eq!(s.acquire_lease("job", "a", MINUTE).await.unwrap(), None);
}

async fn a_released_lease_is_free_at_once(b: Backend) {
    let (s, _d) = b.open().await;
    assert!(s.acquire_lease("job", "a", MINUTE).await.unwrap().is_some());
    assert!(s
        .acquire_lease("other", "a", MINUTE)
        .await
        .unwrap()
        .is_some());
    assert!(!s.release_lease("job", "b").await.unwrap(), "not b's");
    assert_eq!(s.acquire_lease("job", "b", MINUTE).await.unwrap(), None);
    assert!(s.release_lease("job", "a").await.unwrap());
    assert!(!s.release_lease("job", "a").await.unwrap(), "released once");
    assert!(s.acquire_lease("job", "b", MINUTE).await.unwrap().is_some());
    let stored: Vec<(String, String)> = s
        .leases()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.name, l.holder))
        .collect();
    assert_eq!(
        stored,
        vec![
            ("job".to_owned(), "b".to_owned()),
            ("other".to_owned(), "a".to_owned())
        ]
    );
}

on_both_backends!(
    of_holders_racing_for_a_lease_exactly_one_wins,
    a_held_lease_is_refused_to_others_and_handed_over_when_it_runs_out,
    the_holder_renews_its_lease,
    a_stale_holder_cannot_renew_a_lease_taken_over,
    a_released_lease_is_free_at_once,
);
