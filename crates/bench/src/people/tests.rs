//! Tests of the `--people` data, figures and report.

#![allow(clippy::unwrap_used)]
use super::data::*;
use super::report::purge_only;
use super::*;
use std::collections::HashSet;

#[test]
fn csv_rows_are_valid_and_distinct() {
    let body = csv(0..1000);
    let mut lines = body.lines();
    assert_eq!(lines.next(), Some(CSV_HEADER));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 1000);
    assert!(rows.iter().all(|r| r.len() == 6));
    assert_eq!(
        rows[123],
        [
            "Person 000123",
            "u000123",
            "person.000123@bench.example",
            "Human Resources",
            "+81-3-0000-0123",
            "active"
        ]
    );
    assert_eq!(rows[9][5], "departed");
    for col in 0..3 {
        let distinct: HashSet<&str> = rows.iter().map(|r| r[col]).collect();
        assert_eq!(distinct.len(), 1000, "column {col} repeats");
    }
    // Phones: digits, '+' and '-' only, within the server's 32 characters.
    assert!(rows
        .iter()
        .all(|r| r[4].len() <= 32 && r[4].chars().all(|c| c.is_ascii_digit() || "+-".contains(c))));
    // Nothing needs quoting.
    assert!(!body.contains('"'));
    let departed = rows.iter().filter(|r| r[5] == "departed").count();
    assert_eq!(departed, departed_count(1000));
    // Large indices keep the same shape.
    let big = csv(123_456..123_457);
    assert!(big.contains("Person 123456,u123456,person.123456@bench.example,"));
    assert!(big.contains(",+81-3-0012-3456,"));
}

#[test]
fn departed_count_matches_rows() {
    for n in [0, 1, 9, 10, 19, 20, 99, 100, 100_000] {
        assert_eq!(
            (0..n).filter(|&i| is_departed(i)).count(),
            departed_count(n),
            "n={n}"
        );
    }
    assert_eq!(departed_count(100_000), PURGE_TARGET_PEOPLE);
}

#[test]
fn batches_cover_everything_once() {
    assert_eq!(batches(25, 10), vec![0..10, 10..20, 20..25]);
    assert_eq!(batches(20, 10), vec![0..10, 10..20]);
    assert_eq!(batches(3, 0), vec![0..1, 1..2, 2..3]);
    assert!(batches(0, 10).is_empty());
    let b = batches(100_000, 10_000);
    assert_eq!(b.len(), 10);
    assert_eq!(b.iter().map(ExactSizeIterator::len).sum::<usize>(), 100_000);
    assert_eq!(
        csv(b[3].clone()).lines().count(),
        10_001,
        "header + one line per person"
    );
}

#[test]
fn samples_are_deterministic_and_in_range() {
    let a = sample(100_000, 1000, 42);
    assert_eq!(a, sample(100_000, 1000, 42));
    assert_ne!(a, sample(100_000, 1000, 43));
    assert!(a.iter().all(|&i| i < 100_000));
    // Spread out, not a handful of values.
    assert!(a.iter().collect::<HashSet<_>>().len() > 900);
    assert!(sample(1, 10, 7).iter().all(|&i| i == 0));
    assert!(sample(10, 0, 7).is_empty());
}

#[test]
fn query_values_are_escaped() {
    assert_eq!(
        query_escape("person.000001@bench.example"),
        "person.000001%40bench.example"
    );
    assert_eq!(query_escape("a+b%c"), "a%2Bb%25c");
}

#[test]
fn latency_percentiles() {
    let values: Vec<f64> = (1..=100).map(f64::from).collect();
    let l = Latency::of(&values).unwrap();
    assert_eq!(l.n, 100);
    assert!((l.median - 50.5).abs() < 1e-9);
    assert!((l.p90 - 90.1).abs() < 1e-9);
    assert!((l.p99 - 99.01).abs() < 1e-9);
    assert!((l.mean - 50.5).abs() < 1e-9);
    assert_eq!(l.max, 100.0);
    assert_eq!(Latency::of(&[]), None);
    assert_eq!(Latency::of(&[2.0]).unwrap().p99, 2.0);
}

