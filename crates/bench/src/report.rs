//! The result table: one row per phase with wall time, server CPU time (total
//! and per operation), the target, NanoMDM's reference figure and the
//! server's RSS.

use crate::procfs::{ticks_to_duration, Memory};
use std::fmt::Write as _;
use std::time::Duration;

/// Largest RSS the issue allows with 10,000 enrolled devices, MiB.
pub const RSS_TARGET_MIB: f64 = 150.0;
/// Device count the RSS target is stated for.
pub const RSS_TARGET_DEVICES: usize = 10_000;

/// One measured phase.
#[derive(Debug, Clone)]
pub struct Row {
    /// Phase name.
    pub phase: String,
    /// Operations (devices, or device polls) the per-op figure divides by.
    pub ops: usize,
    /// Wall-clock time.
    pub wall: Duration,
    /// Server CPU, clock ticks.
    pub server_ticks: u64,
    /// Benchmark (simulator) CPU, clock ticks.
    pub client_ticks: u64,
    /// The database server's CPU (PostgreSQL, all its processes), clock
    /// ticks, when the server uses one.
    pub database_ticks: Option<u64>,
    /// Server memory after the phase.
    pub memory: Memory,
    /// Target server CPU per operation, ms.
    pub target_ms: Option<f64>,
    /// NanoMDM's figure for the phase, ms per device (given, not measured).
    pub nanomdm_ms: Option<f64>,
}

impl Row {
    /// Server CPU time.
    pub fn server_cpu(&self, ticks_per_s: u64) -> Duration {
        ticks_to_duration(self.server_ticks, ticks_per_s)
    }

    /// Server CPU per operation, ms.
    pub fn per_op_ms(&self, ticks_per_s: u64) -> f64 {
        self.server_cpu(ticks_per_s).as_secs_f64() * 1000.0 / self.ops.max(1) as f64
    }

    /// Server and database CPU per operation, ms (the database's counted
    /// when there is one).
    pub fn with_database_ms(&self, ticks_per_s: u64) -> Option<f64> {
        self.database_ticks.map(|d| {
            ticks_to_duration(self.server_ticks + d, ticks_per_s).as_secs_f64() * 1000.0
                / self.ops.max(1) as f64
        })
    }

    /// `Some(true)` when the target is met.
    pub fn meets_target(&self, ticks_per_s: u64) -> Option<bool> {
        self.target_ms.map(|t| self.per_op_ms(ticks_per_s) <= t)
    }

    /// Two rows as one (e.g. enqueue + round trip); memory of the later.
    pub fn combined(phase: &str, a: &Row, b: &Row, target_ms: Option<f64>) -> Row {
        Row {
            phase: phase.to_owned(),
            ops: b.ops,
            wall: a.wall + b.wall,
            server_ticks: a.server_ticks + b.server_ticks,
            client_ticks: a.client_ticks + b.client_ticks,
            database_ticks: a.database_ticks.zip(b.database_ticks).map(|(a, b)| a + b),
            memory: b.memory,
            target_ms,
            nanomdm_ms: None,
        }
    }
}

/// A duration as seconds with two decimals (`1.23 s`).
pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Prints the `command:` line (how the benchmark was run) and the
/// `machine:` line every report starts with.
pub fn print_command_and_machine() {
    println!(
        "command:  {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    println!("machine:  {}", crate::procfs::machine_description());
}

fn mark(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "✓",
        Some(false) => "✗",
        None => " ",
    }
}

fn opt_ms(v: Option<f64>, prefix: &str) -> String {
    v.map(|v| format!("{prefix}{v}"))
        .unwrap_or_else(|| "-".into())
}

