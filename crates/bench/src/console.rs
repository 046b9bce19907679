//! `--console`: the web console's server time and weight per page, with N
//! enrolled devices and P people.
//!
//! 1. The data directory as `--reconcile` makes it (the real server, a
//!    push certificate from an in-process APNs stand-in), N enrolled
//!    iPhones written into it, the server started again.
//! 2. P synthetic people imported over the API (CSV, as `--people`), the
//!    five policies of `--reconcile` on a dynamic group of every device,
//!    and reconciliation passes until one queues nothing (so devices have
//!    commands and the group's progress has rows to count).
//! 3. Each page is asked for [`WARMUP`] times untimed, then [`RUNS`] times
//!    one after another on one keep-alive connection with the owner's API
//!    token (the console takes the same credentials as the API): wall time
//!    per request on the loopback (the server's answer time plus a little
//!    client time) and the server's CPU per request (`utime + stime` from
//!    /proc). Weight: the page's HTML plus every stylesheet and script it
//!    links (images are `data:` URIs inside the page), uncompressed.
//!
//! The overview (`/console/`) takes sessions only; its costliest panel is
//! the compliance report, which `/console/compliance` measures whole.

use crate::people::{batches, csv, Latency};
use crate::procfs;
use crate::server::Server;
use anyhow::{anyhow, bail, Context};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// Untimed requests per page first.
pub const WARMUP: usize = 3;
/// Timed requests per page.
pub const RUNS: usize = 20;
/// Server time per page the issue asks for (median).
pub const TARGET_MS: f64 = 50.0;
/// First load of any page the issue allows, bytes.
pub const TARGET_BYTES: usize = 150 * 1024;

/// One page's figures.
#[derive(Debug, Clone)]
pub struct PageFigures {
    /// What the page is.
    pub name: &'static str,
    /// Wall time per request, ms.
    pub latency: Latency,
    /// Server CPU per request.
    pub cpu: Duration,
    /// The HTML's bytes.
    pub html: usize,
    /// The HTML and every stylesheet and script it links.
    pub total: usize,
}

/// Everything `--console` measured.
#[derive(Debug, Clone)]
pub struct Figures {
    /// Enrolled devices.
    pub devices: usize,
    /// People.
    pub people: usize,
    /// One entry per page.
    pub pages: Vec<PageFigures>,
}

async fn get(server: &Server, path: &str) -> anyhow::Result<String> {
    let r = server
        .http
        .get(server.admin_url(path))
        .bearer_auth(&server.token)
        .header("accept-language", "ja")
        .send()
        .await
        .with_context(|| format!("GET {path}"))?;
    let status = r.status();
    let text = r.text().await.with_context(|| format!("GET {path}"))?;
    if !status.is_success() {
        bail!(
            "GET {path}: {status}: {}",
            text.chars().take(500).collect::<String>()
        );
    }
    Ok(text)
}

async fn json(server: &Server, path: &str) -> anyhow::Result<serde_json::Value> {
    let text = get(server, path).await?;
    serde_json::from_str(&text).with_context(|| format!("GET {path}: not JSON"))
}

/// The stylesheets and scripts a page links (`href`/`src` of our own
/// paths).
pub fn linked_assets(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["<link rel=\"stylesheet\" href=\"", "<script src=\""] {
        for part in html.split(attr).skip(1) {
            if let Some(path) = part.split('"').next() {
                if path.starts_with('/') && !out.iter().any(|p| p == path) {
                    out.push(path.to_owned());
                }
            }
        }
    }
    out
}

/// Times one page.
async fn page(
    server: &Server,
    name: &'static str,
    path: String,
    assets: &mut BTreeMap<String, usize>,
) -> anyhow::Result<PageFigures> {
    for _ in 0..WARMUP {
        get(server, &path).await?;
    }
    let before = procfs::cpu_ticks(server.pid())?;
    let mut ms = Vec::with_capacity(RUNS);
    let mut html = String::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        html = get(server, &path).await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let ticks = procfs::cpu_ticks(server.pid())?.saturating_sub(before);
    let per_s = procfs::clock_ticks_per_second().max(1);
    let cpu = Duration::from_secs_f64(ticks as f64 / per_s as f64 / RUNS as f64);
    let mut total = html.len();
    for a in linked_assets(&html) {
        let size = match assets.get(&a) {
            Some(n) => *n,
            None => {
                let n = get(server, &a).await?.len();
                assets.insert(a.clone(), n);
                n
            }
        };
        total += size;
    }
    let latency = Latency::of(&ms).ok_or_else(|| anyhow!("no timing for {path}"))?;
    Ok(PageFigures {
        name,
        latency,
        cpu,
        html: html.len(),
        total,
    })
}

/// Imports `n` people in CSV requests of 10,000.
async fn import_people(server: &Server, n: usize) -> anyhow::Result<()> {
    eprintln!("importing {n} people...");
    for range in batches(n, 10_000) {
        let r = server
            .http
            .post(server.admin_url("/api/v1/people/import"))
            .bearer_auth(&server.token)
            .header("Content-Type", "text/csv")
            .body(csv(range.clone()))
            .send()
            .await
            .context("POST /api/v1/people/import")?;
        if r.status().as_u16() != 201 {
            bail!("import of {range:?}: {}", r.status());
        }
    }
    Ok(())
}

