//! Identity changes reach every server on the database: an announcement on
//! one store handle arrives at another's watch; a watch whose connection
//! is cut says so (`Lost`), listens again, and goes on delivering. SQLite
//! serves one process and has no watch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mamori_domain::DeviceKey;
use mamori_ports::{IdentityChange, IdentityEvent, IdentityFeed};
use mamori_store_pg::PgStore;
use mamori_testkit::pg;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The next event, or a failure after a generous bound (a missing event,
/// not a slow one, is what this catches).
async fn next(rx: &mut mpsc::UnboundedReceiver<IdentityEvent>) -> IdentityEvent {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("an event within 20 s")
        .expect("the watch is alive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announcement_reaches_the_other_servers_and_a_cut_watch_says_so() {
    let url = pg::shared().fresh_database();
    let a = PgStore::connect(&url).await.unwrap();
    let b = PgStore::connect(&url).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    assert!(b.watch_identity_changes(Arc::new(move |e| {
        let _ = tx.send(e);
    })));
    assert_eq!(next(&mut rx).await, IdentityEvent::Listening);

    let device = IdentityChange::Device(DeviceKey::parse("UDID-A1").unwrap());
    let sent = Instant::now();
    a.announce_identity_change(&device).await.unwrap();
    assert_eq!(next(&mut rx).await, IdentityEvent::Changed(device));
    println!("announcement delivered in {:?}", sent.elapsed());
    let cert = IdentityChange::Certificate("0a1b2c".into());
    a.announce_identity_change(&cert).await.unwrap();
    assert_eq!(next(&mut rx).await, IdentityEvent::Changed(cert));

    // The database ends the watch's connection (a restart, a failover, an
    // administrator): the watch reports it, then listens again.
    let name = pg::Cluster::database_of(&url);
    let ended = pg::shared()
        .psql(
            name,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE query LIKE 'LISTEN mamori_identity%'",
        )
        .unwrap();
    assert_eq!(ended, "1");
    assert_eq!(next(&mut rx).await, IdentityEvent::Lost);
    assert_eq!(next(&mut rx).await, IdentityEvent::Listening);
    let again = IdentityChange::Device(DeviceKey::parse("UDID-A2").unwrap());
    a.announce_identity_change(&again).await.unwrap();
    assert_eq!(next(&mut rx).await, IdentityEvent::Changed(again));

    // Closed, the store stops watching.
    b.close();
    a.announce_identity_change(&IdentityChange::Certificate("ff".into()))
        .await
        .unwrap();
    let after = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
    assert!(
        matches!(after, Ok(None) | Err(_)),
        "no event after close: {after:?}"
    );
    a.close();
}

#[tokio::test]
async fn sqlite_has_no_other_server_to_hear_from() {
    let dir = tempfile::tempdir().unwrap();
    let s = mamori_store::SqliteStore::open(&dir.path().join("t.db"))
        .await
        .unwrap();
    assert!(!s.watch_identity_changes(Arc::new(|_| {})));
    s.announce_identity_change(&IdentityChange::Certificate("x".into()))
        .await
        .unwrap();
}
