//! `--postgres`: the benchmark's PostgreSQL database.
//!
//! The device and people benchmarks start their servers on it from the
//! beginning. The audit and reconcile benchmarks write their fixtures into
//! a SQLite data directory first (as before) and then move the
//! installation onto PostgreSQL with `mamori migrate`, as an operator
//! would; every server and command after that uses PostgreSQL.

use anyhow::{bail, Context};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The database's URL, once `--postgres` has started the cluster.
static URL: OnceLock<String> = OnceLock::new();

/// The variable the server and its CLI read the database from.
const VARIABLE: &str = "MAMORI_DATABASE_URL";

/// Remembers the database (a URL with the socket's directory and port).
pub fn set(url: String) {
    let _ = URL.set(url);
}

/// The database's URL, with `--postgres`.
pub fn url() -> Option<&'static str> {
    URL.get().map(String::as_str)
}

/// Every server and command started from now on uses the database.
pub fn use_from_now_on() {
    if let Some(url) = url() {
        std::env::set_var(VARIABLE, url);
    }
}

/// What `mamori migrate` did.
#[derive(Debug, Clone)]
pub struct Migrated {
    /// Wall time of the whole command.
    pub wall: Duration,
    /// Its report (rows per table, records verified).
    pub output: String,
}

/// Moves the SQLite installation in `data_dir` (no server running) onto the
/// database with `SERVER_BIN migrate --from sqlite:DATA_DIR`, then
/// [`use_from_now_on`].
pub fn migrate(server_bin: &Path, data_dir: &Path) -> anyhow::Result<Migrated> {
    let url = url().context("no PostgreSQL database (--postgres)")?;
    eprintln!("moving the installation to PostgreSQL with `mamori migrate`...");
    let t = Instant::now();
    let out = Command::new(server_bin)
        .arg("migrate")
        .arg("--from")
        .arg(format!("sqlite:{}", data_dir.display()))
        .env(VARIABLE, url)
        .env("RUST_LOG", crate::server::SERVER_RUST_LOG)
        .stdin(Stdio::null())
        .output()
        .context("cannot run `mamori migrate`")?;
    let wall = t.elapsed();
    let output = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "`mamori migrate` failed ({}): {}{}",
            out.status,
            output,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    use_from_now_on();
    Ok(Migrated { wall, output })
}

/// One number from `sql`, run with Debian's `psql` on the database.
pub fn number(sql: &str) -> anyhow::Result<u64> {
    let url = url().context("no PostgreSQL database (--postgres)")?;
    let bin = mamori_testkit::pg::server_bin().context("PostgreSQL is not installed")?;
    let out = Command::new(bin.join("psql"))
        .args([
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .stdin(Stdio::null())
        .output()
        .context("cannot run psql")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .with_context(|| format!("psql answered {:?} to {sql}", text.trim()))
}
