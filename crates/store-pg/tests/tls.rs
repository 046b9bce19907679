//! TLS to PostgreSQL, against a throwaway cluster that takes TCP
//! connections over TLS only (`pg::shared_tls`: a certificate for
//! `localhost` from a test CA). Each `sslmode` checks what libpq's does,
//! the pool and the identity watch alike, and a refusal says what to fix
//! without the URL's password.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mamori_domain::DeviceKey;
use mamori_ports::{IdentityChange, IdentityEvent, IdentityFeed, SecretStore};
use mamori_store_pg::PgStore;
use mamori_testkit::apns::Ca;
use mamori_testkit::pg::{self, Cluster, CERT_HOST};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// A password in every URL: no error may repeat it (the cluster trusts
/// the connection and never asks for it).
const PASSWORD: &str = "Hunter2-never-shown";

/// A CA file in a directory that lives as long as the test.
struct CaFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl CaFile {
    fn new(pem: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.crt");
        std::fs::write(&path, pem).unwrap();
        Self { _dir: dir, path }
    }

    /// The CA that signed the cluster's certificate.
    fn right() -> Self {
        Self::new(pg::shared_tls().ca_pem().expect("a TLS cluster"))
    }

    /// A CA that signed nothing the cluster holds.
    fn other() -> Self {
        Self::new(&Ca::new("Some other CA").pem())
    }

    fn query(&self, mode: &str) -> String {
        format!("sslmode={mode}&sslrootcert={}", self.path.display())
    }
}

/// A fresh database's name on the TLS cluster.
fn database() -> String {
    Cluster::database_of(&pg::shared_tls().fresh_database()).to_owned()
}

/// A URL over TCP for `db`, the server named `host`, with a password.
fn url(db: &str, host: &str, query: &str) -> String {
    pg::shared_tls()
        .tcp_url(db, host, query)
        .replacen("mamori@", &format!("mamori:{PASSWORD}@"), 1)
}

