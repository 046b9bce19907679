//! Receivers for audit sinks: an HTTPS webhook endpoint and a syslog-over-TLS
//! listener (RFC 5425 octet-counting frames), both on `127.0.0.1`, both
//! with a server certificate from a test [`Ca`].

use crate::apns::Ca;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

fn acceptor(ca: &Ca) -> TlsAcceptor {
    let (cert, key) = ca.server_cert();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS protocol versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .expect("receiver certificate");
    TlsAcceptor::from(Arc::new(config))
}

/// One webhook delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Request headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// The status the receiver answered.
    pub status: u16,
}

/// An HTTPS endpoint that records every POST and answers `503` to the
/// first `refuse` of them, `200` after.
pub struct WebhookReceiver {
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    /// Listens on `127.0.0.1:port` (0: any free port; see [`Self::port`]).
    pub async fn start(ca: &Ca, port: u16, refuse: usize) -> (Self, u16) {
        let acceptor = acceptor(ca);
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the webhook receiver");
        let port = listener.local_addr().expect("receiver address").port();
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(AtomicUsize::new(0));
        let recorded = Arc::clone(&deliveries);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, recorded, refused) = (
                    acceptor.clone(),
                    Arc::clone(&recorded),
                    Arc::clone(&refused),
                );
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (recorded, refused) = (Arc::clone(&recorded), Arc::clone(&refused));
                        async move {
                            let headers = req.headers().clone();
                            let body = req.into_body().collect().await?.to_bytes();
                            let status = if refused.fetch_add(1, Ordering::SeqCst) < refuse {
                                StatusCode::SERVICE_UNAVAILABLE
                            } else {
                                StatusCode::OK
                            };
                            recorded
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .push(Delivery {
                                    headers,
                                    body,
                                    status: status.as_u16(),
                                });
                            Ok::<_, hyper::Error>(
                                Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::new()))
                                    .expect("receiver response"),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        (Self { deliveries, task }, port)
    }

    /// Every delivery so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A syslog-over-TLS listener collecting the messages of every connection.
pub struct SyslogReceiver {
    messages: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
    /// The port it listens on.
    pub port: u16,
}

impl SyslogReceiver {
    /// Listens on a free port of `127.0.0.1`.
    pub async fn start(ca: &Ca) -> Self {
        let acceptor = acceptor(ca);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the syslog receiver");
        let port = listener.local_addr().expect("receiver address").port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&messages);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, recorded) = (acceptor.clone(), Arc::clone(&recorded));
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    while let Ok(n) = tls.read(&mut chunk).await {
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        // Octet counting: "<len> <msg>" repeated.
                        while let Some(space) = buf.iter().position(|b| *b == b' ') {
                            let len: usize = std::str::from_utf8(&buf[..space])
                                .ok()
                                .and_then(|s| s.parse().ok())
                                .expect("syslog frame length");
                            if buf.len() < space + 1 + len {
                                break;
                            }
                            let msg = String::from_utf8(buf[space + 1..space + 1 + len].to_vec())
                                .expect("UTF-8 syslog message");
                            recorded
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .push(msg);
                            buf.drain(..space + 1 + len);
                        }
                    }
                });
            }
        });
        Self {
            messages,
            task,
            port,
        }
    }

    /// Every message so far.
    pub fn messages(&self) -> Vec<String> {
        self.messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for SyslogReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookReceiver").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SyslogReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogReceiver").finish_non_exhaustive()
    }
}
