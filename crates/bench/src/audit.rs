//! `--audit N`: the audit log with N chained records.
//!
//! 1. `mamori serve` starts once on a new data directory: it creates the
//!    keys, the database with the real migrations, an owner account and an
//!    API token (`mamori admin create`, `mamori token create`); then it is
//!    stopped.
//! 2. **Append rate, through the real store path**: this process opens the
//!    database with `mamori_store::SqliteStore::open` (what the server does
//!    at start) and appends records through `mamori_core::audit::chain::ChainWriter`,
//!    the path every audited action takes: the writer hashes the record
//!    onto the end it last wrote, and the store, in one transaction per
//!    record on the writer connection, checks the link against the stored
//!    end and inserts (each commit fsyncs the WAL: `synchronous = FULL` in WAL
//!    mode, as in the server, so the rate is bounded by the disk's fsync
//!    latency). It does so one record at a time from one
//!    task on the fresh log, again on the full log, and from several tasks
//!    at once on the full log. This measures the store, not HTTP: an admin
//!    API request costs more than the audit record(s) it writes.
//! 3. **Fixture** (not a measurement): the rest of the N records are written
//!    straight into `audit_log` with rusqlite in large transactions, each
//!    hashed with the real `record_hash` and linked to the one before, so
//!    the chain verifies. The mix: ~10 % `people.read` (over
//!    [`DISTINCT_PEOPLE`] pseudonymous person IDs, `fields=...`), a few
//!    `people.export`, API requests, logins and second factors, commands,
//!    lookups, updates; by [`ACTORS`] actors; spread evenly over the
//!    [`DAYS`] days before today (UTC). Then `mamori audit checkpoint`
//!    signs the newest record.
//! 4. `mamori audit verify` (the real CLI, a child process) walks the
//!    whole chain and the checkpoint: wall time and records/s.
//! 5. The breach-scope report for a one-day window, a 30-day window, the
//!    whole year, and one actor over the year: through the CLI (`mamori
//!    audit breach-scope`, the whole command: process start, key loading,
//!    query, JSON on stdout; with the server stopped) and through the API
//!    (`GET /api/v1/reports/breach-scope` on a restarted `mamori serve`,
//!    until the whole answer is read), each `--audit-runs` times. Every
//!    answer is checked against the figures computed from the generator
//!    (records, people, people per field, actors). Target: under
//!    [`BREACH_SCOPE_TARGET`], judged on the slowest run.
//!
//! The database is in the page cache for the timed reads (it has just been
//! written; the machine has the memory for it). It needs about 270 bytes of
//! disk per record (2.6 GiB for 10 million) in the temporary directory.
//!
//! This process opens the database with its own `mamori-store`, which
//! migrates it to its schema: build the benchmark and the server from the
//! same tree (an older server refuses a database newer than itself).

mod fixture;
mod measure;
mod report;
#[cfg(test)]
mod tests;

pub use measure::measure;
pub use report::report;

use std::ops::Range;
use std::time::Duration;

/// The breach-scope report must answer within this.
pub const BREACH_SCOPE_TARGET: Duration = Duration::from_secs(2);
/// Distinct pseudonymous person IDs in the fixture.
pub const DISTINCT_PEOPLE: usize = 100_000;
/// Distinct actors (administrator sessions and tokens).
pub const ACTORS: usize = 300;
/// The fixture spans this many days, ending at today's midnight (UTC).
pub const DAYS: i64 = 365;
/// Seconds per day.
const DAY: i64 = 86_400;
/// Records per transaction while writing the fixture.
const FIXTURE_BATCH: u64 = 250_000;
/// Seed of the fixture (the same log every run).
const SEED: u64 = 0x6d61_6d6f_7269_a0d1;
/// The fields of a `people.read` record (what the server writes).
const READ_FIELDS: &str = mamori_core::people::PERSONAL_FIELDS;
/// The fields of a `people.export` record in the fixture.
const EXPORT_FIELDS: &str = "name,email,department";
/// Admin routes of the fixture's `api.request` records.
const ROUTES: [&str; 8] = [
    "POST /api/v1/commands",
    "POST /api/v1/enrollment-profiles",
    "PATCH /api/v1/people/{id}",
    "PUT /api/v1/devices/{udid}/person",
    "POST /api/v1/people/import",
    "POST /api/v1/tokens",
    "POST /api/v1/auth/logout",
    "DELETE /api/v1/tokens/{id}",
];
/// Request types of the fixture's `command.queue` records.
const REQUEST_TYPES: [&str; 6] = [
    "DeviceInformation",
    "InstallProfile",
    "DeviceLock",
    "InstalledApplicationList",
    "RemoveProfile",
    "SecurityInfo",
];

/// What `--audit` was asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Records in the log.
    pub records: u64,
    /// Records per timed append phase.
    pub append: u64,
    /// Tasks of the concurrent append phase.
    pub tasks: usize,
    /// Runs of each breach-scope query.
    pub runs: usize,
}

impl Plan {
    /// Records per append phase: `append`, at most a quarter of the log.
    pub fn append_per_phase(&self) -> u64 {
        self.append.min(self.records / 4)
    }

    /// Where each part of the log comes from, by generator index: the
    /// first append phase, the fixture, the append phase on the full log,
    /// the concurrent one.
    pub fn parts(&self) -> [Range<u64>; 4] {
        let m = self.append_per_phase();
        let n = self.records;
        [0..m, m..n - 2 * m, n - 2 * m..n - m, n - m..n]
    }
}
