//! Connections that must not last forever, and connection caps: idle
//! HTTP/1.1 and HTTP/2 connections, slow request bodies and headers, HTTP/2
//! floods, and more connections than a listener or one address may hold.
//! Each test runs the server with 1-second timeouts and waits at most
//! `LIMIT` for the server to act; before these bounds existed, every one of
//! these connections stayed open (or was served) indefinitely.

use crate::common::{client_from, spawn_with, tls_config_trusting, TestApp};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

/// Longest the tests wait for the server to close a connection (the
/// server's own timeouts are 1 s here, plus a 1 s close grace).
const LIMIT: Duration = Duration::from_secs(10);

fn short(cfg: &mut mamori::config::Config) {
    for l in [&mut cfg.device_limits, &mut cfg.admin_limits] {
        l.idle_timeout = Duration::from_secs(1);
        l.header_timeout = Duration::from_secs(1);
        l.body_timeout = Duration::from_secs(1);
        l.close_grace = Duration::from_secs(1);
    }
}

async fn tcp_from(source: &str, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{source}:0").parse().unwrap()).unwrap();
    s.connect(to).await.unwrap()
}

async fn tls(app: &TestApp, to: SocketAddr, alpn: &[u8]) -> TlsStream<TcpStream> {
    let mut cfg = tls_config_trusting(&app.tls_ca_pem);
    cfg.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = TcpStream::connect(to).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let s = connector.connect(name, tcp).await.unwrap();
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(alpn));
    s
}

/// Everything the server sends until it closes the connection, or None if
/// it is still open after `LIMIT`.
async fn until_closed(s: &mut (impl AsyncRead + Unpin)) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(LIMIT, read).await.ok()?;
    Some(got)
}

// --- HTTP/2 framing, just enough to misbehave ---

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.extend([ty, flags]);
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

/// A header block (HPACK, no Huffman): `method` and `path` of a request
/// to 127.0.0.1 over https.
fn header_block(method: &str, path: &str) -> Vec<u8> {
    let mut b = Vec::new();
    for (index, value) in [(2u8, method), (4, path), (1, "127.0.0.1")] {
        // Literal without indexing, name from the static table.
        b.push(index);
        b.push(u8::try_from(value.len()).unwrap());
        b.extend(value.as_bytes());
    }
    b.push(0x87); // :scheme https
    b
}

/// Frames of a server's byte stream: (type, flags, stream, payload).
fn frames(mut bytes: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= 9 {
        let len = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]) as usize;
        let stream = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff;
        if bytes.len() < 9 + len {
            break;
        }
        out.push((bytes[3], bytes[4], stream, bytes[9..9 + len].to_vec()));
        bytes = &bytes[9 + len..];
    }
    out
}

fn has_goaway(bytes: &[u8]) -> bool {
    goaway_code(bytes).is_some()
}

/// The error code of the server's (last) GOAWAY.
fn goaway_code(bytes: &[u8]) -> Option<u32> {
    frames(bytes)
        .iter()
        .rev()
        .find(|f| f.0 == GOAWAY && f.3.len() >= 8)
        .map(|f| u32::from_be_bytes([f.3[4], f.3[5], f.3[6], f.3[7]]))
}

/// GOAWAY error code of a peer that is "generating excessive load".
const ENHANCE_YOUR_CALM: u32 = 0xb;

async fn h2_open(app: &TestApp, to: SocketAddr) -> TlsStream<TcpStream> {
    let mut s = tls(app, to, b"h2").await;
    s.write_all(PREFACE).await.unwrap();
    s.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    s
}

// --- idle connections ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http1_connections_are_closed_on_both_listeners() {
    let app = spawn_with(short).await;
    for (to, path) in [
        (app.running.device_addr, "/scep?operation=GetCACaps"),
        (app.running.admin_addr, "/healthz"),
    ] {
        // Never a request.
        let mut s = tls(&app, to, b"http/1.1").await;
        assert!(
            until_closed(&mut s).await.is_some(),
            "{to}: idle connection still open"
        );
        // A request, then nothing (keep-alive).
        let mut s = tls(&app, to, b"http/1.1").await;
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let got = until_closed(&mut s)
            .await
            .unwrap_or_else(|| panic!("{to}: kept-alive connection still open"));
        let got = String::from_utf8_lossy(&got);
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connections_are_closed_on_both_listeners() {
    let app = spawn_with(short).await;
    for to in [app.running.device_addr, app.running.admin_addr] {
        // Preface and settings, then nothing.
        let mut s = h2_open(&app, to).await;
        let got = until_closed(&mut s)
            .await
            .unwrap_or_else(|| panic!("{to}: idle HTTP/2 connection still open"));
        assert!(has_goaway(&got), "{to}: closed without GOAWAY");
        // One request answered, then nothing.
        let mut s = h2_open(&app, to).await;
        let req = frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            1,
            &header_block("GET", "/healthz"),
        );
        s.write_all(&req).await.unwrap();
        let got = until_closed(&mut s)
            .await
            .unwrap_or_else(|| panic!("{to}: HTTP/2 connection still open after its request"));
        let frames = frames(&got);
        assert!(
            frames.iter().any(|f| f.0 == HEADERS && f.2 == 1),
            "{to}: request not answered"
        );
        assert!(frames.iter().any(|f| f.0 == GOAWAY), "{to}: no GOAWAY");
    }
}

