//! A load balancer passing TCP through to several servers writes a PROXY
//! protocol v2 header at the start of each connection. Connections from
//! the balancers an operator lists must carry one and count as the client
//! it names — for the admin allow-list, the caps per source and the audit
//! record — while a header from anyone else is never believed (it would
//! let any client claim any address).

use crate::common::{client_from, spawn_with, tls_config_trusting, TestApp};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const BALANCER: &str = "127.0.0.1";
const OTHER: &str = "127.0.0.2";

/// A PROXY v2 header: `PROXY` for `client` over TCP/IPv4, or `LOCAL`.
fn header(client: Option<SocketAddr>, to: SocketAddr) -> Vec<u8> {
    let mut h = b"\r\n\r\n\x00\r\nQUIT\n".to_vec();
    match (client, to) {
        (Some(SocketAddr::V4(c)), SocketAddr::V4(t)) => {
            h.extend_from_slice(&[0x21, 0x11, 0, 12]);
            h.extend_from_slice(&c.ip().octets());
            h.extend_from_slice(&t.ip().octets());
            h.extend_from_slice(&c.port().to_be_bytes());
            h.extend_from_slice(&t.port().to_be_bytes());
        }
        _ => h.extend_from_slice(&[0x20, 0x00, 0, 0]),
    }
    h
}

async fn tcp_from(source: &str, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{source}:0").parse().unwrap()).unwrap();
    s.connect(to).await.unwrap()
}

/// From `source`, optionally with `prefix` first: TLS, then one HTTP/1.1
/// request; the status, or None when the server closed the connection or
/// the handshake failed.
async fn request(
    app: &TestApp,
    source: &str,
    to: SocketAddr,
    prefix: Option<Vec<u8>>,
    request: &str,
) -> Option<u16> {
    let mut tcp = tcp_from(source, to).await;
    if let Some(p) = prefix {
        tcp.write_all(&p).await.ok()?;
    }
    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(tls_config_trusting(&app.tls_ca_pem)));
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let exchange = async {
        let mut tls = connector.connect(name, tcp).await.ok()?;
        tls.write_all(request.as_bytes()).await.ok()?;
        let mut got = Vec::new();
        tls.read_to_end(&mut got).await.ok();
        let head = String::from_utf8_lossy(&got).into_owned();
        head.split(' ').nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .ok()
        .flatten()
}

const HEALTH: &str = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

fn client(ip: &str) -> Option<SocketAddr> {
    Some(SocketAddr::new(ip.parse().unwrap(), 50123))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allow_list_judges_the_client_a_balancer_names() {
    let app = spawn_with(|cfg| {
        cfg.admin_allow = Some(vec![
            "198.51.100.0/24".parse().unwrap(),
            format!("{OTHER}/32").parse().unwrap(),
        ]);
        cfg.proxy_protocol_from = Some(vec![format!("{BALANCER}/32").parse().unwrap()]);
    })
    .await;
    let to = app.running.admin_addr;
    let via = |ip: &str| Some(header(client(ip), to));
    // Through the balancer, for an allowed client: served.
    let allowed = request(&app, BALANCER, to, via("198.51.100.7"), HEALTH).await;
    assert_eq!(allowed, Some(200));
    // For a client outside the list: refused, though the balancer's own
    // address would not matter either way.
    let outside = request(&app, BALANCER, to, via("203.0.113.9"), HEALTH).await;
    assert_eq!(outside, None);
    // The balancer's own connection (LOCAL) counts as the balancer, which
    // is not on the list.
    let local = request(&app, BALANCER, to, Some(header(None, to)), HEALTH).await;
    assert_eq!(local, None);
    // From the balancer without a header: refused.
    assert_eq!(request(&app, BALANCER, to, None, HEALTH).await, None);
    // Anyone else is served as themselves, and a header from them is not
    // believed: it is not taken off, so their handshake fails.
    assert_eq!(request(&app, OTHER, to, None, HEALTH).await, Some(200));
    assert_eq!(
        request(&app, OTHER, to, via("198.51.100.7"), HEALTH).await,
        None
    );

    // The audit record names the client, not the balancer.
    let login = "{\"name\":\"nobody-here\",\"password\":\"wrong-password-1\"}";
    let post = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{login}",
        login.len()
    );
    let status = request(&app, BALANCER, to, via("198.51.100.23"), &post).await;
    assert!(matches!(status, Some(400..=499)), "{status:?}");
    // (Read from the other address: the test's own client connects from
    // the balancer's, without a header.)
    let audit: serde_json::Value = client_from(&app, OTHER)
        .get(app.admin_url("/api/v1/audit?limit=1000"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let records = audit["records"].as_array().unwrap();
    assert!(
        records.iter().any(|r| r["source"] == "198.51.100.23"),
        "no audit record from the named client"
    );
    assert!(records.iter().all(|r| r["source"] != BALANCER));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_caps_count_each_client_behind_a_balancer() {
    let app = spawn_with(|cfg| {
        cfg.device_limits.max_connections_per_ip = 1;
        // Held connections stay in the handshake for the whole test.
        cfg.device_limits.handshake_timeout = Duration::from_secs(60);
        cfg.proxy_protocol_from = Some(vec![format!("{BALANCER}/32").parse().unwrap()]);
    })
    .await;
    let to = app.running.device_addr;
    // Client A holds its one connection (header sent, no TLS yet).
    let mut held = tcp_from(BALANCER, to).await;
    held.write_all(&header(client("192.0.2.10"), to))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A second for A is closed at once; B, through the same balancer, is
    // served.
    let mut second = tcp_from(BALANCER, to).await;
    second
        .write_all(&header(client("192.0.2.10"), to))
        .await
        .unwrap();
    let mut b = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(3), second.read(&mut b)).await;
    assert!(
        matches!(closed, Ok(Ok(0) | Err(_))),
        "A's second connection was kept"
    );
    let scep = "GET /scep?operation=GetCACaps HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let b_served = request(
        &app,
        BALANCER,
        to,
        Some(header(client("192.0.2.11"), to)),
        scep,
    );
    assert_eq!(b_served.await, Some(200));
    drop(held);
}
