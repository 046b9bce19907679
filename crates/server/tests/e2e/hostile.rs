//! Bodies built to crash the server (nesting that overflows a recursive
//! decoder's stack, binary plists whose shared references expand to
//! billions of values) sent to the device listener: by a client with no
//! certificate, and by an enrolled device signing them with its own
//! identity. Each gets a 4xx; the server stays up and keeps serving.

use crate::common::{client_trusting, free_port, spawn_app, tls_config_trusting};
use mamori_protocol::hostile::{deep_binary, deep_xml, in_message, laughs, overlapping_lists};
use mamori_sim::{DeviceKind, Identity, SimDevice, SimOptions};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mamori");

/// Every payload class with its name. `udid` goes into the message-shaped
/// one, so that a server reading the message type first would meet it.
fn payloads(udid: &str) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("40,000 nested XML arrays", deep_xml(40_000)),
        ("30,000 nested XML arrays", deep_xml(30_000)),
        (
            "42,000 nested binary arrays ending in an error",
            deep_binary(42_000, true),
        ),
        ("binary plist expanding to 10^10 values", laughs(5, 100)),
        ("binary plist expanding to 1.6x10^9 values", laughs(3, 1170)),
        (
            "check-in naming the device, 10^8 values inside",
            in_message(udid, 4, 100),
        ),
        // 65 nested arrays whose 8-byte-per-entry reference lists overlap:
        // a reader that allocates each list on opening needs 65 x 8 x the
        // body (1 GB for 2 MB).
        (
            "overlapping reference lists, 250 KB",
            overlapping_lists(65, 250_000),
        ),
        (
            "overlapping reference lists, 2 MB",
            overlapping_lists(65, 2_000_000),
        ),
    ]
}