#[test]
fn purged_count_is_parsed() {
    assert_eq!(parse_purged("purged 10000 people\n"), Some(10_000));
    assert_eq!(parse_purged("note\npurged 0 people\n"), Some(0));
    assert_eq!(parse_purged("purged person abc\n"), None);
    assert_eq!(parse_purged(""), None);
}

#[test]
fn db_size_of_missing_files_is_zero() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(DbSize::of(dir.path()), DbSize::default());
    std::fs::write(dir.path().join("mamori.db"), vec![0u8; 1024 * 1024]).unwrap();
    std::fs::write(dir.path().join("mamori.db-wal"), vec![0u8; 512 * 1024]).unwrap();
    let s = DbSize::of(dir.path());
    assert_eq!((s.db, s.wal), (1024 * 1024, 512 * 1024));
    assert!((s.total_mib() - 1.5).abs() < 1e-9);
}

fn figures(purge_wall: Duration, purged: u64, median: f64) -> Figures {
    let lat = |median: f64| Latency {
        n: 1000,
        median,
        p90: median * 1.5,
        p99: median * 2.0,
        mean: median * 1.1,
        max: median * 5.0,
    };
    Figures {
        plan: Plan {
            people: 100_000,
            batch: 10_000,
            lookups: 1000,
            pages: 200,
        },
        import_requests: 10,
        import_wall: Duration::from_secs(20),
        import_slowest: Duration::from_secs(3),
        import_cpu: Duration::from_secs(10),
        lookup: lat(median),
        lookup_wall: Duration::from_millis(600),
        lookup_cpu: Duration::from_millis(400),
        page: Latency { n: 200, ..lat(2.0) },
        page_wall: Duration::from_millis(500),
        page_cpu: Duration::from_millis(300),
        paged_people: 20_000,
        purge_wall,
        purged,
        baseline_wall: Duration::from_millis(500),
        remaining: 90_000,
        db_loaded: DbSize {
            db: 50 << 20,
            wal: 10 << 20,
        },
        db_purged: DbSize {
            db: 55 << 20,
            wal: 0,
        },
        memory_loaded: Memory {
            rss_kib: 40 << 10,
            peak_kib: 80 << 10,
        },
        tick_ms: 10.0,
    }
}

#[test]
fn report_judges_targets() {
    let r = report(&figures(Duration::from_secs(3), 10_000, 0.5));
    assert!(r.contains("5000 people/s"), "{r}");
    assert!(r.contains("0.100 ms"), "{r}");
    let lookup_line = r.lines().find(|l| l.starts_with("lookup")).unwrap();
    assert!(lookup_line.ends_with("met"), "{lookup_line}");
    assert!(lookup_line.contains("0.400 ms"), "{lookup_line}");
    let purge_line = r.lines().find(|l| l.starts_with("purge --due (")).unwrap();
    assert!(purge_line.ends_with("met"), "{purge_line}");
    assert!(purge_line.contains("0.300 ms/person"), "{purge_line}");
    let only = r.lines().find(|l| l.starts_with("purge itself")).unwrap();
    assert!(only.contains("2.50 s"), "{only}");
    assert!(
        r.contains("60.0 MiB (mamori.db 50.0 MiB + -wal 10.0 MiB)"),
        "{r}"
    );
    assert!(r.contains("p99 ≤ 1 ms: yes"), "{r}");

    let slow = report(&figures(Duration::from_millis(10_300), 10_000, 1.5));
    let lookup_line = slow.lines().find(|l| l.starts_with("lookup")).unwrap();
    assert!(lookup_line.ends_with("missed"), "{lookup_line}");
    let purge_line = slow
        .lines()
        .find(|l| l.starts_with("purge --due ("))
        .unwrap();
    assert!(purge_line.ends_with("missed"), "{purge_line}");
    let only = slow
        .lines()
        .find(|l| l.starts_with("purge itself"))
        .unwrap();
    assert!(only.ends_with("met"), "{only}");

    let small = report(&figures(Duration::from_secs(1), 10, 0.5));
    assert!(small.contains("not judged"), "{small}");
}

#[test]
fn purge_only_never_negative() {
    assert_eq!(
        purge_only(Duration::from_secs(3), Duration::from_secs(1)),
        Duration::from_secs(2)
    );
    assert_eq!(
        purge_only(Duration::from_secs(1), Duration::from_secs(2)),
        Duration::ZERO
    );
}
