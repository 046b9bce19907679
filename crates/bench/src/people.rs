//! `--people N`: the people directory with N synthetic people.
//!
//! Against the real server (started with `--people-retention-days 0`, so
//! that departed people are due for purge at once) it:
//!
//! 1. imports N people over the API (`POST /api/v1/people/import`, CSV, in
//!    requests of `--people-batch` rows), every 10th of them `departed`;
//! 2. looks up random existing people by e-mail
//!    (`GET /api/v1/people/lookup?email=...`), one at a time on one
//!    keep-alive connection, after a few untimed warm-up lookups;
//! 3. walks the pseudonymous list a page of 100 at a time
//!    (`GET /api/v1/people?limit=100&after=ID`);
//! 4. runs `mamori people purge --due --retention-days 0` against the
//!    running server's data directory (the CLI opens the same SQLite
//!    database), then once more with nothing left due, as a baseline for
//!    process start and key loading;
//! 5. checks the result over the API: departed people are gone, the others
//!    are still there.
//!
//! Wall times are measured in this process; the server's CPU time is
//! `utime + stime` of all its threads from `/proc/PID/stat`.

mod data;
mod measure;
mod report;
#[cfg(test)]
mod tests;

pub use data::{batches, csv, departed_count, DbSize, Latency, SplitMix64};
pub use measure::measure;
pub use report::report;

use crate::procfs::Memory;
use std::time::Duration;

/// Wall latency target per lookup, ms (judged on the median).
pub const LOOKUP_TARGET_MS: f64 = 1.0;
/// Wall time target for purging [`PURGE_TARGET_PEOPLE`] people.
pub const PURGE_TARGET: Duration = Duration::from_secs(10);
/// The number of purged people the purge target is stated for.
pub const PURGE_TARGET_PEOPLE: usize = 10_000;
/// People per listed page.
pub const PAGE_SIZE: usize = 100;
/// Untimed lookups before the timed ones (opens the connection, warms the
/// server's caches).
const WARMUP_LOOKUPS: usize = 20;
/// Seed of the lookup sample (the same e-mails every run).
const LOOKUP_SEED: u64 = 0x6d61_6d6f_7269_0001;
/// People per page when counting the survivors after the purge (untimed).
const COUNT_PAGE: usize = 1000;

/// The CSV header of every import request.
pub const CSV_HEADER: &str = "name,user_id,email,department,phone,status";

const DEPARTMENTS: [&str; 8] = [
    "Sales",
    "Engineering",
    "Finance",
    "Human Resources",
    "Marketing",
    "Operations",
    "Legal",
    "Customer Support",
];

/// What `--people` was asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// People to import.
    pub people: usize,
    /// Rows per import request.
    pub batch: usize,
    /// Timed lookups.
    pub lookups: usize,
    /// Timed pages of [`PAGE_SIZE`].
    pub pages: usize,
}

/// Everything measured.
#[derive(Debug, Clone)]
pub struct Figures {
    /// What was asked.
    pub plan: Plan,
    /// Import requests sent.
    pub import_requests: usize,
    /// Wall time of all import requests.
    pub import_wall: Duration,
    /// The slowest import request.
    pub import_slowest: Duration,
    /// Server CPU during the import.
    pub import_cpu: Duration,
    /// Lookup latencies.
    pub lookup: Latency,
    /// Wall time of all timed lookups.
    pub lookup_wall: Duration,
    /// Server CPU during the timed lookups.
    pub lookup_cpu: Duration,
    /// Page latencies.
    pub page: Latency,
    /// Wall time of all timed pages.
    pub page_wall: Duration,
    /// Server CPU during the timed pages.
    pub page_cpu: Duration,
    /// People on the timed pages.
    pub paged_people: usize,
    /// Wall time of `people purge --due` (whole command).
    pub purge_wall: Duration,
    /// What it purged.
    pub purged: u64,
    /// Wall time of the same command with nothing due.
    pub baseline_wall: Duration,
    /// People listed after the purge.
    pub remaining: usize,
    /// Database after the import.
    pub db_loaded: DbSize,
    /// Database after the purge.
    pub db_purged: DbSize,
    /// Server memory after the import.
    pub memory_loaded: Memory,
    /// Server CPU resolution, ms.
    pub tick_ms: f64,
}

/// The server's extra `serve` arguments for this mode.
pub const SERVE_ARGS: [&str; 2] = ["--people-retention-days", "0"];