/// The first `id` of a listed collection (`/api/v1/policies` → `policies`).
fn first_id(
    v: &serde_json::Value,
    list: &str,
    pick: impl Fn(&serde_json::Value) -> bool,
) -> anyhow::Result<String> {
    v[list]
        .as_array()
        .and_then(|items| items.iter().find(|i| pick(i)))
        .and_then(|i| i["id"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no item in {list}"))
}

/// The pages measured: (name, path).
async fn pages_to_measure(
    server: &Server,
    devices: usize,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let policies = json(server, "/api/v1/policies").await?;
    let restrictions = first_id(&policies, "policies", |p| p["kind"] == "restrictions")?;
    let vpn = first_id(&policies, "policies", |p| p["kind"] == "vpn")?;
    let group = first_id(&json(server, "/api/v1/groups").await?, "groups", |_| true)?;
    let person = first_id(
        &json(server, "/api/v1/people?limit=1").await?,
        "people",
        |_| true,
    )?;
    // A device in the middle of the fixture (its serial is `F` and its
    // index in ten digits).
    let middle = devices / 2;
    let device = crate::reconcile::udid(middle);
    let serial = format!("/console/devices?serial=F{middle:010}");
    Ok(vec![
        ("devices, first page", "/console/devices".into()),
        ("devices, search by serial", serial),
        (
            "devices, search by model",
            "/console/devices?model=iPhone".into(),
        ),
        ("a device", format!("/console/devices/{device}")),
        ("people, first page", "/console/people".into()),
        ("a person", format!("/console/people/{person}")),
        ("policies", "/console/policies".into()),
        (
            "a policy (restrictions, 188 keys)",
            format!("/console/policies/{restrictions}"),
        ),
        ("a policy (VPN)", format!("/console/policies/{vpn}")),
        (
            "new policy form (restrictions)",
            "/console/policies/new?kind=restrictions".into(),
        ),
        ("groups", "/console/groups".into()),
        ("a group", format!("/console/groups/{group}")),
        (
            "a group's progress (the last pass's count)",
            format!("/console/groups/{group}/progress"),
        ),
        (
            "a group's progress, counted now (every device)",
            format!("/console/groups/{group}/progress?now=1"),
        ),
        ("compliance report", "/console/compliance".into()),
        ("enrollment", "/console/enrollment".into()),
        ("approvals", "/console/approvals".into()),
        ("audit log", "/console/audit".into()),
        ("alerts, 90 days", "/console/alerts?days=90".into()),
        ("incidents", "/console/incidents".into()),
        (
            "breach scope (form)",
            "/console/reports/breach-scope".into(),
        ),
        ("administrators", "/console/admins".into()),
        ("API tokens", "/console/tokens".into()),
        ("settings", "/console/settings".into()),
    ])
}

/// Runs the benchmark in `work_dir`.
pub async fn measure(
    server_bin: &Path,
    work_dir: &Path,
    devices: usize,
    people: usize,
) -> anyhow::Result<Figures> {
    let push = crate::reconcile::Apns::start(work_dir).await?;
    let apns = &push.stand_in;
    let serve_args = push.serve_args();
    let (token, topic, db) =
        crate::reconcile::create_data_dir(server_bin, work_dir, &serve_args, &push.apple).await?;
    eprintln!("writing the fixture: {devices} enrolled devices...");
    let (db2, topic2) = (db.clone(), topic.clone());
    tokio::task::spawn_blocking(move || crate::reconcile::write_devices(&db2, devices, &topic2))
        .await
        .context("fixture writer panicked")??;
    let server = Server::restart_with(
        server_bin,
        work_dir,
        &token,
        "server-console.log",
        &serve_args,
    )
    .await?;
    import_people(&server, people).await?;
    crate::reconcile::assign_policies(&server).await?;
    eprintln!("reconciling...");
    for _ in 0..(devices * crate::reconcile::POLICIES / crate::reconcile::BATCH + 2) {
        let r = server
            .http
            .post(server.admin_url("/api/v1/reconcile"))
            .bearer_auth(&server.token)
            .send()
            .await
            .context("POST /api/v1/reconcile")?;
        let v: serde_json::Value = r.json().await.context("reconcile answer")?;
        if v["installs"].as_u64() == Some(0) {
            break;
        }
    }
    apns.take();
    eprintln!("timing the pages...");
    let mut assets = BTreeMap::new();
    let mut pages = Vec::new();
    for (name, path) in pages_to_measure(&server, devices).await? {
        pages.push(page(&server, name, path, &mut assets).await?);
    }
    server.check_alive()?;
    Ok(Figures {
        devices,
        people,
        pages,
    })
}

/// The table of figures.
pub fn report(f: &Figures) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} enrolled devices, {} people; targets: median ≤ {TARGET_MS} ms, page with its \
         assets ≤ {} KiB\n",
        f.devices,
        f.people,
        TARGET_BYTES / 1024
    );
    let _ = writeln!(
        out,
        "| page | median ms | p90 ms | server CPU ms | HTML KiB | with assets KiB | targets |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|");
    for p in &f.pages {
        let time_ok = p.latency.median <= TARGET_MS;
        let weight_ok = p.total <= TARGET_BYTES;
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            p.name,
            p.latency.median,
            p.latency.p90,
            p.cpu.as_secs_f64() * 1000.0,
            p.html as f64 / 1024.0,
            p.total as f64 / 1024.0,
            match (time_ok, weight_ok) {
                (true, true) => "met",
                (false, true) => "time missed",
                (true, false) => "weight missed",
                (false, false) => "both missed",
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pages_assets_are_its_own_stylesheets_and_scripts() {
        let html = r#"<link rel="stylesheet" href="/console/assets/console.css"><script src="/console/assets/forms.js" defer></script><script src="/console/assets/forms.js"></script><img src="data:x">"#;
        assert_eq!(
            linked_assets(html),
            ["/console/assets/console.css", "/console/assets/forms.js"]
        );
    }
}
