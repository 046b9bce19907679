//! The server under test: a `mamori serve` child process on two free
//! loopback ports, killed when [`Server`] is dropped, and an admin client.

use anyhow::{anyhow, bail, Context};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, Url};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;

/// The log filter the server runs with, so that logging does not dominate
/// the measured CPU time.
pub const SERVER_RUST_LOG: &str = "warn";

/// How long the server may take to start (it generates its keys first).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `mamori serve`; dropping it kills and reaps the process.
pub struct Server {
    child: Mutex<Child>,
    pid: u32,
    /// The server's data directory.
    pub data_dir: PathBuf,
    /// Where the server's stdout and stderr go.
    pub log_path: PathBuf,
    /// Device listener.
    pub device_addr: SocketAddr,
    /// Admin listener.
    pub admin_addr: SocketAddr,
    /// `DATA_DIR/tls-ca.pem`.
    pub tls_ca_pem: Vec<u8>,
    /// Admin client trusting the TLS CA.
    pub http: reqwest::Client,
    /// Owner API token.
    pub token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let child = match self.child.get_mut() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A loopback port that was free a moment ago (bound, read, released).
fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// An HTTPS client trusting only the PEM certificates in `ca_pem`.
pub fn client_trusting(ca_pem: &[u8]) -> anyhow::Result<reqwest::Client> {
    Ok(client_builder_trusting(ca_pem)?.build()?)
}

/// An HTTPS client trusting only the PEM certificates in `ca_pem` whose
/// connections come from `source` (any 127.0.0.0/8 address is loopback on
/// Linux, so the server sees a different peer address per client).
pub fn client_from(ca_pem: &[u8], source: IpAddr) -> anyhow::Result<reqwest::Client> {
    Ok(client_builder_trusting(ca_pem)?
        .local_address(source)
        .build()?)
}

fn client_builder_trusting(ca_pem: &[u8]) -> anyhow::Result<reqwest::ClientBuilder> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.context("bad certificate in tls-ca.pem")?)?;
    }
    if roots.is_empty() {
        bail!("no certificate in tls-ca.pem");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(cfg)
        .timeout(Duration::from_secs(600)))
}