/// The store at `url` works: a secret written is read back.
async fn works(url: &str) {
    let s = PgStore::connect(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let now = OffsetDateTime::now_utc();
    s.put_secret("tls-check", b"sealed bytes", now)
        .await
        .unwrap();
    assert_eq!(
        s.secret("tls-check").await.unwrap().as_deref(),
        Some(&b"sealed bytes"[..])
    );
    s.close();
}

/// The refusal `url` meets, checked to hold every part of `says` and not
/// the password.
async fn refused(url: &str, says: &[&str]) -> String {
    let e = PgStore::connect(url)
        .await
        .expect_err("the connection is refused")
        .to_string();
    for part in says {
        assert!(e.contains(part), "{e:?} should say {part:?}");
    }
    assert!(!e.contains(PASSWORD), "the password leaked: {e}");
    println!("refused: {e}");
    e
}

#[tokio::test]
async fn verify_full_with_the_right_ca_runs_the_store_over_tls() {
    let ca = CaFile::right();
    let db = database();
    works(&url(&db, CERT_HOST, &ca.query("verify-full"))).await;
    // A CA file and no mode: verify-full.
    let root = format!("sslrootcert={}", ca.path.display());
    works(&url(&db, CERT_HOST, &root)).await;
    // The keyword form reads the same.
    let keywords = format!(
        "host={CERT_HOST} hostaddr=127.0.0.1 port={} user=mamori password='{PASSWORD}' \
         dbname={db} sslmode=verify-full sslrootcert='{}'",
        pg::shared_tls().port(),
        ca.path.display()
    );
    works(&keywords).await;
    // The server saw TLS: it takes nothing else over TCP, and says so.
    let s = PgStore::connect(&url(&db, CERT_HOST, &ca.query("verify-full")))
        .await
        .unwrap();
    s.put_secret("held", b"x", OffsetDateTime::now_utc())
        .await
        .unwrap();
    let seen = pg::shared_tls()
        .psql(
            "postgres",
            &format!(
                "SELECT bool_and(s.ssl) AND count(*) > 0 FROM pg_stat_ssl s \
                 JOIN pg_stat_activity a USING (pid) \
                 WHERE a.datname = '{db}' AND a.client_addr IS NOT NULL"
            ),
        )
        .unwrap();
    assert_eq!(seen, "t");
    s.close();
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let other = CaFile::other();
    let db = database();
    let named = format!("sslrootcert {}", other.path.display());
    for mode in ["verify-full", "verify-ca", "require"] {
        // `require` with a CA file checks the chain, as libpq's does.
        refused(
            &url(&db, CERT_HOST, &other.query(mode)),
            &["not signed by a CA in", &named, "set sslrootcert"],
        )
        .await;
    }
    // No CA file: the system's CAs, which never signed a test CA's
    // certificate.
    refused(
        &url(&db, CERT_HOST, "sslmode=verify-full"),
        &["sslrootcert"],
    )
    .await;
}

#[tokio::test]
async fn a_wrong_host_name_is_refused_by_verify_full_only() {
    let ca = CaFile::right();
    let db = database();
    let wrong = "db.wrong-name.test";
    for query in [
        ca.query("verify-full"),
        format!("sslrootcert={}", ca.path.display()),
    ] {
        refused(
            &url(&db, wrong, &query),
            &[
                "not valid for the host name db.wrong-name.test",
                "sslmode=verify-ca",
            ],
        )
        .await;
    }
    // verify-ca checks the chain only; require checks nothing.
    works(&url(&db, wrong, &ca.query("verify-ca"))).await;
    works(&url(&db, wrong, "sslmode=require")).await;
}

#[tokio::test]
async fn plaintext_is_refused_by_a_server_that_takes_only_tls() {
    let db = database();
    // Asked for, and by default on a loopback host: the server refuses.
    for query in ["sslmode=disable", ""] {
        refused(
            &url(&db, CERT_HOST, query),
            &[
                "PostgreSQL 28000",
                "no encryption",
                "write sslmode=verify-full",
            ],
        )
        .await;
    }
    // A mode that could fall back to plaintext is refused before trying.
    refused(
        &url(&db, CERT_HOST, "sslmode=prefer"),
        &["falls back to plaintext", "sslmode=verify-full"],
    )
    .await;
}

#[tokio::test]
async fn a_server_offering_no_tls_is_named() {
    // A server that answers PostgreSQL's TLS request with "no".
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut c, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 8];
        c.read_exact(&mut request).await.unwrap();
        c.write_all(b"N").await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let ca = CaFile::right();
    let url = format!(
        "postgres://mamori:{PASSWORD}@{CERT_HOST}:{port}/x?hostaddr=127.0.0.1&{}",
        ca.query("verify-full")
    );
    refused(&url, &["PostgreSQL offers no TLS", "sslmode=disable"]).await;
    server.abort();
}

#[tokio::test]
async fn a_unix_socket_ignores_sslmode_as_libpq_does() {
    let cluster = pg::shared_tls();
    let db = database();
    works(&format!("{}&sslmode=verify-full", cluster.url(&db))).await;
}

/// The next event, or a failure after a generous bound.
async fn next(rx: &mut mpsc::UnboundedReceiver<IdentityEvent>) -> IdentityEvent {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("an event within 20 s")
        .expect("the watch is alive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_changes_travel_over_tls() {
    let ca = CaFile::right();
    let db = database();
    let url = url(&db, CERT_HOST, &ca.query("verify-full"));
    let a = PgStore::connect(&url).await.unwrap();
    let b = PgStore::connect(&url).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    assert!(b.watch_identity_changes(Arc::new(move |e| {
        let _ = tx.send(e);
    })));
    assert_eq!(next(&mut rx).await, IdentityEvent::Listening);
    let change = IdentityChange::Device(DeviceKey::parse("UDID-TLS-1").unwrap());
    a.announce_identity_change(&change).await.unwrap();
    assert_eq!(next(&mut rx).await, IdentityEvent::Changed(change));
    // The watch's own connection is one of the TLS ones.
    let listening = pg::shared_tls()
        .psql(
            "postgres",
            &format!(
                "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.datname = '{db}' AND a.query LIKE 'LISTEN mamori_identity%'"
            ),
        )
        .unwrap();
    assert_eq!(listening, "t");
    a.close();
    b.close();
}
