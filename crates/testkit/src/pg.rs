//! A throwaway PostgreSQL cluster for tests: Debian's server binaries
//! (`/usr/lib/postgresql/<version>/bin`, installed by `scripts/test.sh`),
//! a data directory under a temporary directory, listening on a Unix
//! socket only (no TCP port, so nothing else on the machine can reach it,
//! and tests running at once never collide), `fsync` off. Stopped and
//! removed when dropped. [`Cluster::start_tls`] adds a TCP listener on
//! 127.0.0.1 that takes TLS connections only (`pg/tls.rs`).
//!
//! PostgreSQL refuses to run as root; run as root (a CI machine), the
//! cluster belongs to the `postgres` system user that Debian's package
//! creates, and its programs are started through `runuser`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod tls;
pub use tls::CERT_HOST;

/// One cluster for a whole test binary, started by the first test that
/// asks ([`shared`]); each test takes a database of its own in it
/// ([`Cluster::fresh_database`]).
static SHARED: OnceLock<Cluster> = OnceLock::new();

/// Databases made by [`Cluster::fresh_database`] so far.
static DATABASES: AtomicU64 = AtomicU64::new(0);

/// The test binary's shared cluster, started on first use. A static is
/// never dropped, so a watchdog process stops the cluster and removes its
/// directory once this process has exited, however it ends.
pub fn shared() -> &'static Cluster {
    SHARED.get_or_init(|| {
        let cluster = Cluster::start();
        cluster.watch(std::process::id());
        cluster
    })
}

/// The test binary's cluster with a TLS listener ([`Cluster::start_tls`]),
/// started on first use and removed as [`shared`]'s is.
pub fn shared_tls() -> &'static Cluster {
    static SHARED_TLS: OnceLock<Cluster> = OnceLock::new();
    SHARED_TLS.get_or_init(|| {
        let cluster = Cluster::start_tls();
        cluster.watch(std::process::id());
        cluster
    })
}

/// A running cluster; stopped and removed on drop.
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    server: Child,
    as_postgres: bool,
    /// The TLS listener, for a cluster of [`Cluster::start_tls`].
    tls: Option<tls::Listener>,
}

