//! The audit chain under servers appending at once: several handles on one
//! database (several servers) append and issue certificates concurrently.
//! The store links each append onto the end it holds under its write lock,
//! so no append is refused or retried, and the chain stays whole: numbered
//! without a gap, every link and hash right, every batch in one piece.
#![allow(clippy::unwrap_used)]

use backends::Backend;
use mamori_domain::{AuditEvent, DeviceCertificate};
use mamori_ports::Store;
use std::collections::HashMap;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

mod backends;
mod linker;

/// Handles on one database (servers).
const HANDLES: usize = 8;
/// Records each handle appends.
const RECORDS: usize = 200;

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn event(handle: usize, n: usize) -> AuditEvent {
    AuditEvent {
        at: now(),
        actor: format!("server:{handle}"),
        source: None,
        action: "test.append".into(),
        target: None,
        outcome: "success".into(),
        request_id: None,
        detail: Some(format!("n={n}")),
    }
}

/// `HANDLES` handles, the first the one `b.open()` gave.
async fn handles(b: Backend) -> (Vec<Arc<dyn Store>>, backends::Db) {
    let (s, d) = b.open().await;
    let mut all = vec![s];
    for _ in 1..HANDLES {
        all.push(d.another().await);
    }
    (all, d)
}

/// Which handle wrote a record, and its number in that handle's sequence.
fn origin(e: &AuditEvent) -> (String, usize) {
    let n = e
        .detail
        .as_deref()
        .and_then(|d| d.strip_prefix("n="))
        .unwrap()
        .parse()
        .unwrap();
    (e.actor.clone(), n)
}

/// Eight handles each append 200 records at once, in batches of 1 to 4:
/// every append succeeds at its first try, and the chain holds all 1,600
/// records, gapless and verified, each batch in one piece and each
/// handle's records in the order it appended them.
async fn servers_appending_at_once_all_succeed_and_keep_the_chain_whole(b: Backend) {
    let (stores, _d) = handles(b).await;
    let reader = Arc::clone(&stores[0]);
    let tasks: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(h, s)| {
            tokio::spawn(async move {
                let linker = linker::Linker::default();
                let (mut next, mut batches) = (0, Vec::new());
                while next < RECORDS {
                    let size = (batches.len() % 4 + 1).min(RECORDS - next);
                    let events: Vec<_> = (next..next + size).map(|n| event(h, n)).collect();
                    let seqs = s
                        .append_audit(&events, &linker)
                        .await
                        .unwrap_or_else(|e| panic!("handle {h}'s append of {next} failed: {e}"));
                    assert_eq!(seqs.len(), size);
                    batches.push(seqs);
                    next += size;
                }
                batches
            })
        })
        .collect();
    let mut batches = Vec::new();
    for t in tasks {
        batches.extend(t.await.unwrap());
    }
    let chain = linker::verify(&*reader).await;
    assert_eq!(chain.len(), HANDLES * RECORDS, "every record landed once");
    for seqs in &batches {
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "a batch is in one piece, in order: {seqs:?}"
        );
    }
    let mut last: HashMap<String, usize> = HashMap::new();
    for r in &chain {
        let (who, n) = origin(&r.event);
        let expected = last.get(&who).map_or(0, |p| p + 1);
        assert_eq!(n, expected, "{who}'s records in the order appended");
        last.insert(who, n);
    }
    assert_eq!(last.len(), HANDLES);
}

/// Eight handles issue certificates while they append: every issuance and
/// every append succeeds, each issuance's record is in the chain, which
/// stays whole.
async fn issuances_and_appends_at_once_all_succeed_and_keep_the_chain_whole(b: Backend) {
    let (stores, _d) = handles(b).await;
    let reader = Arc::clone(&stores[0]);
    const EACH: usize = 25;
    let tasks: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(h, s)| {
            tokio::spawn(async move {
                let linker = linker::Linker::default();
                for n in 0..EACH {
                    let fp = format!("fp-{h}-{n}");
                    let cert = DeviceCertificate {
                        fingerprint: fp.clone(),
                        serial: format!("{h:02x}{n:02x}"),
                        profile_id: None,
                        device: None,
                        renewed_from: None,
                        not_after: now() + Duration::days(1),
                        issued_at: now(),
                        revoked_at: None,
                    };
                    let issued = AuditEvent {
                        action: "device.certificate_issue".into(),
                        target: Some(fp),
                        ..event(h, 2 * n)
                    };
                    assert!(s
                        .record_issuance(None, &cert, &issued, &linker, now())
                        .await
                        .unwrap());
                    s.append_audit(&[event(h, 2 * n + 1)], &linker)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let s = reader;
    let chain = linker::verify(&*s).await;
    assert_eq!(chain.len(), HANDLES * EACH * 2);
    let issued: Vec<_> = chain
        .iter()
        .filter(|r| r.event.action == "device.certificate_issue")
        .collect();
    assert_eq!(issued.len(), HANDLES * EACH);
    for r in issued {
        let fp = r.event.target.as_deref().unwrap();
        assert!(s.certificate(fp).await.unwrap().is_some(), "{fp}");
    }
}

/// A server whose last append is no longer the end (another appended
/// since, in a batch and alone, and a certificate issuance appended too)
/// appends after them, never onto its own old end: on PostgreSQL the end
/// a store remembers is only a first guess.
async fn an_append_after_other_servers_links_onto_their_records(b: Backend) {
    let (s, d) = b.open().await;
    let other = d.another().await;
    let linker = linker::Linker::default();
    for round in 0..3 {
        let mine = s.append_audit(&[event(0, round)], &linker).await.unwrap();
        let theirs = other
            .append_audit(&[event(1, 2 * round), event(1, 2 * round + 1)], &linker)
            .await
            .unwrap();
        assert_eq!(theirs, vec![mine[0] + 1, mine[0] + 2]);
    }
    let next = s.append_audit(&[event(0, 3)], &linker).await.unwrap();
    assert_eq!(next, vec![10]);
    // Its own end again: the next follows it.
    let again = s.append_audit(&[event(0, 4)], &linker).await.unwrap();
    assert_eq!(again, vec![11]);
    let chain = linker::verify(&*s).await;
    assert_eq!(chain.len(), 11);
}

on_both_backends!(
    servers_appending_at_once_all_succeed_and_keep_the_chain_whole,
    issuances_and_appends_at_once_all_succeed_and_keep_the_chain_whole,
    an_append_after_other_servers_links_onto_their_records,
);
