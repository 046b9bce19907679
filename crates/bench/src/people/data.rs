//! The synthetic people of `--people` (CSV rows, e-mail addresses, who is
//! departed), deterministic sampling, and the small figures (latency order
//! statistics, database size, the purge count the CLI prints).

use super::{CSV_HEADER, DEPARTMENTS};
use crate::login_timing::percentile;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;

/// Person `i` is departed: every 10th (9, 19, 29, ...).
pub fn is_departed(i: usize) -> bool {
    i % 10 == 9
}

/// How many of people `0..n` are departed.
pub fn departed_count(n: usize) -> usize {
    n / 10
}

/// Person `i`'s e-mail address.
pub fn email(i: usize) -> String {
    format!("person.{i:06}@bench.example")
}

/// Appends person `i` as a CSV line (none of the values needs quoting).
pub fn push_csv_row(out: &mut String, i: usize) {
    let _ = writeln!(
        out,
        "Person {i:06},u{i:06},{},{},+81-3-{:04}-{:04},{}",
        email(i),
        DEPARTMENTS[i % DEPARTMENTS.len()],
        (i / 10_000) % 10_000,
        i % 10_000,
        if is_departed(i) { "departed" } else { "active" }
    );
}

/// One import request's body: the header and people `range`.
pub fn csv(range: Range<usize>) -> String {
    let mut out = String::with_capacity(80 * (range.len() + 1));
    out.push_str(CSV_HEADER);
    out.push('\n');
    for i in range {
        push_csv_row(&mut out, i);
    }
    out
}

/// `0..n` cut into ranges of at most `batch` (at least 1).
pub fn batches(n: usize, batch: usize) -> Vec<Range<usize>> {
    let batch = batch.max(1);
    (0..n)
        .step_by(batch)
        .map(|start| start..(start + batch).min(n))
        .collect()
}

/// SplitMix64: a small deterministic generator, so that every run looks up
/// the same people.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`; the modulo bias is negligible here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// `k` people out of `0..n`, drawn with replacement.
pub fn sample(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64::new(seed);
    (0..k).map(|_| rng.below(n)).collect()
}

/// `email` for a query string (only `@` and `+` need escaping in ours;
/// `%` is escaped in case).
pub fn query_escape(v: &str) -> String {
    v.replace('%', "%25")
        .replace('@', "%40")
        .replace('+', "%2B")
}

/// Order statistics of latencies, ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Number of values.
    pub n: usize,
    /// 50th percentile.
    pub median: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Largest value.
    pub max: f64,
}

impl Latency {
    /// `None` for an empty sample.
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            n: sorted.len(),
            median: percentile(&sorted, 50.0),
            p90: percentile(&sorted, 90.0),
            p99: percentile(&sorted, 99.0),
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
            max: sorted[sorted.len() - 1],
        })
    }
}

/// `N` of the `purged N people` line the CLI prints.
pub fn parse_purged(stdout: &str) -> Option<u64> {
    stdout.lines().find_map(|l| {
        l.trim()
            .strip_prefix("purged ")?
            .strip_suffix(" people")?
            .parse()
            .ok()
    })
}

/// Sizes of the database file and its WAL, bytes (0 for a missing file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbSize {
    /// `mamori.db`.
    pub db: u64,
    /// `mamori.db-wal`.
    pub wal: u64,
}

impl DbSize {
    /// Reads the sizes in `data_dir`.
    pub fn of(data_dir: &Path) -> Self {
        let size = |name: &str| {
            std::fs::metadata(data_dir.join(name))
                .map(|m| m.len())
                .unwrap_or(0)
        };
        Self {
            db: size("mamori.db"),
            wal: size("mamori.db-wal"),
        }
    }

    /// Both, MiB.
    pub fn total_mib(&self) -> f64 {
        (self.db + self.wal) as f64 / 1024.0 / 1024.0
    }

    pub fn describe(&self) -> String {
        format!(
            "{:.1} MiB (mamori.db {:.1} MiB + -wal {:.1} MiB)",
            self.total_mib(),
            self.db as f64 / 1024.0 / 1024.0,
            self.wal as f64 / 1024.0 / 1024.0
        )
    }
}