/// The table, one line per row, with a header.
pub fn table(rows: &[Row], ticks_per_s: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<30} {:>6} {:>8} {:>11} {:>11} {:>10} {:>9} {:>8} {:>10}",
        "phase",
        "ops",
        "wall s",
        "srv CPU s",
        "ms/op",
        "target ms",
        "NanoMDM*",
        "RSS MB",
        "bench CPU s"
    );
    let with_db = rows.iter().any(|r| r.database_ticks.is_some());
    for r in rows {
        let per_op = r.per_op_ms(ticks_per_s);
        let target = format!(
            "{} {}",
            opt_ms(r.target_ms, "≤"),
            mark(r.meets_target(ticks_per_s))
        );
        let _ = writeln!(
            out,
            "{:<30} {:>6} {:>8.2} {:>11.2} {:>11.3} {:>10} {:>9} {:>8.1} {:>10.2}",
            r.phase,
            r.ops,
            r.wall.as_secs_f64(),
            r.server_cpu(ticks_per_s).as_secs_f64(),
            per_op,
            target,
            opt_ms(r.nanomdm_ms, ""),
            r.memory.rss_mib(),
            ticks_to_duration(r.client_ticks, ticks_per_s).as_secs_f64(),
        );
    }
    if with_db {
        let _ = writeln!(
            out,
            "\nwith the database (PostgreSQL, all its processes) counted:\n{:<30} {:>11} {:>14}",
            "phase", "PG CPU s", "ms/op srv+PG"
        );
        for r in rows {
            let _ = writeln!(
                out,
                "{:<30} {:>11.2} {:>14.3}",
                r.phase,
                ticks_to_duration(r.database_ticks.unwrap_or(0), ticks_per_s).as_secs_f64(),
                r.with_database_ms(ticks_per_s).unwrap_or(0.0),
            );
        }
    }
    out
}

/// The RSS verdict line.
pub fn rss_line(memory: Memory, devices: usize) -> String {
    let verdict = if devices >= RSS_TARGET_DEVICES {
        mark(Some(memory.rss_mib() <= RSS_TARGET_MIB)).to_owned()
    } else {
        format!("not judged: only {devices} devices")
    };
    format!(
        "server RSS after all phases: {:.1} MB (peak {:.1} MB); target ≤ {RSS_TARGET_MIB} MB with {RSS_TARGET_DEVICES} devices: {verdict}",
        memory.rss_mib(),
        memory.peak_mib()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(ticks: u64, ops: usize, target: Option<f64>) -> Row {
        Row {
            phase: "p".into(),
            ops,
            wall: Duration::from_secs(2),
            server_ticks: ticks,
            client_ticks: 10,
            database_ticks: None,
            memory: Memory {
                rss_kib: 10240,
                peak_kib: 20480,
            },
            target_ms: target,
            nanomdm_ms: Some(18.0),
        }
    }

    #[test]
    fn per_op_and_targets() {
        let r = row(300, 1000, Some(5.0));
        assert!((r.per_op_ms(100) - 3.0).abs() < 1e-9);
        assert_eq!(r.meets_target(100), Some(true));
        assert_eq!(row(600, 1000, Some(5.0)).meets_target(100), Some(false));
        assert_eq!(row(600, 1000, None).meets_target(100), None);
        let c = Row::combined("c", &row(10, 1, None), &row(20, 1000, Some(0.5)), Some(0.5));
        assert_eq!(c.server_ticks, 30);
        assert_eq!(c.ops, 1000);
        assert_eq!(c.wall, Duration::from_secs(4));
        assert_eq!(c.meets_target(100), Some(true));
    }

    #[test]
    fn renders_table_and_rss() {
        let t = table(&[row(300, 1000, Some(5.0))], 100);
        assert!(t.contains("≤5 ✓"), "{t}");
        assert!(t.contains("3.000"), "{t}");
        let m = Memory {
            rss_kib: 100 * 1024,
            peak_kib: 200 * 1024,
        };
        assert!(rss_line(m, 10_000).ends_with('✓'));
        assert!(rss_line(m, 10).contains("not judged"));
    }
}
