//! `--login-timing`: does a login attempt for an unknown administrator name
//! take as long as a failed one for a real account?
//!
//! Against the real server over HTTPS, it sends failed logins
//! (`POST /api/v1/auth/login`) alternately for real accounts with a wrong
//! password and for names that match no account, one at a time, and
//! compares the client-side latencies of the two groups (and the server CPU
//! each attempt used, from `/proc/PID/task/*/schedstat`).
//!
//! Every measured attempt must do the full password work, so none may run
//! into the server's throttling: each real account fails at most twice (the
//! account backs off from its third consecutive failure on), each unknown
//! name is used once (unknown names back off like accounts), and each source
//! address fails at most [`ATTEMPTS_PER_SOURCE`] times (a source is slowed
//! down after 10): the requests come from 127.0.0.2, 127.0.0.3, ... (all of
//! 127.0.0.0/8 is loopback on Linux), one HTTP client per address. A 429 or
//! any answer other than 401 "invalid credentials" ends the run with an
//! error instead of figures.

use crate::procfs;
use crate::server::{self, Server};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Instant;

/// Failed attempts per real account (the third consecutive failure makes the
/// account back off, so at most 2 keep every attempt a full one).
pub const ATTEMPTS_PER_ACCOUNT: usize = 2;
/// Failed attempts per source address (a source is slowed down after 10).
pub const ATTEMPTS_PER_SOURCE: usize = 8;
/// The first source address; the warm-up uses it, the measurement the next.
const FIRST_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// Real accounts used only to warm the server up (not measured).
const WARMUP_ACCOUNTS: usize = 2;

/// Real accounts and unknown names have names of the same length.
fn real_name(i: usize) -> String {
    format!("login-real-{i:03}")
}
fn unknown_name(i: usize) -> String {
    format!("login-none-{i:03}")
}
fn warmup_real_name(i: usize) -> String {
    format!("login-warm-{i:03}")
}
fn warmup_unknown_name(i: usize) -> String {
    format!("login-wnon-{i:03}")
}

/// Which side of the comparison an attempt is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// A real account, wrong password.
    Real,
    /// A name that matches no account.
    Unknown,
}

/// One planned login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Which group it belongs to.
    pub group: Group,
    /// The login name sent.
    pub name: String,
    /// Pair number: attempt `pair` of each group are sent next to each other.
    pub pair: usize,
}

/// The measured attempts, in sending order: `2 * accounts` pairs of one
/// real-account and one unknown-name attempt, the order inside a pair
/// alternating (so that neither group always comes first). The real
/// accounts are gone through once, then a second time, so an account's two
/// attempts are `accounts` pairs apart; every unknown name is used once.
pub fn plan(accounts: usize) -> Vec<Attempt> {
    let pairs = accounts * ATTEMPTS_PER_ACCOUNT;
    let mut out = Vec::with_capacity(2 * pairs);
    for pair in 0..pairs {
        let real = Attempt {
            group: Group::Real,
            name: real_name(pair % accounts),
            pair,
        };
        let unknown = Attempt {
            group: Group::Unknown,
            name: unknown_name(pair),
            pair,
        };
        if pair % 2 == 0 {
            out.extend([real, unknown]);
        } else {
            out.extend([unknown, real]);
        }
    }
    out
}

/// The warm-up attempts (not measured): each warm-up account twice and as
/// many unknown names, alternating; they fill one source address.
fn warmup_plan() -> Vec<Attempt> {
    (0..WARMUP_ACCOUNTS * ATTEMPTS_PER_ACCOUNT)
        .flat_map(|pair| {
            [
                Attempt {
                    group: Group::Real,
                    name: warmup_real_name(pair % WARMUP_ACCOUNTS),
                    pair,
                },
                Attempt {
                    group: Group::Unknown,
                    name: warmup_unknown_name(pair),
                    pair,
                },
            ]
        })
        .collect()
}

