//! What the benchmark reads from /proc: a process's CPU time (all threads,
//! `utime + stime` in clock ticks from `/proc/PID/stat`) and its resident set
//! size (`VmRSS`, `VmHWM` from `/proc/PID/status`), plus a description of the
//! machine.

use anyhow::{anyhow, Context};
use std::collections::HashMap;
use std::time::Duration;

/// Clock ticks per second (`getconf CLK_TCK`; 100 when that fails, which is
/// what Linux uses on every common architecture).
pub fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// `utime + stime` of a process (all its threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_stat_cpu_ticks(&text).with_context(|| format!("cannot parse {path}"))
}

/// Parses `utime` (field 14) and `stime` (field 15) of `/proc/PID/stat`.
/// The command name (field 2) is in parentheses and may itself contain
/// spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    let close = stat
        .rfind(')')
        .ok_or_else(|| anyhow!("no ')' after the command name"))?;
    // After ')': field 3 (state) is index 0, so utime (14) is 11, stime (15) is 12.
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let field = |i: usize| -> anyhow::Result<u64> {
        rest.get(i)
            .ok_or_else(|| anyhow!("too few fields"))?
            .parse::<u64>()
            .map_err(|e| anyhow!("field {}: {e}", i + 3))
    };
    Ok(field(11)? + field(12)?)
}

/// Resident memory of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS` in KiB.
    pub rss_kib: u64,
    /// `VmHWM` (peak RSS) in KiB.
    pub peak_kib: u64,
}

impl Memory {
    /// Current RSS in MiB.
    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }

    /// Peak RSS in MiB.
    pub fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }
}

/// `VmRSS` and `VmHWM` of a process.
pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_status_memory(&text).with_context(|| format!("cannot parse {path}"))
}

/// Parses `VmRSS:` and `VmHWM:` (in kB) of `/proc/PID/status`.
pub fn parse_status_memory(status: &str) -> anyhow::Result<Memory> {
    let kib = |key: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .ok_or_else(|| anyhow!("no {key} line"))?;
        let value = line
            .split_whitespace()
            .next()
            .ok_or_else(|| anyhow!("empty {key} line"))?;
        value
            .parse::<u64>()
            .map_err(|e| anyhow!("{key} {value:?}: {e}"))
    };
    Ok(Memory {
        rss_kib: kib("VmRSS:")?,
        peak_kib: kib("VmHWM:")?,
    })
}

/// A CPU-time reading of the server and of the benchmark itself.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    /// Server `utime + stime`, clock ticks.
    pub server: u64,
    /// Benchmark (simulated devices) `utime + stime`, clock ticks.
    pub client: u64,
    /// The database server's, with its children, when there is one.
    pub database: Option<u64>,
}

impl CpuSample {
    /// Reads the servers (their sum) and the benchmark, and the database
    /// server's when there is one.
    pub fn take(server_pids: &[u32]) -> anyhow::Result<Self> {
        let mut server = 0;
        for &pid in server_pids {
            server += cpu_ticks(pid)?;
        }
        Ok(Self {
            server,
            client: cpu_ticks(std::process::id())?,
            database: match DATABASE_PID.get() {
                Some(&pid) => Some(process_tree_ticks(pid)?),
                None => None,
            },
        })
    }
}

/// The PostgreSQL server (postmaster) the benchmarked server uses, when
/// `--postgres` is given: its CPU is counted too.
pub static DATABASE_PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// CPU of a process and all its children, live and exited: its own
/// `utime + stime`, its reaped children's (`cutime + cstime`), and each
/// live child's (found by parent id in `/proc`). PostgreSQL runs one
/// process per connection and several background workers under one
/// postmaster.
pub fn process_tree_ticks(root: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{root}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let mut total = parse_stat_cpu_ticks(&text)? + parse_stat_children_ticks(&text)?;
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may end between the listing and the read.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if parse_stat_parent(&stat).ok() == Some(root) {
            total += parse_stat_cpu_ticks(&stat).unwrap_or(0);
        }
    }
    Ok(total)
}

/// The fields after the command name of a `/proc/PID/stat` line.
fn stat_fields(stat: &str) -> anyhow::Result<Vec<&str>> {
    let close = stat
        .rfind(')')
        .ok_or_else(|| anyhow!("no ')' after the command name"))?;
    Ok(stat[close + 1..].split_whitespace().collect())
}

/// `ppid` (field 4).
fn parse_stat_parent(stat: &str) -> anyhow::Result<u32> {
    let f = stat_fields(stat)?;
    Ok(f.get(1).ok_or_else(|| anyhow!("too few fields"))?.parse()?)
}

