//! The breach-scope scan reads only the window it is asked for: an empty
//! window costs a few index pages however long the log is (it once walked
//! every index entry of the action, which made every report on a log of
//! ten million records cost about 0.3 s).
#![allow(clippy::unwrap_used)]

use mamori_domain::breach::{AccessFilter, ScopeBuilder, PERSONAL_DATA_ACTIONS};
use mamori_ports::AuditStore;
use mamori_store_pg::PgStore;
use mamori_testkit::pg;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Records in the log (half of them `people.read`).
const RECORDS: i64 = 300_000;

/// Index pages of `audit_log_access` read so far, and its scans, once the
/// statistics show at least `scans` scans (a backend reports them when it
/// goes idle, within a few seconds).
fn index_reads(db: &str, scans: i64) -> (i64, i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = pg::shared()
            .psql(
                db,
                "SELECT s.idx_scan || ' ' || (io.idx_blks_read + io.idx_blks_hit)
                 FROM pg_stat_user_indexes s JOIN pg_statio_user_indexes io USING (indexrelid)
                 WHERE s.indexrelname = 'audit_log_access'",
            )
            .unwrap();
        let mut parts = row.split_whitespace().map(|v| v.parse::<i64>().unwrap());
        let (seen, pages) = (parts.next().unwrap(), parts.next().unwrap());
        if seen >= scans {
            return (seen, pages);
        }
        assert!(Instant::now() < deadline, "no statistics after 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_window_reads_a_few_pages_of_a_long_log() {
    let url = pg::shared().fresh_database();
    let store = PgStore::connect(&url).await.unwrap();
    let db = pg::Cluster::database_of(&url);
    let end: i64 = 1_800_000_000;
    let start = end - 365 * 86_400;
    pg::shared()
        .psql(
            db,
            &format!(
                "INSERT INTO audit_log (seq, at, actor, action, target, outcome, detail)
                 SELECT i, {start} + i * (365 * 86400) / {RECORDS}, 'admin:a' || (i % 300),
                        CASE WHEN i % 2 = 0 THEN 'people.read' ELSE 'api.request' END,
                        md5(i::text), 'success', 'fields=name,email'
                 FROM generate_series(1::BIGINT, {RECORDS}) AS i;
                 ANALYZE audit_log;"
            ),
        )
        .unwrap();
    let at = |t: i64| OffsetDateTime::from_unix_timestamp(t).unwrap();
    let (scans_before, pages_before) = index_reads(db, 0);
    // Enough reports for the prepared scan to go from custom plans to the
    // generic one.
    let reports = 4;
    for _ in 0..reports {
        let scope = store
            .scan_audit_access(
                PERSONAL_DATA_ACTIONS,
                at(end + 10),
                at(end + 20),
                &AccessFilter::default(),
                ScopeBuilder::default(),
            )
            .await
            .unwrap()
            .finish(at(end + 10), at(end + 20), None);
        assert_eq!(scope.people_affected, 0);
    }
    let wanted = scans_before + reports * PERSONAL_DATA_ACTIONS.len() as i64;
    let (_, pages_after) = index_reads(db, wanted);
    let pages = pages_after - pages_before;
    // A descent is 3 or 4 pages; the action's entries span thousands.
    assert!(
        pages < 100,
        "{reports} empty reports read {pages} pages of audit_log_access"
    );
    // And a day in the middle finds its records.
    let day = start + 100 * 86_400;
    let scope = store
        .scan_audit_access(
            PERSONAL_DATA_ACTIONS,
            at(day),
            at(day + 86_400),
            &AccessFilter::default(),
            ScopeBuilder::default(),
        )
        .await
        .unwrap()
        .finish(at(day), at(day + 86_400), None);
    assert!(scope.people_affected > 300, "{}", scope.people_affected);
    // The whole year, fifteen batches of the scan: every read counted.
    let scope = store
        .scan_audit_access(
            PERSONAL_DATA_ACTIONS,
            at(start),
            at(end + 1),
            &AccessFilter::default(),
            ScopeBuilder::default(),
        )
        .await
        .unwrap()
        .finish(at(start), at(end + 1), None);
    assert_eq!(scope.people_affected, RECORDS as usize / 2);
    store.close();
}
