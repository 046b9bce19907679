//! The `--reconcile` result tables and the notes under them.

use super::{Figures, Pass, PassReport, POLICIES, SERVER_PERIOD, SETTLE, TARGET_PER_S};
use crate::procfs;
use std::fmt::Write as _;
use std::time::Duration;

fn secs(ticks: u64, per_s: u64) -> f64 {
    procfs::ticks_to_duration(ticks, per_s).as_secs_f64()
}

/// The result tables.
pub fn report(f: &Figures) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "fixture: {} enrolled devices written with rusqlite in {:.2} s (not measured); \
         server RSS before the first pass {:.1} MB",
        f.devices,
        f.fixture.as_secs_f64(),
        f.start_memory.rss_mib()
    );
    if let Some(wall) = f.migrated {
        let _ = writeln!(
            out,
            "on PostgreSQL: the data directory moved with `mamori migrate` in {:.1} s; the \
             server and every pass below ran on PostgreSQL",
            wall.as_secs_f64()
        );
    }
    let _ = writeln!(out);
    write_passes(&mut out, f);
    let _ = writeln!(out);
    write_verdict(&mut out, f);
    write_notes(&mut out, f);
    out
}

/// The table of passes: each pass that queued, their total, the idle ones.
fn write_passes(out: &mut String, f: &Figures) {
    let tps = f.ticks_per_s;
    let _ = writeln!(
        out,
        "{:<8} {:>8} {:>9} {:>8} {:>12} {:>10} {:>10} {:>12} {:>7} {:>11} {:>8}",
        "pass",
        "devices",
        "queued",
        "wall s",
        "commands/s",
        "srv CPU s",
        "µs/cmd",
        "+push CPU s",
        "pushes",
        "push wall s",
        "RSS MB"
    );
    for (i, p) in f.passes.iter().enumerate() {
        pass_row(out, &format!("{}", i + 1), p, tps);
    }
    if let Some(t) = total(&f.passes) {
        pass_row(out, "total", &t, tps);
    }
    for (i, p) in f.idle.iter().enumerate() {
        pass_row(out, &format!("idle {}", i + 1), p, tps);
    }
}

/// One row of the table of passes.
fn pass_row(out: &mut String, label: &str, p: &Pass, tps: u64) {
    let q = p.report.queued();
    let rate = q as f64 / p.wall.as_secs_f64().max(1e-9);
    let per_cmd = if q == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}", secs(p.ticks, tps) * 1e6 / q as f64)
    };
    let _ = writeln!(
        out,
        "{:<8} {:>8} {:>9} {:>8.3} {:>12.0} {:>10.2} {:>10} {:>12.2} {:>7} {:>11.3} {:>8.1}",
        label,
        p.report.devices,
        q,
        p.wall.as_secs_f64(),
        rate,
        secs(p.ticks, tps),
        per_cmd,
        secs(p.ticks_with_push, tps),
        p.pushes,
        p.push_wall.as_secs_f64(),
        p.memory.rss_mib()
    );
}

/// The passes `ps` summed as one (None without passes).
fn total(ps: &[Pass]) -> Option<Pass> {
    let last = ps.last()?;
    Some(Pass {
        report: PassReport {
            devices: last.report.devices,
            installs: ps.iter().map(|p| p.report.installs).sum(),
            removals: ps.iter().map(|p| p.report.removals).sum(),
            deferred: last.report.deferred,
        },
        wall: ps.iter().map(|p| p.wall).sum(),
        ticks: ps.iter().map(|p| p.ticks).sum(),
        ticks_with_push: ps.iter().map(|p| p.ticks_with_push).sum(),
        pushes: ps.iter().map(|p| p.pushes).sum(),
        push_wall: ps.iter().map(|p| p.push_wall).sum(),
        memory: last.memory,
        since_start: last.since_start,
    })
}

/// The target, judged overall and on the slowest pass, and what was queued
/// against what the database holds.
fn write_verdict(out: &mut String, f: &Figures) {
    let queued: usize = f.passes.iter().map(|p| p.report.queued()).sum();
    let wall: Duration = f.passes.iter().map(|p| p.wall).sum();
    let rate = queued as f64 / wall.as_secs_f64().max(1e-9);
    let slowest = f
        .passes
        .iter()
        .map(|p| p.report.queued() as f64 / p.wall.as_secs_f64().max(1e-9))
        .fold(f64::INFINITY, f64::min);
    let verdict = if rate >= TARGET_PER_S && slowest >= TARGET_PER_S {
        "met"
    } else {
        "MISSED"
    };
    let _ = writeln!(
        out,
        "target ≥ {TARGET_PER_S:.0} commands queued/s: {verdict} (overall {rate:.0}/s, \
         slowest pass {slowest:.0}/s)"
    );
    let expected = f.devices * POLICIES;
    let _ = writeln!(
        out,
        "queued by the timed passes: {queued} of {expected} ({} devices × {POLICIES} policies); \
         database after: {} InstallProfile commands, {} profile rows installing{}",
        f.devices,
        f.db_installs,
        f.db_installing,
        if queued == expected && f.db_installs == expected as u64 {
            ""
        } else {
            " — MISMATCH (did the server's own 60 s pass run in between?)"
        }
    );
}

/// Memory and timing after the last pass, and what the columns mean.
fn write_notes(out: &mut String, f: &Figures) {
    let tps = f.ticks_per_s;
    let last = f.idle.last().or(f.passes.last());
    if let Some(last) = last {
        let peak = f
            .passes
            .iter()
            .chain(&f.idle)
            .map(|p| p.memory.peak_mib())
            .fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "server RSS after the last pass {:.1} MB (peak {:.1} MB); last pass ended {:.1} s \
             after the server started{}",
            last.memory.rss_mib(),
            peak,
            last.since_start.as_secs_f64(),
            if last.since_start >= SERVER_PERIOD {
                " — the server's own 60 s reconciliation may have run meanwhile"
            } else {
                " (before the server's own 60 s pass)"
            }
        );
    }
    let _ = writeln!(
        out,
        "wall = the POST /api/v1/reconcile request (commands/s = queued / wall); srv CPU = server \
         utime+stime from the request until its answer; +push CPU = until the pass's pushes \
         reached the APNs stand-in (in this process) and {} ms more. CPU resolution {:.0} ms.",
        SETTLE.as_millis(),
        1000.0 / tps.max(1) as f64
    );
}