/// `cutime + cstime` (fields 16 and 17): children waited for.
fn parse_stat_children_ticks(stat: &str) -> anyhow::Result<u64> {
    let f = stat_fields(stat)?;
    let field = |i: usize| -> anyhow::Result<u64> {
        Ok(f.get(i)
            .ok_or_else(|| anyhow!("too few fields"))?
            .parse::<u64>()?)
    };
    Ok(field(13)? + field(14)?)
}

/// Run time of each thread of a process in nanoseconds (the first field of
/// `/proc/PID/task/TID/schedstat`), by thread id: far finer than the clock
/// ticks of `/proc/PID/stat`, for timing single requests. A thread that
/// exits between two readings is missing from the second.
pub fn thread_cpu_ns(pid: u32) -> anyhow::Result<HashMap<u32, u64>> {
    let dir = format!("/proc/{pid}/task");
    let mut out = HashMap::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot read {dir}"))? {
        let entry = entry?;
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let path = entry.path().join("schedstat");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let ns = parse_schedstat_ns(&text)
                    .with_context(|| format!("cannot parse {}", path.display()))?;
                out.insert(tid, ns);
            }
            // The thread exited after the directory was listed: the file is
            // gone (ENOENT), or reading it finds no thread (ESRCH, 3 on
            // Linux).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(3) => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    Ok(out)
}

/// The run time (first field, ns) of a `schedstat` line.
pub fn parse_schedstat_ns(schedstat: &str) -> anyhow::Result<u64> {
    let first = schedstat
        .split_whitespace()
        .next()
        .ok_or_else(|| anyhow!("empty schedstat"))?;
    first
        .parse::<u64>()
        .map_err(|e| anyhow!("run time {first:?}: {e}"))
}

/// CPU time the threads used between two [`thread_cpu_ns`] readings, in ns,
/// and whether a thread exited in between (its share is then missing).
pub fn thread_cpu_delta(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) -> (u64, bool) {
    let used = after
        .iter()
        .map(|(tid, &ns)| ns.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    let exited = before.keys().any(|tid| !after.contains_key(tid));
    (used, exited)
}

/// Converts clock ticks to a duration.
pub fn ticks_to_duration(ticks: u64, per_second: u64) -> Duration {
    Duration::from_secs_f64(ticks as f64 / per_second.max(1) as f64)
}

/// `"2 CPUs, Intel(R) Xeon(R) ..."` from `available_parallelism` and
/// `/proc/cpuinfo`.
pub fn machine_description() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "?".into());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU model".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map(|kib| format!(", {:.1} GiB RAM", kib as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cpus} CPUs (nproc), {model}{mem}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let stat = "4242 (mam ori) (x)) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    250 75 0 0 20 0 9 0 123456 1000000 2000 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat).unwrap(), 325);
        assert!(parse_stat_cpu_ticks("4242 (x) S 1 2").is_err());
        assert!(parse_stat_cpu_ticks("no parenthesis").is_err());
    }

    #[test]
    fn parses_status_memory() {
        let status = "Name:\tmamori\nVmPeak:\t  999 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n";
        let m = parse_status_memory(status).unwrap();
        assert_eq!(
            m,
            Memory {
                rss_kib: 40960,
                peak_kib: 51200
            }
        );
        assert!((m.rss_mib() - 40.0).abs() < 1e-9);
        assert!((m.peak_mib() - 50.0).abs() < 1e-9);
        assert!(parse_status_memory("Name:\tx\n").is_err());
    }

    #[test]
    fn parses_schedstat_and_diffs_threads() {
        assert_eq!(parse_schedstat_ns("804747 0 2\n").unwrap(), 804_747);
        assert!(parse_schedstat_ns("").is_err());
        assert!(parse_schedstat_ns("x 0 2").is_err());
        let before = HashMap::from([(1, 100), (2, 50), (3, 7)]);
        let after = HashMap::from([(1, 160), (2, 50), (4, 30)]);
        // 60 from thread 1, 0 from 2, 30 from the new thread 4; 3 exited.
        assert_eq!(thread_cpu_delta(&before, &after), (90, true));
        assert_eq!(thread_cpu_delta(&after, &after), (0, false));
    }

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        cpu_ticks(pid).unwrap();
        assert!(memory(pid).unwrap().rss_kib > 0);
        assert!(!thread_cpu_ns(pid).unwrap().is_empty());
        assert!(clock_ticks_per_second() > 0);
        assert!(machine_description().contains("CPUs"));
        assert_eq!(ticks_to_duration(150, 100), Duration::from_millis(1500));
    }
}