/// The newest installed PostgreSQL's server binaries, if any.
pub fn server_bin() -> Option<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    // The effective user, as `id -u` reports it (no libc binding needed).
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program` from `bin`, as the `postgres` user when running as root.
fn command(bin: &Path, program: &str, as_postgres: bool) -> Command {
    let path = bin.join(program);
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

impl Cluster {
    /// Creates and starts a cluster with one superuser, `mamori`, trusted
    /// on its socket, without durability (fsync off: a test's data is
    /// thrown away). Panics (with what is missing) when PostgreSQL is not
    /// installed: `scripts/test.sh` installs it.
    pub fn start() -> Self {
        Self::start_with(false, false)
    }

    /// [`Self::start`], but every commit reaches the disk before it
    /// returns (fsync, synchronous commit, full-page writes: PostgreSQL's
    /// defaults), for measurements comparable with a durable SQLite.
    pub fn start_durable() -> Self {
        Self::start_with(true, false)
    }

    /// [`Self::start`], plus a TLS listener on 127.0.0.1 ([`Self::port`]):
    /// a certificate for [`CERT_HOST`] signed by a throwaway CA
    /// ([`Self::ca_pem`]); TCP connections without TLS are rejected.
    pub fn start_tls() -> Self {
        Self::start_with(false, true)
    }

    fn start_with(durable: bool, with_tls: bool) -> Self {
        let bin = server_bin().expect(
            "PostgreSQL's server is not installed (/usr/lib/postgresql/*/bin): \
             run scripts/test.sh, which installs Debian's postgresql package",
        );
        let root = is_root();
        let dir = tempfile::Builder::new()
            .prefix("mamori-pg-")
            .tempdir()
            .expect("a temporary directory");
        let data = dir.path().join("data");
        if root {
            // The postgres user must own the cluster and reach its socket.
            let owned = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(owned.success(), "chown of the cluster's directory");
        }
        let init = command(&bin, "initdb", root)
            .args([
                "-A",
                "trust",
                "-U",
                "mamori",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-locale",
                "-D",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .output()
            .expect("initdb");
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let listener = with_tls.then(|| tls::Listener::prepare(&data, root));
        let server = command(&bin, "postgres", root)
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args(["-c", "listen_addresses="])
            .args(if durable {
                ["-c", "fsync=on", "-c", "synchronous_commit=on"]
            } else {
                ["-c", "fsync=off", "-c", "synchronous_commit=off"]
            })
            .args(if durable {
                ["-c", "full_page_writes=on"]
            } else {
                ["-c", "full_page_writes=off"]
            })
            .args(listener.iter().flat_map(tls::Listener::settings))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres");
        let cluster = Self {
            dir,
            bin,
            server,
            as_postgres: root,
            tls: listener,
        };
        cluster.wait_ready(Duration::from_secs(30));
        cluster
    }

    fn wait_ready(&self, limit: Duration) {
        let start = Instant::now();
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .arg("-h")
                .arg(self.socket_dir())
                .args(["-p", &self.port().to_string()])
                .args(["-U", "mamori", "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "PostgreSQL did not accept connections within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A new, empty database; its connection URL. Databases are cheap
    /// (a copy of `template0`), so every test can have its own.
    pub fn fresh_database(&self) -> String {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        self.url(&name)
    }

    /// Starts a watchdog: once process `pid` is gone, it stops the cluster
    /// (immediately, it is a throwaway) and removes its directory.
    fn watch(&self, pid: u32) {
        let data = self.dir.path().join("data");
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = if self.as_postgres {
            "runuser -u postgres -- \"$1\" stop -m immediate -s -D \"$2\""
        } else {
            "\"$1\" stop -m immediate -s -D \"$2\""
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             {stop} >/dev/null 2>&1; rm -rf \"$3\""
        );
        let spawned = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("watchdog")
            .arg(pg_ctl)
            .arg(data)
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        assert!(spawned.is_ok(), "the cluster's watchdog could not start");
    }

    /// The server's (postmaster's) process id, from its `postmaster.pid`
    /// (run as root, the child this crate started is `runuser`): its
    /// children are the connections' backends and the background workers.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join("data").join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// The directory holding the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A connection URL for `database` (`postgres` always exists) as the
    /// superuser `mamori`, over the Unix socket.
    pub fn url(&self, database: &str) -> String {
        let port = match &self.tls {
            Some(l) => format!("&port={}", l.port),
            None => String::new(),
        };
        format!(
            "postgres://mamori@/{database}?host={}{port}",
            self.socket_dir().display()
        )
    }

    /// The server's port: its TLS listener's on 127.0.0.1, and its Unix
    /// socket's (PostgreSQL's default, 5432, for a cluster without TCP).
    pub fn port(&self) -> u16 {
        self.tls.as_ref().map_or(5432, |l| l.port)
    }

    /// The PEM certificate of the CA that signed a [`Self::start_tls`]
    /// cluster's certificate.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|l| l.ca_pem.as_str())
    }

    /// A URL for `database` as `mamori` over TCP to 127.0.0.1 at
    /// [`Self::port`], naming the server `host` (the name TLS checks:
    /// [`CERT_HOST`] is the one its certificate holds), with `query`
    /// (`sslmode=…&…`, or empty) added.
    pub fn tcp_url(&self, database: &str, host: &str, query: &str) -> String {
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("&{query}")
        };
        format!(
            "postgres://mamori@{host}:{}/{database}?hostaddr=127.0.0.1{query}",
            self.port()
        )
    }

    /// The name of the database a URL of [`Self::url`] names.
    pub fn database_of(url: &str) -> &str {
        url.split(['/', '?']).nth(3).unwrap_or_default()
    }

    /// Everything `database` holds, as `pg_dump` writes it (plain SQL):
    /// what an attacker with a copy of the database would read.
    pub fn dump(&self, database: &str) -> Vec<u8> {
        let out = Command::new(self.bin.join("pg_dump"))
            .arg("-h")
            .arg(self.socket_dir())
            .args(["-p", &self.port().to_string()])
            .args(["-U", "mamori", "-d", database])
            .output()
            .expect("pg_dump");
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Runs `sql` with `psql` in `database`; its output (unaligned, tuples
    /// only), or the error it printed.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .arg("-h")
            .arg(self.socket_dir())
            .args(["-p", &self.port().to_string()])
            .args([
                "-U",
                "mamori",
                "-d",
                database,
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A fast shutdown (sessions ended, no checkpoint wait), by the
        // cluster's owner; then the server process is reaped.
        let stopped = command(&self.bin, "pg_ctl", self.as_postgres)
            .args(["stop", "-m", "fast", "-s", "-D"])
            .arg(self.dir.path().join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = self.server.kill();
        }
        let _ = self.server.wait();
    }
}