/// Sends every payload to check-in and connect: anonymously (401, the
/// body is never decoded) and signed by `dev` (400, or 413 above the
/// check-in size limit).
async fn send_all(dev: &mut SimDevice) {
    let udid = dev.udid().to_owned();
    for (name, body) in payloads(&udid) {
        let r = dev
            .connect_raw_bytes(body.clone(), Some(Identity::Anonymous))
            .await
            .unwrap();
        assert_eq!(r.status, 401, "anonymous connect: {name}");
        let r = dev
            .checkin_raw(body.clone(), Some(Identity::Anonymous))
            .await
            .unwrap();
        assert!(
            matches!(r.status, 401 | 413),
            "anonymous check-in: {name}: {}",
            r.status
        );
        let r = dev.connect_raw_bytes(body.clone(), None).await.unwrap();
        assert_eq!(r.status, 400, "signed connect: {name}");
        let r = dev.checkin_raw(body, None).await.unwrap();
        assert!(
            matches!(r.status, 400 | 413),
            "signed check-in: {name}: {}",
            r.status
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_payloads_get_a_4xx_and_the_device_listener_stays_up() {
    let app = spawn_app().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    send_all(&mut dev).await;
    // Nothing changed and the device is still served.
    assert!(dev.connect_idle().await.unwrap().is_none());
    let (_, d) = app.get(&format!("/api/v1/devices/{}", dev.udid())).await;
    assert_eq!(d["status"], "enrolled");
}

/// `mamori serve` started by `sh` with its data segment (heap and anonymous
/// mappings) limited to 256 MiB; killed when dropped.
struct Limited(Child);

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve_limited(dir: &std::path::Path, device: u16, admin: u16) -> Limited {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -d 262144 && exec \"$0\" serve \"$@\"")
        .arg(BIN)
        .arg("--data-dir")
        .arg(dir)
        .arg("--device-addr")
        .arg(format!("127.0.0.1:{device}"))
        .arg("--admin-addr")
        .arg(format!("127.0.0.1:{admin}"))
        .arg("--public-url")
        .arg(format!("https://127.0.0.1:{device}"))
        .env("RUST_LOG", "warn")
        .env("MALLOC_ARENA_MAX", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Limited(child);
    let deadline = Instant::now() + Duration::from_secs(90);
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().starts_with("Ready: ") || Instant::now() > deadline {
            break;
        }
    }
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_256_mib_memory_limit_the_server_survives_every_payload() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let (device, admin) = (free_port(), free_port());
    let mut server = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || serve_limited(&dir, device, admin)
    })
    .await
    .unwrap();
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "server did not start"
    );

    // An enrollment profile from the host's CLI, and a device enrolled with it.
    let profile_path = tmp.path().join("enroll.mobileconfig");
    let out = Command::new(BIN)
        .args(["profile", "create", "--data-dir"])
        .arg(&dir)
        .arg("--public-url")
        .arg(format!("https://127.0.0.1:{device}"))
        .arg("--out")
        .arg(&profile_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tls_ca = std::fs::read(dir.join("tls-ca.pem")).unwrap();
    let mut dev = SimDevice::new(DeviceKind::IPhone, SimOptions::default());
    dev.enroll(&std::fs::read(&profile_path).unwrap(), Some(&tls_ca))
        .await
        .unwrap();

    send_all(&mut dev).await;
    // Item 3's class: another address holds more connections than its
    // share, idle and with bodies that never finish, while the device is
    // served.
    let held = hold_connections(device, &tls_ca).await;
    assert!(held.0.len() + held.1.len() > 256, "the flood was sent");
    assert!(
        dev.connect_idle().await.unwrap().is_none(),
        "served while the connections are held"
    );

    assert!(
        server.0.try_wait().unwrap().is_none(),
        "the server died under the memory limit"
    );
    drop(held);
    assert!(dev.connect_idle().await.unwrap().is_none());
    let health = client_trusting(&tls_ca)
        .get(format!("https://127.0.0.1:{admin}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

/// Connections held open by [`hold_connections`] until dropped.
type Held = (
    Vec<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    Vec<tokio::net::TcpStream>,
);

/// From 127.0.0.2: 300 bare TCP connections (more than the 256 one address
/// may hold) and 20 TLS connections each sending a check-in that announces
/// 8 MB and stops after a few bytes.
async fn hold_connections(port: u16, tls_ca: &[u8]) -> Held {
    hold_connections_to(port, tls_ca, "/mdm/checkin", 8_000_000, 300, None).await
}

/// From 127.0.0.2: TLS requests to `path` announcing `length` bytes and
/// sending five (20 of them, or 3 when `idle_count` is 0), with
/// `signature` as their `Mdm-Signature` header if given, then
/// `idle_count` bare TCP connections.
async fn hold_connections_to(
    port: u16,
    tls_ca: &[u8],
    path: &str,
    length: usize,
    idle_count: usize,
    signature: Option<&str>,
) -> Held {
    use std::sync::Arc;
    use tokio::io::AsyncWriteExt;
    let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let connect = || async move {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        s.connect(to).await
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config_trusting(tls_ca)));
    let slow_count = if idle_count == 0 { 3 } else { 20 };
    let mut slow = Vec::new();
    for _ in 0..slow_count {
        let Ok(tcp) = connect().await else { continue };
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let Ok(mut tls) = connector.connect(name, tcp).await else {
            continue;
        };
        let signed = signature.map_or(String::new(), |s| format!("Mdm-Signature: {s}\r\n"));
        let head = format!(
            "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/x-apple-aspen-mdm\r\n{signed}\
             Content-Length: {length}\r\n\r\n<?xml"
        );
        if tls.write_all(head.as_bytes()).await.is_ok() {
            slow.push(tls);
        }
    }
    let mut idle = Vec::new();
    for _ in 0..idle_count {
        if let Ok(c) = connect().await {
            idle.push(c);
        }
    }
    (slow, idle)
}

/// Bodies are held in memory until their sender is proven: one address
/// with a device identity, announcing three 8 MiB connect bodies, gets the
/// third refused at once (a quarter of the 64 MiB budget each), and
/// devices are still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_the_body_budget() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let attacker = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    // Its signature names its identity; it covers other bytes than the
    // body, which the server learns only once the body has arrived.
    let signature = attacker
        .mdm_signature(b"<?xml", mamori_sim::DigestAlg::Sha256)
        .unwrap();
    let port = app.running.device_addr.port();
    let (mut slow, _) = hold_connections_to(
        port,
        &app.tls_ca_pem,
        "/mdm/connect",
        8 << 20,
        0,
        Some(&signature),
    )
    .await;
    assert_eq!(slow.len(), 3);
    // Which of the three is refused depends on which is checked last (the
    // identity checks run side by side): exactly one, at once.
    async fn answer(
        s: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    ) -> Option<String> {
        let mut answer = vec![0u8; 64];
        match tokio::time::timeout(Duration::from_secs(3), s.read(&mut answer)).await {
            Ok(Ok(n)) => Some(String::from_utf8_lossy(&answer[..n]).to_string()),
            _ => None,
        }
    }
    let [a, b, c] = &mut slow[..] else {
        panic!("three connections")
    };
    let (a, b, c) = tokio::join!(answer(a), answer(b), answer(c));
    let answers = [a, b, c];
    let refused: Vec<_> = answers.iter().flatten().collect();
    assert_eq!(refused.len(), 1, "{answers:?}");
    assert!(refused[0].starts_with("HTTP/1.1 503"), "{refused:?}");
    // The other two are still waiting for their bodies; devices are served.
    assert!(dev.connect_idle().await.unwrap().is_none());
    for s in &mut slow {
        let _ = s.write_all(b"<").await;
    }
}

/// The outside attack's finding: four connections announcing 8 MiB
/// connect bodies and sending ten bytes held the whole body budget, and
/// every device got 503 for as long as they trickled. Now a check-in or
/// connect that claims no device identity of ours is answered 401 before
/// its body is read, and a body longer than its route allows is answered
/// 413 at once; nothing is held and devices are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_without_a_device_identity_can_hold_a_body() {
    use tokio::io::AsyncReadExt;
    let app = spawn_app().await;
    let mut dev = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let port = app.running.device_addr.port();
    let (mut slow, _) =
        hold_connections_to(port, &app.tls_ca_pem, "/mdm/connect", 8 << 20, 0, None).await;
    assert_eq!(slow.len(), 3);
    for s in &mut slow {
        let mut answer = vec![0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut answer))
            .await
            .expect("answered at once")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]).to_string();
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    }
    // Over the route's cap, before any identity is needed (SCEP).
    let (mut big, _) = hold_connections_to(
        port,
        &app.tls_ca_pem,
        "/scep?operation=PKIOperation",
        1 << 20,
        0,
        None,
    )
    .await;
    let mut answer = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), big[0].read(&mut answer))
        .await
        .expect("answered at once")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    big.clear();
    assert!(dev.connect_idle().await.unwrap().is_none());
}