/// The `i`-th source address: 127.0.0.2, 127.0.0.3, ... (within 127/8).
pub fn source_address(i: usize) -> anyhow::Result<Ipv4Addr> {
    let first = u32::from(FIRST_SOURCE);
    let addr = u32::try_from(i)
        .ok()
        .and_then(|i| first.checked_add(i))
        .map(Ipv4Addr::from)
        .filter(|a| a.octets()[0] == 127 && *a != Ipv4Addr::new(127, 255, 255, 255))
        .with_context(|| format!("no loopback source address number {i}"))?;
    Ok(addr)
}

/// Order statistics of a sample, in ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// 50th percentile.
    pub median: f64,
    /// 10th percentile.
    pub p10: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Summary {
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
            p10: percentile(&sorted, 10.0),
            p90: percentile(&sorted, 90.0),
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        })
    }
}

/// The `p`-th percentile (0–100) of sorted values, linearly interpolated
/// between the two nearest ranks (`(n - 1) * p / 100`, as numpy's default
/// and R's type 7). NaN for an empty slice.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let rank = (n - 1) as f64 * p.clamp(0.0, 100.0) / 100.0;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

/// One measured attempt.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Group of the attempt.
    pub group: Group,
    /// Its pair number.
    pub pair: usize,
    /// Client-side wall time from sending the request to having read the
    /// whole answer, ms.
    pub latency_ms: f64,
    /// CPU time of all server threads between just before and just after
    /// the attempt, ms (`None` if a server thread exited meanwhile, or
    /// schedstat is unavailable).
    pub server_cpu_ms: Option<f64>,
}

/// Of the pairs with both attempts measured, how many there are and in how
/// many the unknown name took longer than the real account.
pub fn unknown_slower_pairs(samples: &[Sample]) -> (usize, usize) {
    let mut by_pair: HashMap<usize, (Option<f64>, Option<f64>)> = HashMap::new();
    for s in samples {
        let e = by_pair.entry(s.pair).or_default();
        match s.group {
            Group::Real => e.0 = Some(s.latency_ms),
            Group::Unknown => e.1 = Some(s.latency_ms),
        }
    }
    let complete: Vec<(f64, f64)> = by_pair
        .values()
        .filter_map(|&(r, u)| Some((r?, u?)))
        .collect();
    let slower = complete.iter().filter(|(r, u)| u > r).count();
    (complete.len(), slower)
}

/// What the server answered one attempt: fine only if it is a 401 with
/// "invalid credentials".
pub fn check_answer(status: u16, body: &str, name: &str) -> anyhow::Result<()> {
    if status == 429 {
        bail!(
            "login for {name:?} answered 429 (throttled): that attempt did no password work, so \
             the figures would be wrong; the server's throttling policy must have changed \
             (this benchmark uses each account at most {ATTEMPTS_PER_ACCOUNT} times, each unknown \
             name once, each source address at most {ATTEMPTS_PER_SOURCE} times). Body: {body}"
        );
    }
    let error = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned));
    if status != 401 || error.as_deref() != Some("invalid credentials") {
        bail!("login for {name:?}: expected 401 \"invalid credentials\", got {status}: {body}");
    }
    Ok(())
}