/// An HTTP/2 request whose header block never ends is not in flight: the
/// connection is closed like an idle one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_http2_headers_are_cut_off() {
    let app = spawn_with(short).await;
    let mut s = h2_open(&app, app.running.device_addr).await;
    // HEADERS without END_HEADERS; the CONTINUATION never comes.
    let req = frame(HEADERS, 0, 1, &header_block("PUT", "/mdm/connect"));
    s.write_all(&req).await.unwrap();
    assert!(
        until_closed(&mut s).await.is_some(),
        "connection with unfinished headers still open"
    );
}

// --- slow bodies ---

/// Sends `head` and then one body byte every 100 ms until the server closes
/// the connection; what it answered, or None if it never closed.
async fn trickle(mut s: TlsStream<TcpStream>, head: &[u8], byte: &[u8]) -> Option<Vec<u8>> {
    s.write_all(head).await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(s);
    let byte = byte.to_vec();
    let writer = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if wr.write_all(&byte).await.is_err() || wr.flush().await.is_err() {
                return;
            }
        }
    });
    let got = until_closed(&mut rd).await;
    writer.abort();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_http1_bodies_are_cut_off_on_both_listeners() {
    let app = spawn_with(short).await;
    for (to, method, path, ctype) in [
        (
            app.running.device_addr,
            "PUT",
            "/mdm/connect",
            "application/x-apple-aspen-mdm",
        ),
        (
            app.running.device_addr,
            "POST",
            "/scep?operation=PKIOperation",
            "application/x-pki-message",
        ),
        (
            app.running.admin_addr,
            "POST",
            "/api/v1/auth/login",
            "application/json",
        ),
    ] {
        let s = tls(&app, to, b"http/1.1").await;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\nContent-Length: 100000\r\n\r\n"
        );
        let got = trickle(s, head.as_bytes(), b"x")
            .await
            .unwrap_or_else(|| panic!("{path}: a body trickling at 10 bytes/s is still read"));
        let got = String::from_utf8_lossy(&got);
        assert!(
            got.is_empty() || got.starts_with("HTTP/1.1 4"),
            "{path}: {got}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_http2_bodies_are_cut_off() {
    let app = spawn_with(short).await;
    let mut s = h2_open(&app, app.running.device_addr).await;
    let req = frame(
        HEADERS,
        END_HEADERS,
        1,
        &header_block("PUT", "/mdm/connect"),
    );
    s.write_all(&req).await.unwrap();
    let got = trickle(s, &[], &frame(DATA, 0, 1, b"x"))
        .await
        .expect("an HTTP/2 body trickling at 10 bytes/s is still read");
    assert!(has_goaway(&got), "closed without GOAWAY");
}

// --- HTTP/2 floods ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_settings_bound_streams_and_header_size() {
    let app = spawn_with(short).await;
    for to in [app.running.device_addr, app.running.admin_addr] {
        let mut s = h2_open(&app, to).await;
        let mut got = Vec::new();
        let settings = loop {
            if let Some(f) = frames(&got)
                .into_iter()
                .find(|f| f.0 == SETTINGS && f.1 == 0)
            {
                break f;
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(LIMIT, s.read(&mut buf))
                .await
                .expect("server SETTINGS")
                .unwrap();
            assert!(n > 0, "closed before SETTINGS");
            got.extend_from_slice(&buf[..n]);
        };
        let values: Vec<(u16, u32)> = settings
            .3
            .chunks(6)
            .map(|c| {
                (
                    u16::from_be_bytes([c[0], c[1]]),
                    u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                )
            })
            .collect();
        // SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_MAX_HEADER_LIST_SIZE
        assert!(
            values.contains(&(0x3, mamori_http::tls::H2_MAX_CONCURRENT_STREAMS)),
            "{values:?}"
        );
        assert!(
            values.contains(&(0x6, mamori_http::tls::H2_MAX_HEADER_LIST_SIZE)),
            "{values:?}"
        );
    }
}

/// Streams opened and reset at once, thousands of them: the connection is
/// ended, and the listener keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_rapid_reset_ends_the_connection() {
    let app = spawn_with(short).await;
    let mut s = h2_open(&app, app.running.device_addr).await;
    let block = header_block("GET", "/scep?operation=GetCACaps");
    let mut burst = Vec::new();
    for i in 0..5000u32 {
        let id = 2 * i + 1;
        burst.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &block));
        burst.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
    }
    let _ = s.write_all(&burst).await;
    let got = until_closed(&mut s)
        .await
        .expect("rapid-reset connection still open");
    assert_eq!(goaway_code(&got), Some(ENHANCE_YOUR_CALM));
    let r = app
        .http
        .get(app.device_url("/scep?operation=GetCACaps"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A header block continued forever: the connection is ended long before
/// the flood is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_continuation_flood_ends_the_connection() {
    let app = spawn_with(short).await;
    let mut s = h2_open(&app, app.running.device_addr).await;
    let req = frame(HEADERS, 0, 1, &header_block("GET", "/"));
    s.write_all(&req).await.unwrap();
    // 16 KiB of one literal header's bytes per frame, 64 MiB in all.
    let junk = frame(CONTINUATION, 0, 1, &[b'a'; 16 * 1024]);
    let (mut rd, mut wr) = tokio::io::split(s);
    let writer = tokio::spawn(async move {
        for _ in 0..4096 {
            if wr.write_all(&junk).await.is_err() {
                return false;
            }
        }
        true
    });
    let got = until_closed(&mut rd)
        .await
        .expect("CONTINUATION flood still read");
    assert_eq!(goaway_code(&got), Some(ENHANCE_YOUR_CALM));
    assert!(!writer.await.unwrap(), "the whole flood was read");
}

// --- connection caps ---

/// Whether the server closes `s` at once, before any TLS.
async fn refused(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(3), s.read(&mut b)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Retries `GET url` with `client` until it answers 200 (the server notices
/// closed connections asynchronously).
async fn served(client: &reqwest::Client, url: &str) -> bool {
    for _ in 0..50 {
        if let Ok(r) = client.get(url).send().await {
            if r.status() == 200 {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_more_than_its_share() {
    let app = spawn_with(|cfg| {
        cfg.device_limits.max_connections_per_ip = 4;
        // Held connections stay in the handshake for the whole test.
        cfg.device_limits.handshake_timeout = Duration::from_secs(60);
    })
    .await;
    let to = app.running.device_addr;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(tcp_from("127.0.0.1", to).await);
    }
    let mut extra = tcp_from("127.0.0.1", to).await;
    assert!(refused(&mut extra).await, "a fifth connection was kept");
    for h in &mut held {
        let mut b = [0u8; 1];
        assert!(
            tokio::time::timeout(Duration::from_millis(200), h.read(&mut b))
                .await
                .is_err(),
            "a connection within the cap was closed"
        );
    }
    // Another address is served meanwhile.
    let other = client_from(&app, "127.0.0.2");
    assert!(served(&other, &app.device_url("/scep?operation=GetCACaps")).await);
    // Once the first address lets go, it is served again.
    drop(held);
    assert!(served(&app.http, &app.device_url("/scep?operation=GetCACaps")).await);
}

/// Whether the server closed `s` (a connection that never started TLS).
async fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_millis(300), s.read(&mut b)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_holds_at_most_its_connection_cap() {
    let app = spawn_with(|cfg| {
        cfg.admin_limits.max_connections = 3;
        cfg.admin_limits.handshake_timeout = Duration::from_secs(60);
    })
    .await;
    let to = app.running.admin_addr;
    let mut held = Vec::new();
    // Three networks (any 127/8 address reaches the loopback listener).
    for source in ["127.1.0.1", "127.2.0.1", "127.3.0.1"] {
        held.push(tcp_from(source, to).await);
    }
    // A fourth network gets in by taking the oldest unauthenticated
    // connection's place: the listener still holds three.
    let mut fourth = tcp_from("127.4.0.1", to).await;
    assert!(
        !closed(&mut fourth).await,
        "the fourth connection was refused"
    );
    assert!(closed(&mut held[0]).await, "the oldest connection was kept");
    assert!(!closed(&mut held[1]).await && !closed(&mut held[2]).await);
    // The same network again cannot take a connection from one holding as
    // many as it does: refused.
    let mut fifth = tcp_from("127.4.0.2", to).await;
    assert!(refused(&mut fifth).await, "a fifth connection was kept");
    // The device listener has its own cap.
    assert!(served(&app.http, &app.device_url("/scep?operation=GetCACaps")).await);
    drop(held);
    drop(fourth);
    assert!(served(&app.http, &app.admin_url("/healthz")).await);
}

/// The outside attack on the admin listener: a few addresses fill it with
/// connections that never finish a request (here: never even start TLS),
/// reconnecting as soon as one is closed. Before a full listener made way,
/// every administrator was refused until the attacker stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_cannot_lock_the_administrators_out() {
    let app = spawn_with(|cfg| {
        cfg.admin_limits.max_connections = 8;
        cfg.admin_limits.max_connections_per_ip = 2;
        cfg.admin_limits.handshake_timeout = Duration::from_secs(60);
    })
    .await;
    let to = app.running.admin_addr;
    // Four networks; the administrator is on another.
    let attackers = ["127.1.0.2", "127.2.0.3", "127.3.0.4", "127.4.0.5"];
    let mut held = Vec::new();
    for source in attackers {
        for _ in 0..2 {
            held.push(tcp_from(source, to).await);
        }
    }
    let admin = client_from(&app, "127.0.0.1");
    let devices = app.admin_url("/api/v1/devices");
    let signed_in = |client: reqwest::Client| {
        let (url, token) = (devices.clone(), app.token.clone());
        async move {
            let r = client.get(url).bearer_auth(token).send().await;
            r.map(|r| r.status().as_u16()).ok()
        }
    };
    assert_eq!(signed_in(admin.clone()).await, Some(200));
    let mut closed_now = 0;
    for h in &mut held {
        closed_now += usize::from(closed(h).await);
    }
    assert_eq!(closed_now, 1, "one attacker connection makes way, no more");
    // The attacker reconnects from every address, again and again: its
    // connections only take each other's places.
    for _ in 0..10 {
        for source in attackers {
            held.push(tcp_from(source, to).await);
        }
        assert_eq!(signed_in(admin.clone()).await, Some(200));
    }
    let mut open = 0;
    for h in &mut held {
        open += usize::from(!closed(h).await);
    }
    assert!(
        open <= 7,
        "{open} attacker connections held beside the administrator's"
    );
}

/// One HTTP/1.1 exchange on `s`: the status and the response's headers
/// (the body is read and dropped).
async fn exchange(s: &mut TlsStream<TcpStream>, request: &str) -> (u16, String) {
    s.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the answer");
        got.extend_from_slice(&buf[..n]);
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&got[..end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
        })
        .map_or(0, |v| v.parse().unwrap());
    while got.len() < end + length {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head)
}

/// A full listener keeps a connection a token (or a finished sign-in)
/// authenticated on, but not one a password alone did: the review's
/// finding was that a password alone made a connection permanent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_alone_does_not_keep_a_connection_on_a_full_listener() {
    let app = spawn_with(|cfg| {
        cfg.admin_limits.max_connections = 2;
        cfg.admin_limits.handshake_timeout = Duration::from_secs(60);
        cfg.admin_limits.idle_timeout = Duration::from_secs(60);
    })
    .await;
    let to = app.running.admin_addr;
    crate::console::totp_account(&app, "half", mamori_domain::Role::Helpdesk).await;
    // The password, then the session's state, on one connection.
    let mut half = tls(&app, to, b"http/1.1").await;
    let form = format!("name=half&password={}", crate::console::PASSWORD);
    let (st, head) = exchange(
        &mut half,
        &format!(
            "POST /console/sign-in HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    )
    .await;
    assert_eq!(st, 303, "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: __Host-mamori_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session")
        .to_owned();
    let (st, head) = exchange(
        &mut half,
        &format!(
            "GET /api/v1/auth/session HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Cookie: __Host-mamori_session={cookie}\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(st, 200, "{head}");
    // Full: a newcomer from another network takes the oldest unproven
    // connection's place, the half-signed-in one.
    let other = tcp_from("127.2.0.1", to).await;
    let mut newcomer = tcp_from("127.3.0.1", to).await;
    assert!(!closed(&mut newcomer).await);
    assert!(
        until_closed(&mut half).await.is_some(),
        "the password-only connection was kept"
    );

    // A token's connection is kept, though older than the unproven one.
    drop((newcomer, other));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut tok = tls(&app, to, b"http/1.1").await;
    let (st, head) = exchange(
        &mut tok,
        &format!(
            "GET /api/v1/devices HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\r\n",
            app.token
        ),
    )
    .await;
    assert_eq!(st, 200, "{head}");
    let mut unproven = tcp_from("127.5.0.1", to).await;
    let mut next = tcp_from("127.4.0.1", to).await;
    assert!(!closed(&mut next).await, "the newcomer was refused");
    let (st, _) = exchange(&mut tok, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await;
    assert_eq!(st, 200, "the token's connection was evicted");
    assert!(
        closed(&mut unproven).await,
        "the newer, unproven one made way"
    );
}