/// A device names itself with a right-to-left override, an ANSI escape
/// and a carriage return (the outside attack's finding: the console then
/// showed the serial number beside the name reversed). What it reports
/// reaches the API and the console with each such character replaced by
/// U+FFFD; its serial number reads as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_cannot_reorder_or_hide_what_the_console_shows() {
    use mamori_sim::DeviceInfo;
    let app = spawn_app().await;
    let profile = app.profile(serde_json::json!({})).await;
    let mut info = DeviceInfo::random(DeviceKind::IPhone);
    info.model_name = "iPhone\u{202e}\u{1b}[2J".into();
    info.device_name = "Desk\r\u{2066}phone".into();
    let mut phone = SimDevice::with_info(info, SimOptions::default());
    phone.enroll(&profile, Some(&app.tls_ca_pem)).await.unwrap();
    phone.run_queue().await.unwrap();
    let udid = phone.udid().to_owned();
    let serial = phone.serial_number().to_owned();
    let (st, device) = app.get(&format!("/api/v1/devices/{udid}")).await;
    assert_eq!(st, 200, "{device}");
    let text = device.to_string();
    for c in ['\u{202e}', '\u{1b}', '\r', '\u{2066}'] {
        assert!(!text.contains(c), "{c:?} in {text}");
    }
    assert!(text.contains("iPhone\u{fffd}\u{fffd}[2J"), "{text}");
    let page = app
        .http
        .get(app.admin_url(&format!("/console/devices/{udid}")))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains('\u{202e}') && !page.contains('\u{1b}'));
    assert!(page.contains(&serial));
}
