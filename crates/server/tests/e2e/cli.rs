//! The `mamori` binary as an operator runs it: `serve` with its documented
//! flags and environment, `token create` printing the token last; SIGTERM,
//! the data directory's lock and file modes, administration commands
//! pointed at a directory without an installation.

use crate::common::{client_trusting, free_port};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mamori");

/// Runs `mamori ARGS --data-dir DIR` and waits for it.
fn mamori_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap()
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `mamori serve` and waits (bounded) for its banner.
fn serve(dir: &std::path::Path, device: u16, admin: u16) -> (Server, Vec<String>) {
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("--data-dir")
        .arg(dir)
        .arg("--device-addr")
        .arg(format!("127.0.0.1:{device}"))
        .env("MAMORI_ADMIN_ADDR", format!("127.0.0.1:{admin}"))
        .env("MAMORI_PUBLIC_URL", format!("https://127.0.0.1:{device}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.starts_with("Ready: ");
        lines.push(line);
        if done || Instant::now() > deadline {
            break;
        }
    }
    (server, lines)
}

/// Sends SIGTERM to the server and waits (bounded) for it to exit.
fn terminate(server: &mut Server) -> std::process::ExitStatus {
    let sent = Command::new("kill")
        .arg("-TERM")
        .arg(server.0.id().to_string())
        .status()
        .unwrap();
    assert!(sent.success());
    wait_exit(&mut server.0, Duration::from_secs(40)).expect("still running after SIGTERM")
}

/// The child's exit status, or None if it still runs after `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A new installation in `tmp/d`, made the only way there is: `mamori
/// serve` started once (and stopped).
fn installation(tmp: &std::path::Path) -> std::path::PathBuf {
    let dir = tmp.join("d");
    let (mut server, _) = serve(&dir, free_port(), free_port());
    assert!(terminate(&mut server).success());
    dir
}

#[test]
fn serve_help_documents_the_operator_flags_and_variables() {
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--data-dir",
        "--device-addr",
        "--admin-addr",
        "--public-url",
        "MAMORI_DATA_DIR",
        "MAMORI_DEVICE_ADDR",
        "MAMORI_ADMIN_ADDR",
        "MAMORI_PUBLIC_URL",
        "--config",
    ] {
        assert!(help.contains(needle), "serve --help lacks {needle}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_from_nothing_and_token_create_prints_a_working_token() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fresh");
    let (device, admin) = (free_port(), free_port());
    let (_server, banner) = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || serve(&dir, device, admin)
    })
    .await
    .unwrap();
    let text = banner.join("\n");
    assert!(text.contains(&format!("127.0.0.1:{device}")), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{admin}")), "{text}");
    assert!(text.contains("fingerprint"), "{text}");
    assert!(text.contains("Create the first owner"), "{text}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in [
            "device-ca.key",
            "scep-ra.key",
            "tls-ca.key",
            "tls.key",
            "master.key",
        ] {
            let mode = std::fs::metadata(dir.join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
    }
    assert!(dir.join("mamori.db").exists());

    // Run by the host user "ops-kenji" (as `sudo` would not be involved).
    let as_operator = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .env("USER", "ops-kenji")
            .env_remove("SUDO_USER")
            .output()
            .unwrap()
    };
    let out = as_operator(&["admin", "create", "--name", "alice", "--role", "owner"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let otp = stdout.lines().last().unwrap().trim().to_owned();
    assert_eq!(otp.len(), 29, "{stdout}");
    let out = Command::new(BIN)
        .args(["admin", "list", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(
        listing.contains("alice\towner\tnone\t-\t-\t0\tactive"),
        "{listing}"
    );

    // Finding 15: no token for an account nobody has logged in to yet.
    let token_create = || {
        as_operator(&[
            "token",
            "create",
            "--admin",
            "alice",
            "--name",
            "automation",
        ])
    };
    let out = token_create();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("alice has not finished setting up"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("mamori_"));

    // Alice's first login: new password and a passkey (owners need one).
    let ca = std::fs::read(dir.join("tls-ca.pem")).unwrap();
    let http = client_trusting(&ca);
    first_login_with_passkey(&http, admin, "alice", &otp).await;

    let out = token_create();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("mamori_"), "{stdout}");
    let url = format!("https://127.0.0.1:{admin}/api/v1/devices");
    let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // The audit log names the host user who ran each command, and the uid
    // the process ran as.
    let audit = http
        .get(format!("https://127.0.0.1:{admin}/api/v1/audit?limit=1000"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let records = audit["records"].as_array().unwrap();
    let actor_of = |action: &str, outcome: &str| {
        let r = records
            .iter()
            .find(|r| r["action"] == action && r["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {action} {outcome} record: {audit}"));
        r["actor"].as_str().unwrap().to_owned()
    };
    for (action, outcome) in [
        ("admin.create", "success"),
        ("token.create", "denied"),
        ("token.create", "success"),
    ] {
        let actor = actor_of(action, outcome);
        let uid = actor
            .strip_prefix("cli:ops-kenji(uid=")
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{action}: actor {actor}"));
        assert!(uid.parse::<u32>().is_ok(), "{actor}");
    }

    // Offboarding from the command line (alice is the last owner: the host
    // may still close it): the token dies on the next request.
    let out = as_operator(&["admin", "disable", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 token(s) revoked"));
    let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn a_key_file_others_can_read_stops_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let (device, admin) = (free_port(), free_port());
    drop(serve(&dir, device, admin));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = dir.join("device-ca.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = Command::new(BIN)
            .arg("serve")
            .arg("--data-dir")
            .arg(&dir)
            .arg("--device-addr")
            .arg(format!("127.0.0.1:{}", free_port()))
            .arg("--admin-addr")
            .arg(format!("127.0.0.1:{}", free_port()))
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("readable by other users"), "{err}");
    }
}

#[test]
fn people_are_imported_and_listed_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = installation(tmp.path());
    let csv = tmp.path().join("people.csv");
    std::fs::write(
        &csv,
        "name,user_id,email,phone\nAiko Tanaka,atanaka,aiko@example.jp,+81 3 1111 2222\nKen Mori,kmori,ken@example.jp,\n",
    )
    .unwrap();
    let run = |args: &[&str]| mamori_in(&dir, args);
    let out = run(&["people", "import", "--file", csv.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 2 people"));
    // A file with a bad line: refused whole, the line named, nothing added.
    std::fs::write(
        &csv,
        "name,user_id,email\nYui Abe,yabe,yui@example.jp\nNo Mail,nomail,\n",
    )
    .unwrap();
    let out = run(&["people", "import", "--file", csv.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("people.csv:3: email is required"), "{err}");
    let out = run(&["people", "list"]);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        listing.lines().count(),
        3,
        "header and two people: {listing}"
    );
    assert!(!listing.contains("Tanaka") && !listing.contains("example.jp"));
}

/// What the command line does is on record like what the API does: an
/// enrollment profile made on the host names who made it.
#[test]
fn a_profile_made_on_the_command_line_is_on_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = installation(tmp.path());
    let out_file = tmp.path().join("enroll.mobileconfig");
    let out = mamori_in(
        &dir,
        &[
            "profile",
            "create",
            "--public-url",
            "https://mdm.example.com:8443",
            "--out",
            out_file.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::metadata(&out_file).unwrap().len() > 0);
    let db = rusqlite::Connection::open(dir.join("mamori.db")).unwrap();
    let (actor, outcome): (String, String) = db
        .query_row(
            "SELECT actor, outcome FROM audit_log WHERE action = 'enrollment.profile_create'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(actor.starts_with("cli:"), "{actor}");
    assert_eq!(outcome, "success");
}

#[test]
fn backups_are_created_and_verified_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = installation(tmp.path());
    let csv = tmp.path().join("people.csv");
    std::fs::write(
        &csv,
        "name,user_id,email\nAiko Tanaka,atanaka,aiko@example.jp\n",
    )
    .unwrap();
    let run = |args: &[&str]| mamori_in(&dir, args);
    assert!(run(&["people", "import", "--file", csv.to_str().unwrap()])
        .status
        .success());
    let file = tmp.path().join("b.mbk");
    let out = run(&["backup", "create", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no data keys"));
    let out = run(&["backup", "restore", file.to_str().unwrap(), "--verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("integrity ok"), "{text}");
    assert!(
        text.contains("people 1: readable with today's keys 1"),
        "{text}"
    );
    // Without --verify nothing is restored.
    assert!(!run(&["backup", "restore", file.to_str().unwrap()])
        .status
        .success());
}

#[test]
fn administration_commands_read_the_same_environment_as_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = installation(tmp.path());
    let csv = tmp.path().join("people.csv");
    std::fs::write(
        &csv,
        "name,user_id,email,status\nGone Person,gone,gone@example.jp,departed\nStays,stays,stays@example.jp,active\n",
    )
    .unwrap();
    let run = |args: &[&str], env: Option<&str>| {
        let mut c = Command::new(BIN);
        c.args(args).arg("--data-dir").arg(&dir);
        if let Some(days) = env {
            c.env("MAMORI_PEOPLE_RETENTION_DAYS", days);
        }
        c.output().unwrap()
    };
    assert!(
        run(&["people", "import", "--file", csv.to_str().unwrap()], None)
            .status
            .success()
    );
    let out = run(&["people", "purge", "--due"], None);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("purged 0 people"),
        "30 days by default"
    );
    let out = run(&["people", "purge", "--due"], Some("0"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("purged 1 people"));
    let out = run(&["people", "purge", "--due"], Some("not-a-number"));
    assert!(!out.status.success());
}

#[test]
fn the_people_key_is_rotated_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = installation(tmp.path());
    let csv = tmp.path().join("people.csv");
    std::fs::write(
        &csv,
        "name,user_id,email\nAiko Tanaka,atanaka,aiko@example.jp\n",
    )
    .unwrap();
    let run = |args: &[&str]| mamori_in(&dir, args);
    assert!(run(&["people", "import", "--file", csv.to_str().unwrap()])
        .status
        .success());
    let before = std::fs::read_to_string(dir.join("people.key")).unwrap();
    let out = run(&["keys", "rotate", "--settle-secs", "0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 data keys re-wrapped"), "{text}");
    let after = std::fs::read_to_string(dir.join("people.key")).unwrap();
    assert_ne!(before, after);
    // The directory still reads: a backup verifies every person readable.
    let file = tmp.path().join("b.mbk");
    assert!(run(&["backup", "create", file.to_str().unwrap()])
        .status
        .success());
    let out = run(&["backup", "restore", file.to_str().unwrap(), "--verify"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("readable with today's keys 1"));
}

#[test]
fn audit_verify_from_the_command_line_names_a_tampered_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = installation(tmp.path());
    let csv = tmp.path().join("people.csv");
    std::fs::write(
        &csv,
        "name,user_id,email\nAiko Tanaka,atanaka,aiko@example.jp\n",
    )
    .unwrap();
    let run = |args: &[&str]| mamori_in(&dir, args);
    assert!(run(&["people", "import", "--file", csv.to_str().unwrap()])
        .status
        .success());
    let out = run(&["audit", "checkpoint"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("checkpoint signed at record"));
    let out = run(&["audit", "verify"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("audit log intact"));
    let c = rusqlite::Connection::open(dir.join("mamori.db")).unwrap();
    c.execute_batch(
        "DROP TRIGGER audit_log_no_update;
         UPDATE audit_log SET detail = 'people=0' WHERE action = 'people.import';",
    )
    .unwrap();
    drop(c);
    let out = run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("AUDIT LOG TAMPERED: record 1 was altered"),
        "{text}"
    );
}

/// SIGTERM (what a service manager sends) stops the server like Ctrl-C: no
/// new connections, the request in flight is answered, the WAL is
/// checkpointed into the database, exit status 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_requests_checkpoints_and_exits_zero() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let (device, admin) = (free_port(), free_port());
    let (mut server, _) = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || serve(&dir, device, admin)
    })
    .await
    .unwrap();
    let pem = std::fs::read(dir.join("tls-ca.pem")).unwrap();
    let cfg = crate::common::tls_config_trusting(&pem);
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg));
    let addr = format!("127.0.0.1:{device}");
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    // A request in flight: headers and half of its body.
    tls.write_all(
        b"PUT /mdm/connect HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Content-Type: application/x-apple-aspen-mdm\r\nContent-Length: 10\r\n\r\n01234",
    )
    .await
    .unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = Command::new("kill")
        .arg("-TERM")
        .arg(server.0.id().to_string())
        .status()
        .unwrap();
    assert!(sent.success());
    // No new connections.
    let mut refused = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "still accepting after SIGTERM");
    // The request in flight is still answered.
    tls.write_all(b"56789").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 "), "no answer: {answer:?}");
    let status = tokio::task::spawn_blocking(move || {
        let st = wait_exit(&mut server.0, Duration::from_secs(40));
        drop(server);
        st
    })
    .await
    .unwrap()
    .expect("still running after SIGTERM");
    assert!(status.success(), "{status}");
    // Checkpointed: the WAL is gone (or empty) after the last close.
    let wal = dir.join("mamori.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "WAL left behind"
    );
}

/// A second `mamori serve` on a data directory in use exits non-zero and
/// says why, while the first keeps running.
#[test]
fn a_second_server_on_the_same_data_directory_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let (mut first, _) = serve(&dir, free_port(), free_port());
    let mut second = Command::new(BIN)
        .arg("serve")
        .arg("--data-dir")
        .arg(&dir)
        .arg("--device-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--admin-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut second, Duration::from_secs(60));
    if status.is_none() {
        let _ = second.kill();
        let _ = second.wait();
    }
    let status = status.expect("a second server started on the same data directory");
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("already running"), "{err}");
    assert!(
        first.0.try_wait().unwrap().is_none(),
        "the first one stopped"
    );
    assert!(terminate(&mut first).success());
}

/// The database, its WAL and shared-memory files and the lock are the
/// owner's only, like the keys.
#[cfg(unix)]
#[test]
fn the_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let (mut server, _) = serve(&dir, free_port(), free_port());
    // Written to while the server runs.
    let out = mamori_in(
        &dir,
        &["admin", "create", "--name", "alice", "--role", "owner"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in ["mamori.db", "mamori.db-wal", "mamori.db-shm", "mamori.lock"] {
        let mode = std::fs::metadata(dir.join(f))
            .unwrap_or_else(|e| panic!("{f}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}: {:o}", mode & 0o777);
    }
    assert!(terminate(&mut server).success());
}

/// A suspension is seen and lifted on the host: `admin list` says
/// "suspended" and why (not "active"), `admin reinstate` lifts it and is
/// recorded; and once an owner exists, `serve` no longer tells the
/// operator to create the first one.
#[test]
fn a_suspension_is_listed_and_lifted_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = installation(tmp.path());
    let out = mamori_in(
        &dir,
        &["admin", "create", "--name", "alice", "--role", "owner"],
    );
    assert!(out.status.success());
    // What detection stores when it suspends an account.
    rusqlite::Connection::open(dir.join("mamori.db"))
        .unwrap()
        .execute(
            "UPDATE admins SET suspended_at = 1800000000,
                 suspended_reason = 'read 301 people within 1 h (limit 300)'
             WHERE name = 'alice'",
            [],
        )
        .unwrap();
    let listing = |dir: &std::path::Path| {
        String::from_utf8(mamori_in(dir, &["admin", "list"]).stdout).unwrap()
    };
    let before = listing(&dir);
    assert!(
        before.contains(
            "\tsuspended since 2027-01-15T08:00:00Z (read 301 people within 1 h (limit 300))"
        ),
        "{before}"
    );
    assert!(!before.contains("active"), "{before}");
    let out = mamori_in(&dir, &["admin", "reinstate", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(listing(&dir).contains("\tactive"));
    let out = mamori_in(&dir, &["admin", "reinstate", "alice"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not suspended"));
    let recorded: i64 = rusqlite::Connection::open(dir.join("mamori.db"))
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM audit_log
             WHERE action = 'admin.reinstate' AND target = 'alice' AND actor LIKE 'cli:%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(recorded, 1);
    let (mut server, banner) = serve(&dir, free_port(), free_port());
    let text = banner.join("\n");
    assert!(text.contains("Ready: the console is at"), "{text}");
    assert!(!text.contains("Create the first owner"), "{text}");
    assert!(terminate(&mut server).success());
}

/// Only `serve` creates an installation: administration commands given a
/// directory without one fail and say so, and create nothing.
#[test]
fn administration_commands_need_an_existing_installation() {
    let tmp = tempfile::tempdir().unwrap();
    let typo = tmp.path().join("mamori-dta");
    for args in [
        &["admin", "list"][..],
        &["admin", "create", "--name", "alice", "--role", "owner"],
        &["token", "list"],
        &["people", "list"],
    ] {
        let out = mamori_in(&typo, args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no Mamori installation at"), "{args:?}: {err}");
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }
    // An existing but empty directory is no installation either.
    std::fs::create_dir(&typo).unwrap();
    let out = mamori_in(&typo, &["admin", "list"]);
    assert!(!out.status.success());
    assert!(!typo.join("mamori.db").exists());
}

/// The first login of `name` over the admin API at `127.0.0.1:admin`, as in
/// a browser: the one-time password, a new password, a software passkey.
async fn first_login_with_passkey(http: &reqwest::Client, admin: u16, name: &str, otp: &str) {
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    let mut b = crate::admins::Browser {
        http: http.clone(),
        base: format!("https://127.0.0.1:{admin}"),
        cookie: None,
        csrf: None,
        ua: "mamori-e2e/1".into(),
        send_csrf: true,
    };
    let (st, body) = b
        .post(
            "/api/v1/auth/login",
            serde_json::json!({"name": name, "password": otp}),
        )
        .await;
    assert_eq!(
        (st, &body["stage"]),
        (200, &serde_json::json!("setup")),
        "{body}"
    );
    let (st, body) = b
        .post(
            "/api/v1/auth/password",
            serde_json::json!({"current": otp, "new": crate::admins::PASSWORD}),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let (st, options) = b
        .post(
            "/api/v1/auth/webauthn/register/start",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(st, 200, "{options}");
    let origin = webauthn_rs::prelude::Url::parse(&format!("https://localhost:{admin}")).unwrap();
    let credential = webauthn_authenticator_rs::softpasskey::SoftPasskey::new(true)
        .do_registration(origin, serde_json::from_value(options).unwrap())
        .unwrap();
    let (st, body) = b
        .post(
            "/api/v1/auth/webauthn/register/finish",
            serde_json::json!({"name": "alice's passkey", "credential": credential}),
        )
        .await;
    assert_eq!(
        (st, &body["stage"]),
        (200, &serde_json::json!("full")),
        "{body}"
    );
}
