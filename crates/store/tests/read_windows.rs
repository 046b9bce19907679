//! The bulk-read limit's windows: what the detector relies on, on both
//! backends, and across two handles on one database (two servers).
#![allow(clippy::unwrap_used)]

use backends::Backend;
use mamori_ports::{ReadLimitStore, ReadRequest, ReadVerdict};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

mod backends;

static IDS: AtomicI64 = AtomicI64::new(1);

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

async fn reserve(
    s: &dyn ReadLimitStore,
    keys: &[&str],
    people: u64,
    now: OffsetDateTime,
    threshold: u64,
) -> ReadVerdict {
    let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    s.reserve_reads(&ReadRequest {
        id: IDS.fetch_add(1, Ordering::Relaxed),
        keys: &keys,
        people,
        now,
        window: Duration::minutes(1),
        threshold,
        count_when_over: false,
    })
    .await
    .unwrap()
}

async fn the_read_past_the_threshold_is_refused_and_nothing_counted(b: Backend) {
    let (s, _d) = b.open().await;
    let k = ["account:a", "network:10.0.0.0/24"];
    assert!(reserve(&*s, &k, 3, t0(), 5).await.counted);
    assert!(
        reserve(&*s, &k, 2, t0(), 5).await.counted,
        "exactly 5 is allowed"
    );
    let v = reserve(&*s, &k, 1, t0(), 5).await;
    assert!(!v.counted);
    let over = v.over.unwrap();
    assert_eq!(
        (over.key.as_str(), over.read, over.alert),
        ("account:a", 5, true)
    );
    // The refused read counted nowhere: another account on the same
    // network is over by the network's 5, not 6.
    let v = reserve(&*s, &["account:b", "network:10.0.0.0/24"], 1, t0(), 5).await;
    let over = v.over.unwrap();
    assert_eq!((over.key.as_str(), over.read), ("network:10.0.0.0/24", 5));
    // A window later, all is forgotten.
    let later = t0() + Duration::minutes(1);
    assert!(reserve(&*s, &k, 5, later, 5).await.counted);
}

async fn an_alert_is_raised_once_per_burst_with_its_evidence(b: Backend) {
    let (s, _d) = b.open().await;
    let keys = vec!["account:a".to_owned()];
    let first = s
        .reserve_reads(&ReadRequest {
            id: 1 << 40,
            keys: &keys,
            people: 2,
            now: t0(),
            window: Duration::minutes(1),
            threshold: 2,
            count_when_over: true,
        })
        .await
        .unwrap();
    assert_eq!(
        first,
        ReadVerdict {
            over: None,
            counted: true
        }
    );
    s.attach_read_evidence(1 << 40, &[7, 8], t0())
        .await
        .unwrap();
    let alert_only = |now| ReadRequest {
        id: IDS.fetch_add(1, Ordering::Relaxed),
        keys: &keys,
        people: 1,
        now,
        window: Duration::minutes(1),
        threshold: 2,
        count_when_over: true,
    };
    let v = s.reserve_reads(&alert_only(t0())).await.unwrap();
    let over = v.over.unwrap();
    assert!(v.counted, "alert-only: counted anyway");
    assert_eq!(
        (over.read, over.alert, over.evidence),
        (2, true, vec![7, 8])
    );
    let v = s
        .reserve_reads(&alert_only(t0() + Duration::seconds(30)))
        .await
        .unwrap();
    assert!(!v.over.unwrap().alert, "the same burst alerts once");
    // A window after the alert, a new burst alerts again.
    let v = s
        .reserve_reads(&alert_only(t0() + Duration::seconds(50)))
        .await
        .unwrap();
    assert!(!v.over.unwrap().alert);
    let v = s
        .reserve_reads(&alert_only(t0() + Duration::seconds(61)))
        .await
        .unwrap();
    assert!(v.over.unwrap().alert);
}

/// Four handles (four servers) reading one person at a time, all at once,
/// under a threshold of 10: exactly 10 reads are counted, whichever
/// handle each came through.
async fn requests_on_several_servers_never_pass_the_limit_together(b: Backend) {
    let (s, d) = b.open().await;
    let mut handles = vec![s];
    for _ in 0..3 {
        handles.push(d.another().await);
    }
    let counted = Arc::new(AtomicI64::new(0));
    let mut tasks = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        let counted = Arc::clone(&counted);
        tasks.push(tokio::spawn(async move {
            for _ in 0..8 {
                let network = format!("network:10.{i}.0.0/24");
                if reserve(&*h, &["account:insider", &network], 1, t0(), 10)
                    .await
                    .counted
                {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(counted.load(Ordering::Relaxed), 10);
}

on_both_backends!(
    the_read_past_the_threshold_is_refused_and_nothing_counted,
    an_alert_is_raised_once_per_burst_with_its_evidence,
    requests_on_several_servers_never_pass_the_limit_together,
);