/// Sends the attempts of one source address over one HTTP client, one at a
/// time, after opening its connection with an untimed `GET /healthz`.
async fn run_source(
    server: &Server,
    source: Ipv4Addr,
    attempts: &[Attempt],
    cpu: bool,
) -> anyhow::Result<Vec<Sample>> {
    let http = server::client_from(&server.tls_ca_pem, IpAddr::V4(source))
        .with_context(|| format!("HTTP client from {source}"))?;
    let base = format!("https://{}", server.admin_addr);
    let r = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .with_context(|| format!("GET /healthz from {source}"))?;
    if !r.status().is_success() {
        bail!("GET /healthz from {source}: {}", r.status());
    }
    let url = format!("{base}/api/v1/auth/login");
    let mut out = Vec::with_capacity(attempts.len());
    for a in attempts {
        // Wrong passwords of the same length for both groups.
        let tag = match a.group {
            Group::Real => 'r',
            Group::Unknown => 'u',
        };
        let password = format!("wrong-password-{tag}{:04}", a.pair);
        let body = json!({ "name": a.name, "password": password });
        let cpu_before = cpu
            .then(|| procfs::thread_cpu_ns(server.pid()))
            .transpose()?;
        let start = Instant::now();
        let r = http
            .post(&url)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST /api/v1/auth/login from {source}"))?;
        let status = r.status().as_u16();
        let text = r.text().await.context("login answer body")?;
        let latency = start.elapsed();
        let server_cpu_ms = match cpu_before {
            Some(before) => {
                let after = procfs::thread_cpu_ns(server.pid())?;
                let (ns, exited) = procfs::thread_cpu_delta(&before, &after);
                (!exited).then_some(ns as f64 / 1e6)
            }
            None => None,
        };
        check_answer(status, &text, &a.name).with_context(|| format!("from {source}"))?;
        out.push(Sample {
            group: a.group,
            pair: a.pair,
            latency_ms: latency.as_secs_f64() * 1000.0,
            server_cpu_ms,
        });
    }
    Ok(out)
}

/// With `server` running: creates the accounts, warms up, measures, and
/// returns the report to print.
pub async fn measure(
    server: &Server,
    server_bin: &Path,
    accounts: usize,
) -> anyhow::Result<String> {
    if accounts == 0 {
        bail!("no accounts to measure with");
    }
    // 1. Accounts (each `admin create` hashes a password once).
    let names: Vec<String> = (0..WARMUP_ACCOUNTS)
        .map(warmup_real_name)
        .chain((0..accounts).map(real_name))
        .collect();
    eprintln!("creating {} administrator accounts...", names.len());
    for (i, name) in names.iter().enumerate() {
        server.create_admin(server_bin, name, "viewer")?;
        if (i + 1) % 10 == 0 {
            eprintln!("  accounts: {}/{}", i + 1, names.len());
        }
    }
    server.check_alive()?;

    // schedstat may be missing (kernels without CONFIG_SCHED_INFO).
    let cpu = procfs::thread_cpu_ns(server.pid()).is_ok();

    // 2. Warm-up (also creates the server's dummy hash for unknown names).
    eprintln!("warm-up...");
    run_source(server, source_address(0)?, &warmup_plan(), cpu).await?;

    // 3. The measured attempts, one source address per ATTEMPTS_PER_SOURCE.
    let plan = plan(accounts);
    let chunks: Vec<&[Attempt]> = plan.chunks(ATTEMPTS_PER_SOURCE).collect();
    eprintln!(
        "measuring {} login attempts from {} source addresses...",
        plan.len(),
        chunks.len()
    );
    let mut samples = Vec::with_capacity(plan.len());
    for (i, chunk) in chunks.iter().enumerate() {
        samples.extend(run_source(server, source_address(i + 1)?, chunk, cpu).await?);
        if (i + 1) % 5 == 0 && i + 1 < chunks.len() {
            eprintln!("  attempts: {}/{}", samples.len(), plan.len());
        }
    }
    server.check_alive()?;
    let last_source = source_address(chunks.len())?;
    Ok(report(
        &samples,
        accounts,
        cpu,
        &format!(
            "{}-{} ({} attempts each at most; warm-up from {})",
            source_address(1)?,
            last_source,
            ATTEMPTS_PER_SOURCE,
            source_address(0)?
        ),
    ))
}

fn group_values(samples: &[Sample], group: Group, f: impl Fn(&Sample) -> Option<f64>) -> Vec<f64> {
    samples
        .iter()
        .filter(|s| s.group == group)
        .filter_map(f)
        .collect()
}

