//! The throwaway PostgreSQL cluster the PostgreSQL backend's tests start:
//! it answers SQL over its socket only, clusters started at once do not
//! collide, and it is gone once dropped.
#![allow(clippy::unwrap_used)]

use mamori_testkit::pg::Cluster;

#[test]
fn a_throwaway_cluster_answers_and_is_gone_once_dropped() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(Cluster::start);
        let b = s.spawn(Cluster::start);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.psql("postgres", "SELECT 1").unwrap(), "1");
    a.psql("postgres", "CREATE DATABASE t").unwrap();
    a.psql(
        "t",
        "CREATE TABLE x (v text); INSERT INTO x VALUES ('ふたつ')",
    )
    .unwrap();
    assert_eq!(a.psql("t", "SELECT v FROM x").unwrap(), "ふたつ");
    // Two clusters, two servers: the other has no such database.
    assert!(b.psql("t", "SELECT 1").is_err());
    // No TCP: the server listens on its socket only.
    assert_eq!(a.psql("postgres", "SHOW listen_addresses").unwrap(), "");
    assert!(a.url("t").starts_with("postgres://mamori@/t?host=/"));
    let dir = a.socket_dir().to_owned();
    drop(a);
    assert!(!dir.exists(), "the cluster's directory is removed");
    drop(b);
}
