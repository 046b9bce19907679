//! The `--audit` result lines: the table and the notes under it.

use super::fixture::rfc3339;
use super::measure::{Figures, QueryFigures};
use super::BREACH_SCOPE_TARGET;
use crate::report::secs;
use std::fmt::Write as _;
use std::time::Duration;

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// One line of the table.
fn row(
    out: &mut String,
    phase: &str,
    n: u64,
    wall: Duration,
    what: String,
    target: &str,
    result: &str,
) {
    let _ = writeln!(
        out,
        "{phase:<50} {n:>10} {:>9} {target:>7}  {result:<6}  {what}",
        secs(wall)
    );
}

/// The result lines (table and notes).
pub fn report(f: &Figures) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<50} {:>10} {:>9} {:>7}  {:<6}  rate / runs",
        "phase", "records", "wall", "target", "result"
    );
    write_store_rows(&mut out, f);
    for q in &f.queries {
        write_query_row(&mut out, q);
    }
    write_notes(&mut out, f);
    out
}

/// The rows of the append phases, the fixture and `audit verify`.
fn write_store_rows(out: &mut String, f: &Figures) {
    for a in &f.appends {
        let lat = a.latency.map_or(String::new(), |l| {
            format!(
                "; per record med {:.0} mean {:.0} p99 {:.0} max {:.0} µs",
                l.median, l.mean, l.p99, l.max
            )
        });
        row(
            out,
            &format!("{} (store, {} before)", a.name, a.log_before),
            a.records,
            a.wall,
            format!("{:.0} records/s{lat}", rate(a.records, a.wall)),
            "-",
            "",
        );
    }
    row(
        out,
        "fixture (rusqlite, not Mamori's code path)",
        f.fixture.0,
        f.fixture.1,
        format!(
            "{:.0} records/s (record_hash + INSERT)",
            rate(f.fixture.0, f.fixture.1)
        ),
        "-",
        "",
    );
    row(
        out,
        "audit verify (CLI, whole command)",
        f.verified,
        f.verify_wall,
        format!(
            "{:.0} records/s; {} checkpoint(s) verified",
            rate(f.verified, f.verify_wall),
            f.checkpoints
        ),
        "-",
        "",
    );
}

/// The row of one breach-scope query, judged on its slowest run.
fn write_query_row(out: &mut String, q: &QueryFigures) {
    let target = format!("< {} s", BREACH_SCOPE_TARGET.as_secs());
    let mut sorted = q.runs.clone();
    sorted.sort();
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    let median = sorted[sorted.len() / 2];
    let judged = q.window.from < q.window.to && q.expected.records > 0;
    let cpu = q.server_cpu.map_or(String::new(), |c| {
        format!(
            "; srv CPU {:.2} s/run",
            c.as_secs_f64() / q.runs.len().max(1) as f64
        )
    });
    let mem = q.server_memory.map_or(String::new(), |m| {
        format!("; RSS {:.0} (peak {:.0}) MB", m.rss_mib(), m.peak_mib())
    });
    row(
        out,
        &format!("breach-scope {}, {}", q.via, q.window.name),
        q.expected.records as u64,
        max,
        format!(
            "{} people; min {:.2} med {:.2} max {:.2} s; {:.1} MB{cpu}{mem}",
            q.expected.people,
            min.as_secs_f64(),
            median.as_secs_f64(),
            max.as_secs_f64(),
            q.answer_bytes as f64 / 1e6
        ),
        if judged { &target } else { "-" },
        if !judged {
            ""
        } else if max < BREACH_SCOPE_TARGET {
            "met"
        } else {
            "missed"
        },
    );
}

/// The notes under the table.
fn write_notes(out: &mut String, f: &Figures) {
    let _ = writeln!(out);
    if let Some(m) = &f.migrated {
        let size = crate::pg::number("SELECT pg_database_size(current_database())")
            .map_or("?".to_owned(), |b| {
                format!("{:.2}", b as f64 / (1u64 << 30) as f64)
            });
        let _ = writeln!(
            out,
            "on PostgreSQL: the log was written into SQLite (appends: SqliteStore), then moved \
             with `mamori migrate` in {:.1} s ({:.0} records/s; database {size} GiB after); \
             verify and breach-scope ran on PostgreSQL. migrate said:\n{}",
            m.wall.as_secs_f64(),
            f.verified as f64 / m.wall.as_secs_f64().max(1e-9),
            m.output
                .lines()
                .filter(|l| !l.starts_with("  "))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let _ = writeln!(
        out,
        "log: {} records ({} appended through the store, {} written as fixture, the rest by \
         `mamori serve`/CLI); span {} to {}; database {:.2} GiB",
        f.verified,
        f.appends.iter().map(|a| a.records).sum::<u64>(),
        f.fixture.0,
        rfc3339(f.span.0).unwrap_or_default(),
        rfc3339(f.span.1).unwrap_or_default(),
        f.db.total_mib() / 1024.0
    );
    let _ = writeln!(
        out,
        "append: ChainWriter::append on a SqliteStore (one transaction per record: read the last \
         link, record_hash, INSERT; WAL, synchronous=FULL: one fsync per commit), events built beforehand."
    );
    let _ = writeln!(
        out,
        "breach-scope: {} run(s) each; wall = whole command (CLI: process start, keys, query, JSON \
         on stdout; server stopped) or request until the whole answer is read (API, HTTPS); \
         every answer checked against the generator; the wall column and the target are the slowest run; \
         records = personal-data access records in scope.",
        f.plan.runs
    );
}