/// The result lines.
pub fn report(samples: &[Sample], accounts: usize, cpu: bool, sources: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{accounts} real accounts x {ATTEMPTS_PER_ACCOUNT} wrong passwords, {} unknown names x 1; \
         sent one at a time, alternating; sources {sources}",
        accounts * ATTEMPTS_PER_ACCOUNT
    );
    let _ = writeln!(
        out,
        "every answer: 401 \"invalid credentials\" (no 429: every attempt did the full password work)"
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<30} {:>7} {:>10} {:>8} {:>8} {:>8}   {:>18}",
        "latency (client, ms)", "samples", "median", "p10", "p90", "mean", "server CPU med/mean"
    );
    let groups = [
        (Group::Real, "real account, wrong password"),
        (Group::Unknown, "unknown name"),
    ];
    let mut medians = Vec::new();
    for (group, label) in groups {
        let lat = group_values(samples, group, |s| Some(s.latency_ms));
        let Some(l) = Summary::of(&lat) else {
            let _ = writeln!(out, "{label:<30} {:>7}", 0);
            continue;
        };
        medians.push(l.median);
        let cpu_col = match Summary::of(&group_values(samples, group, |s| s.server_cpu_ms)) {
            Some(c) if cpu => format!("{:.2} / {:.2} (n={})", c.median, c.mean, c.n),
            _ => "not measured".into(),
        };
        let _ = writeln!(
            out,
            "{label:<30} {:>7} {:>10.2} {:>8.2} {:>8.2} {:>8.2}   {cpu_col:>18}",
            l.n, l.median, l.p10, l.p90, l.mean
        );
    }
    if let [real, unknown] = medians[..] {
        let diff = unknown - real;
        let _ = writeln!(
            out,
            "difference of medians (unknown - real): {diff:+.2} ms ({:+.1} % of the real-account median)",
            100.0 * diff / real
        );
    }
    let (pairs, slower) = unknown_slower_pairs(samples);
    let _ = writeln!(
        out,
        "adjacent pairs: the unknown name took longer in {slower} of {pairs}"
    );
    let _ = writeln!(out);
    let _ =
        writeln!(
        out,
        "latency = wall time in this process from sending the request to having read the whole \
         answer, over a TLS connection opened beforehand (untimed). server CPU = run time of all \
         server threads (/proc/PID/task/*/schedstat) from just before to just after the attempt, \
         ms{}.",
        if cpu { "" } else { " (schedstat unavailable here)" }
    );
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn percentiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 50.0), 3.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 100.0), 5.0);
        assert!((percentile(&v, 10.0) - 1.4).abs() < 1e-12);
        assert!((percentile(&v, 90.0) - 4.6).abs() < 1e-12);
        assert_eq!(percentile(&[1.0, 2.0], 50.0), 1.5);
        assert_eq!(percentile(&[7.0], 90.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn summary_sorts_first() {
        let s = Summary::of(&[5.0, 1.0, 4.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.n, 5);
        assert_eq!(s.median, 3.0);
        assert_eq!(s.mean, 3.0);
        assert!((s.p10 - 1.4).abs() < 1e-12);
        assert!((s.p90 - 4.6).abs() < 1e-12);
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn plan_stays_below_every_throttle() {
        let accounts = 40;
        let plan = plan(accounts);
        assert_eq!(plan.len(), 4 * accounts);
        let mut uses: HashMap<&str, usize> = HashMap::new();
        for a in &plan {
            *uses.entry(&a.name).or_default() += 1;
        }
        for a in &plan {
            let max = match a.group {
                Group::Real => ATTEMPTS_PER_ACCOUNT,
                Group::Unknown => 1,
            };
            assert!(uses[a.name.as_str()] <= max, "{} used too often", a.name);
        }
        let real: HashSet<&str> = plan
            .iter()
            .filter(|a| a.group == Group::Real)
            .map(|a| a.name.as_str())
            .collect();
        let unknown: HashSet<&str> = plan
            .iter()
            .filter(|a| a.group == Group::Unknown)
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(real.len(), accounts);
        assert_eq!(unknown.len(), 2 * accounts);
        assert!(real.is_disjoint(&unknown));
        // Same name length in both groups.
        assert!(plan.iter().all(|a| a.name.len() == plan[0].name.len()));
        // Names the server accepts as account names; not the warm-up ones.
        for a in plan.iter().chain(warmup_plan().iter()) {
            assert!(a
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        }
        assert!(warmup_plan()
            .iter()
            .all(|w| !uses.contains_key(w.name.as_str())));
        assert!(warmup_plan().len() <= ATTEMPTS_PER_SOURCE);
        // A source fails at most ATTEMPTS_PER_SOURCE < 10 times.
        assert!(plan.chunks(ATTEMPTS_PER_SOURCE).all(|c| c.len() < 10));
    }

    #[test]
    fn plan_alternates_and_pairs() {
        let plan = plan(3);
        for (i, pair) in plan.chunks(2).enumerate() {
            assert_eq!(pair[0].pair, i);
            assert_eq!(pair[1].pair, i);
            assert_ne!(pair[0].group, pair[1].group);
            let first = if i % 2 == 0 {
                Group::Real
            } else {
                Group::Unknown
            };
            assert_eq!(pair[0].group, first);
        }
        let first_real = plan.iter().filter(|a| a.group == Group::Real).count();
        assert_eq!(first_real, plan.len() / 2);
        // An account's two attempts are `accounts` pairs apart.
        let pairs_of = |name: &str| -> Vec<usize> {
            plan.iter()
                .filter(|a| a.name == name)
                .map(|a| a.pair)
                .collect()
        };
        assert_eq!(pairs_of(&real_name(1)), vec![1, 4]);
    }

    #[test]
    fn source_addresses_stay_in_loopback() {
        assert_eq!(source_address(0).unwrap(), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(source_address(253).unwrap(), Ipv4Addr::new(127, 0, 0, 255));
        assert_eq!(source_address(254).unwrap(), Ipv4Addr::new(127, 0, 1, 0));
        assert!(source_address(0).unwrap().is_loopback());
        assert!(source_address(usize::MAX).is_err());
        assert!(source_address(1 << 24).is_err());
    }

    #[test]
    fn answers_are_checked() {
        check_answer(401, r#"{"error":"invalid credentials"}"#, "x").unwrap();
        let e = check_answer(429, r#"{"error":"too many requests"}"#, "x").unwrap_err();
        assert!(e.to_string().contains("429"), "{e}");
        assert!(check_answer(401, r#"{"error":"unauthorized"}"#, "x").is_err());
        assert!(check_answer(200, "{}", "x").is_err());
        assert!(check_answer(401, "not json", "x").is_err());
    }

    fn sample(group: Group, pair: usize, latency_ms: f64) -> Sample {
        Sample {
            group,
            pair,
            latency_ms,
            server_cpu_ms: Some(latency_ms / 2.0),
        }
    }

    #[test]
    fn pairs_and_report() {
        let samples = [
            sample(Group::Real, 0, 10.0),
            sample(Group::Unknown, 0, 11.0),
            sample(Group::Unknown, 1, 9.0),
            sample(Group::Real, 1, 10.0),
            sample(Group::Real, 2, 10.0),
        ];
        assert_eq!(unknown_slower_pairs(&samples), (2, 1));
        let r = report(&samples, 2, true, "127.0.0.3-127.0.0.3");
        assert!(
            r.contains("difference of medians (unknown - real): +0.00 ms (+0.0 %"),
            "{r}"
        );
        assert!(r.contains("in 1 of 2"), "{r}");
        assert!(r.contains("5.00 / 5.00 (n=3)"), "{r}");
        assert!(report(&samples, 2, false, "-").contains("not measured"));
    }
}
