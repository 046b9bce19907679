//! The `--people` result lines: the table, judged against the targets,
//! and the notes under it.

use super::data::departed_count;
use super::{
    Figures, LOOKUP_TARGET_MS, PAGE_SIZE, PURGE_TARGET, PURGE_TARGET_PEOPLE, WARMUP_LOOKUPS,
};
use crate::report::secs;
use std::fmt::Write as _;
use std::time::Duration;

fn ms(d: Duration, per: usize) -> f64 {
    d.as_secs_f64() * 1000.0 / per.max(1) as f64
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "missed"
    }
}

/// The purge's own time: the command's wall minus the baseline (never
/// below zero).
pub fn purge_only(purge: Duration, baseline: Duration) -> Duration {
    purge.saturating_sub(baseline)
}
/// One line of the table.
struct Line<'a> {
    phase: &'a str,
    count: usize,
    wall: Duration,
    per_item: String,
    cpu: String,
    target: &'a str,
    result: &'a str,
}

impl Line<'_> {
    fn write(self, out: &mut String) {
        let Self {
            phase,
            count,
            wall,
            per_item,
            cpu,
            target,
            result,
        } = self;
        let _ = writeln!(
            out,
            "{phase:<34} {count:>7} {:>9}  {per_item:<46} {cpu:>14}  {target:>9}  {result}",
            secs(wall)
        );
    }
}

/// The result lines (table and notes).
pub fn report(f: &Figures) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<34} {:>7} {:>9}  {:<46} {:>14}  {:>9}  result",
        "phase", "count", "wall", "per item (wall)", "srv CPU/item", "target"
    );
    write_load_and_read_rows(&mut out, f);
    write_purge_rows(&mut out, f);
    write_notes(&mut out, f);
    out
}

/// The rows of the import, the lookups and the pages.
fn write_load_and_read_rows(out: &mut String, f: &Figures) {
    let p = &f.plan;
    Line {
        phase: &format!(
            "import (CSV, {} request{})",
            f.import_requests,
            if f.import_requests == 1 { "" } else { "s" }
        ),
        count: p.people,
        wall: f.import_wall,
        per_item: format!(
            "{:.0} people/s; slowest request {}",
            p.people as f64 / f.import_wall.as_secs_f64().max(1e-9),
            secs(f.import_slowest)
        ),
        cpu: format!("{:.3} ms", ms(f.import_cpu, p.people)),
        target: "-",
        result: "",
    }
    .write(out);
    let l = &f.lookup;
    Line {
        phase: "lookup by e-mail (one at a time)",
        count: l.n,
        wall: f.lookup_wall,
        per_item: format!(
            "med {:.3} p90 {:.3} p99 {:.3} mean {:.3} ms",
            l.median, l.p90, l.p99, l.mean
        ),
        cpu: format!("{:.3} ms", ms(f.lookup_cpu, l.n)),
        target: &format!("≤ {LOOKUP_TARGET_MS} ms"),
        result: verdict(l.median <= LOOKUP_TARGET_MS),
    }
    .write(out);
    let g = &f.page;
    Line {
        phase: &format!("list a page of {PAGE_SIZE}"),
        count: g.n,
        wall: f.page_wall,
        per_item: format!(
            "med {:.3} p90 {:.3} p99 {:.3} mean {:.3} ms",
            g.median, g.p90, g.p99, g.mean
        ),
        cpu: format!("{:.3} ms", ms(f.page_cpu, g.n)),
        target: "-",
        result: "",
    }
    .write(out);
}

/// The purge is judged only at the size its target is stated for.
fn purge_judged(f: &Figures) -> bool {
    f.purged as usize >= PURGE_TARGET_PEOPLE
}

/// The rows of the purge, its baseline and the difference.
fn write_purge_rows(out: &mut String, f: &Figures) {
    let judged = purge_judged(f);
    let purge_result = |wall: Duration| {
        if judged {
            verdict(wall <= PURGE_TARGET)
        } else {
            "not judged"
        }
    };
    let target = format!("≤ {} s", PURGE_TARGET.as_secs());
    Line {
        phase: "purge --due (CLI, whole command)",
        count: f.purged as usize,
        wall: f.purge_wall,
        per_item: format!("{:.3} ms/person", ms(f.purge_wall, f.purged as usize)),
        cpu: "-".into(),
        target: &target,
        result: purge_result(f.purge_wall),
    }
    .write(out);
    Line {
        phase: "purge --due, nothing due (baseline)",
        count: 0,
        wall: f.baseline_wall,
        per_item: "process start, key loading, empty query".into(),
        cpu: "-".into(),
        target: "-",
        result: "",
    }
    .write(out);
    let only = purge_only(f.purge_wall, f.baseline_wall);
    Line {
        phase: "purge itself (command - baseline)",
        count: f.purged as usize,
        wall: only,
        per_item: format!("{:.3} ms/person", ms(only, f.purged as usize)),
        cpu: "-".into(),
        target: &target,
        result: purge_result(only),
    }
    .write(out);
}

/// The notes under the table.
fn write_notes(out: &mut String, f: &Figures) {
    let p = &f.plan;
    let departed = departed_count(p.people);
    let (l, g) = (&f.lookup, &f.page);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "lookups: max {:.3} ms; p99 ≤ {LOOKUP_TARGET_MS} ms: {} (the target is judged on the median)",
        l.max,
        if l.p99 <= LOOKUP_TARGET_MS { "yes" } else { "no" }
    );
    let _ = writeln!(
        out,
        "pages: {} people on {} pages, max {:.3} ms per page",
        f.paged_people, g.n, g.max
    );
    let _ = writeln!(
        out,
        "purge: {} of {departed} departed people purged; {} of {} people left afterwards{}",
        f.purged,
        f.remaining,
        p.people - departed,
        if purge_judged(f) {
            String::new()
        } else {
            format!("; the purge target is stated for {PURGE_TARGET_PEOPLE} people, not judged")
        }
    );
    let _ = writeln!(
        out,
        "database after the import: {}; after the purge (WAL checkpointed): {}",
        f.db_loaded.describe(),
        f.db_purged.describe()
    );
    let _ = writeln!(
        out,
        "server RSS after the import: {:.1} MB (peak {:.1} MB)",
        f.memory_loaded.rss_mib(),
        f.memory_loaded.peak_mib()
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "wall = time in this process from sending a request to having read the whole answer (HTTPS, \
         one keep-alive connection, one request at a time; lookups after {WARMUP_LOOKUPS} untimed \
         warm-up lookups), or of the whole CLI command. srv CPU/item = server utime+stime (all \
         threads, /proc/PID/stat, resolution {:.0} ms) over the phase / count. Every lookup also \
         writes an audit record.",
        f.tick_ms
    );
}