/// The last `max` bytes of the server log, for error messages.
pub fn log_tail(path: &Path, max: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

impl Server {
    /// Starts `server_bin serve` with its data in `work_dir/data`, waits for
    /// the admin listener's `/healthz`, and creates an owner token with
    /// `server_bin token create`.
    pub async fn start(server_bin: &Path, work_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(server_bin, work_dir, &[]).await
    }

    /// [`Server::start`] with `extra_args` appended to `serve`'s arguments.
    pub async fn start_with(
        server_bin: &Path,
        work_dir: &Path,
        extra_args: &[&str],
    ) -> anyhow::Result<Self> {
        let mut server = Self::launch(
            server_bin,
            &work_dir.join("data"),
            &work_dir.join("server.log"),
            extra_args,
        )
        .await?;
        server.token = server.create_token(server_bin).await?;
        Ok(server)
    }

    /// Starts `server_bin serve` again on the data directory of an earlier
    /// [`Server::start`] in `work_dir` (logging to `work_dir/log_name`),
    /// with the owner token that start created.
    pub async fn restart(
        server_bin: &Path,
        work_dir: &Path,
        token: &str,
        log_name: &str,
    ) -> anyhow::Result<Self> {
        Self::restart_with(server_bin, work_dir, token, log_name, &[]).await
    }

    /// [`Server::restart`] with `extra_args` appended to `serve`'s arguments.
    pub async fn restart_with(
        server_bin: &Path,
        work_dir: &Path,
        token: &str,
        log_name: &str,
        extra_args: &[&str],
    ) -> anyhow::Result<Self> {
        let mut server = Self::launch(
            server_bin,
            &work_dir.join("data"),
            &work_dir.join(log_name),
            extra_args,
        )
        .await?;
        server.token = token.to_owned();
        Ok(server)
    }

    /// Starts another server on the same database as `first` (PostgreSQL),
    /// as an operator adds one: `first`'s data directory copied (its keys
    /// and certificates) but for its lock, into `work_dir/data-K`; logs to
    /// `work_dir/server-K.log`. It serves with `first`'s owner token.
    pub async fn start_sharing(
        server_bin: &Path,
        first: &Server,
        work_dir: &Path,
        k: usize,
        extra_args: &[&str],
    ) -> anyhow::Result<Self> {
        let data_dir = work_dir.join(format!("data-{k}"));
        mamori_testkit::datadir::copy_data_dir(&first.data_dir, &data_dir, "mamori.lock")
            .with_context(|| format!("cannot copy the data directory to {}", data_dir.display()))?;
        let log_path = work_dir.join(format!("server-{k}.log"));
        let mut server = Self::launch(server_bin, &data_dir, &log_path, extra_args).await?;
        server.token = first.token.clone();
        Ok(server)
    }

    /// Starts `server_bin serve` with its data in `data_dir` and waits for
    /// `/healthz` (no token yet).
    async fn launch(
        server_bin: &Path,
        data_dir: &Path,
        log_path: &Path,
        extra_args: &[&str],
    ) -> anyhow::Result<Self> {
        let (data_dir, log_path) = (data_dir.to_path_buf(), log_path.to_path_buf());
        let device_addr = free_port()?;
        let admin_addr = free_port()?;
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let child = Command::new(server_bin)
            .arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--device-addr")
            .arg(device_addr.to_string())
            .arg("--admin-addr")
            .arg(admin_addr.to_string())
            .arg("--public-url")
            .arg(format!("https://{device_addr}"))
            // Every simulated device comes from 127.0.0.1, and with
            // --keep-alive each holds its connection across phases.
            .args(["--max-connections-per-ip", "100000"])
            .args(["--max-connections", "100000"])
            .args(["--idle-timeout-secs", "3600"])
            .args(extra_args)
            .env("RUST_LOG", SERVER_RUST_LOG)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", server_bin.display()))?;
        let mut server = Self {
            pid: child.id(),
            child: Mutex::new(child),
            data_dir,
            log_path,
            device_addr,
            admin_addr,
            tls_ca_pem: Vec::new(),
            http: reqwest::Client::new(),
            token: String::new(),
        };
        server.wait_healthy().await?;
        Ok(server)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Fails if the server has exited.
    pub fn check_alive(&self) -> anyhow::Result<()> {
        let exited = self
            .child
            .lock()
            .map_err(|_| anyhow!("server child lock poisoned"))?
            .try_wait()?;
        if let Some(status) = exited {
            bail!(
                "the server exited ({status}); end of {}:\n{}",
                self.log_path.display(),
                log_tail(&self.log_path, 4000)
            );
        }
        Ok(())
    }

    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let ca_path = self.data_dir.join("tls-ca.pem");
        let url = format!("https://{}/healthz", self.admin_addr);
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last_error = String::from("tls-ca.pem not written yet");
        while Instant::now() < deadline {
            self.check_alive()?;
            if let Ok(pem) = std::fs::read(&ca_path) {
                match client_trusting(&pem) {
                    Ok(http) => match http.get(&url).send().await {
                        Ok(r) if r.status().is_success() => {
                            self.tls_ca_pem = pem;
                            self.http = http;
                            return Ok(());
                        }
                        Ok(r) => last_error = format!("/healthz answered {}", r.status()),
                        Err(e) => last_error = format!("/healthz: {e}"),
                    },
                    // The file may be half written.
                    Err(e) => last_error = format!("{}: {e:#}", ca_path.display()),
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "the server did not become healthy within {}s ({last_error}); end of {}:\n{}",
            START_TIMEOUT.as_secs(),
            self.log_path.display(),
            log_tail(&self.log_path, 4000)
        )
    }

    /// Creates an administrator account with `server_bin admin create` and
    /// returns its one-time password (the last line it prints).
    pub fn create_admin(
        &self,
        server_bin: &Path,
        name: &str,
        role: &str,
    ) -> anyhow::Result<String> {
        let out = Command::new(server_bin)
            .args([
                "admin",
                "create",
                "--name",
                name,
                "--role",
                role,
                "--data-dir",
            ])
            .arg(&self.data_dir)
            .env("RUST_LOG", SERVER_RUST_LOG)
            .stdin(Stdio::null())
            .output()
            .context("cannot run `admin create`")?;
        if !out.status.success() {
            bail!(
                "`admin create --name {name}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        last_line(out.stdout, "admin create")
    }

    /// The owner token, as an operator gets one: `admin create`, the first
    /// login over the API (one-time password, new password, a passkey, since
    /// owners must use WebAuthn), then `token create` on the host (which
    /// refuses an account that has not finished that setup).
    async fn create_token(&self, server_bin: &Path) -> anyhow::Result<String> {
        let otp = self.create_admin(server_bin, "bench", "owner")?;
        self.first_login("bench", &otp).await?;
        let out = Command::new(server_bin)
            .args([
                "token",
                "create",
                "--admin",
                "bench",
                "--name",
                "bench",
                "--data-dir",
            ])
            .arg(&self.data_dir)
            .env("RUST_LOG", SERVER_RUST_LOG)
            .stdin(Stdio::null())
            .output()
            .context("cannot run `token create`")?;
        if !out.status.success() {
            bail!(
                "`token create` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        last_line(out.stdout, "token create")
    }

    /// The first login of an account over the admin API, as its owner
    /// does it in a browser: the one-time password, a new password, a
    /// (software) passkey registered, then logout.
    async fn first_login(&self, name: &str, otp: &str) -> anyhow::Result<()> {
        let mut b = Browser {
            http: &self.http,
            base: self.admin_url(""),
            cookie: None,
            csrf: None,
        };
        let body = b
            .post(
                "/api/v1/auth/login",
                json!({"name": name, "password": otp}),
                200,
            )
            .await?;
        if body["stage"] != "setup" {
            bail!(
                "first login of {name}: stage {} instead of setup",
                body["stage"]
            );
        }
        b.post(
            "/api/v1/auth/password",
            json!({"current": otp, "new": BENCH_PASSWORD}),
            204,
        )
        .await?;
        let options = b
            .post("/api/v1/auth/webauthn/register/start", json!({}), 200)
            .await?;
        let options: CreationChallengeResponse =
            serde_json::from_value(options).context("WebAuthn registration options")?;
        let origin = Url::parse(&format!("https://localhost:{}", self.admin_addr.port()))?;
        let credential = SoftPasskey::new(true)
            .do_registration(origin, options)
            .map_err(|e| anyhow!("software passkey: {e:?}"))?;
        let body = b
            .post(
                "/api/v1/auth/webauthn/register/finish",
                json!({"name": "bench passkey", "credential": credential}),
                200,
            )
            .await?;
        if body["stage"] != "full" {
            bail!("setup of {name} did not finish: {body}");
        }
        b.post("/api/v1/auth/logout", json!({}), 204).await?;
        Ok(())
    }

    /// `https://ADMIN_ADDR{path}`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("https://{}{}", self.admin_addr, path)
    }

    /// An unsigned enrollment profile whose challenge allows `max_uses`
    /// enrollments.
    pub async fn enrollment_profile(&self, max_uses: usize) -> anyhow::Result<Vec<u8>> {
        let r = self
            .http
            .post(self.admin_url("/api/v1/enrollment-profiles"))
            .bearer_auth(&self.token)
            .json(&json!({ "signed": false, "max_uses": max_uses, "ttl_hours": 24 }))
            .send()
            .await
            .context("POST /api/v1/enrollment-profiles")?;
        let status = r.status();
        let body = r.bytes().await?.to_vec();
        if !status.is_success() {
            bail!(
                "POST /api/v1/enrollment-profiles: {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(body)
    }

    /// Queues `command` for every device in one API call without pushing;
    /// returns how many commands were queued.
    pub async fn enqueue(&self, udids: &[String], command: Value) -> anyhow::Result<usize> {
        let r = self
            .http
            .post(self.admin_url("/api/v1/commands?push=false"))
            .bearer_auth(&self.token)
            .json(&json!({ "devices": udids, "command": command }))
            .send()
            .await
            .context("POST /api/v1/commands")?;
        let status = r.status();
        let body: Value = r.json().await.context("POST /api/v1/commands: body")?;
        if !status.is_success() {
            bail!("POST /api/v1/commands: {status}: {body}");
        }
        body["commands"]
            .as_array()
            .map(Vec::len)
            .ok_or_else(|| anyhow!("POST /api/v1/commands: no `commands` array in {body}"))
    }
}

/// The password the benchmark's owner sets at its first login.
const BENCH_PASSWORD: &str = "bench-violet-anchor-tundra-93";

/// The last non-empty line a command printed.
fn last_line(stdout: Vec<u8>, what: &str) -> anyhow::Result<String> {
    let stdout =
        String::from_utf8(stdout).with_context(|| format!("`{what}` printed non-UTF-8"))?;
    stdout
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("`{what}` printed nothing"))
}

/// A browser's session on the admin API: the session cookie and the CSRF
/// token (the session is bound to the client's address and User-Agent).
struct Browser<'a> {
    http: &'a reqwest::Client,
    base: String,
    cookie: Option<String>,
    csrf: Option<String>,
}

impl Browser<'_> {
    /// POSTs JSON, expects `status`, keeps cookie and CSRF token; the
    /// answer's JSON body (Null when there is none).
    async fn post(&mut self, path: &str, body: Value, status: u16) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("user-agent", "mamori-bench")
            .json(&body);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if let Some(t) = &self.csrf {
            req = req.header("x-csrf-token", t);
        }
        let r = req.send().await.with_context(|| format!("POST {path}"))?;
        let got = r.status().as_u16();
        if let Some(set) = r.headers().get("set-cookie") {
            let pair = set
                .to_str()
                .context("set-cookie is not text")?
                .split(';')
                .next()
                .unwrap_or_default()
                .to_owned();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        let text = r.text().await.with_context(|| format!("POST {path}"))?;
        if got != status {
            bail!("POST {path}: {got} (expected {status}): {text}");
        }
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let Some(t) = body["csrf_token"].as_str() {
            self.csrf = Some(t.to_owned());
        }
        Ok(body)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_loopback() {
        let a = free_port().unwrap();
        assert!(a.ip().is_loopback());
        assert_ne!(a.port(), 0);
    }

    #[test]
    fn log_tail_respects_char_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, "ab守り").unwrap();
        assert_eq!(log_tail(&p, 3), "り");
        assert_eq!(log_tail(&p, 100), "ab守り");
        assert_eq!(log_tail(&dir.path().join("missing"), 10), "");
    }

    #[test]
    fn client_needs_a_certificate() {
        assert!(client_trusting(b"").is_err());
    }
}
