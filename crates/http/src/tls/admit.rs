//! Whom a listener lets in, before TLS: the admin allow-list, the
//! connection caps, and — for connections from the load balancers an
//! operator lists — the PROXY protocol v2 header that says whose
//! connection it is. Every rule then applies to that client, not to the
//! balancer: the allow-list, the caps per source, and (through
//! [`super::PeerAddr`]) the sign-in throttles, the bulk-read network window
//! and the audit record's address.

use crate::conn::{Limits, LogThrottle, Permit, Refusal, Tracker};
use mamori_protocol::proxy::{self, ProxyHeaderError, PREFIX_LEN};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Which sources a listener takes, and which speak for others.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Only clients in these networks are served (None: any).
    pub allow: Option<Arc<Vec<ipnet::IpNet>>>,
    /// Connections from these networks (load balancers passing TCP
    /// through) must start with a PROXY protocol v2 header, and count as
    /// the client it names. None: no connection may carry one.
    pub proxy_from: Option<Arc<Vec<ipnet::IpNet>>>,
}

fn contains(nets: &[ipnet::IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    nets.iter().any(|n| n.contains(&ip))
}

/// The rate-limited log lines of refusals.
struct Logs {
    allow: LogThrottle,
    cap: LogThrottle,
    proxy: LogThrottle,
}

/// A listener's admission: the sources, the caps, and the balancers'
/// connections whose header is being read (at most the listener's
/// connection cap at once).
pub(super) struct Gate {
    sources: Sources,
    tracker: Arc<Tracker>,
    logs: Mutex<Logs>,
    reading: Arc<Semaphore>,
}

impl Gate {
    pub(super) fn new(sources: Sources, limits: &Limits) -> Arc<Self> {
        let second = Duration::from_secs(1);
        Arc::new(Self {
            sources,
            tracker: Tracker::new(limits),
            logs: Mutex::new(Logs {
                allow: LogThrottle::new(second),
                cap: LogThrottle::new(second),
                proxy: LogThrottle::new(second),
            }),
            reading: Arc::new(Semaphore::new(limits.max_connections.max(1))),
        })
    }

    pub(super) fn tracker(&self) -> &Arc<Tracker> {
        &self.tracker
    }

    fn log(&self, f: impl FnOnce(&mut Logs) -> &mut LogThrottle) -> Option<u64> {
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut logs).hit(Instant::now())
    }

    /// Whether `peer` is a listed load balancer, whose connections start
    /// with a PROXY header.
    pub(super) fn is_balancer(&self, peer: IpAddr) -> bool {
        self.sources
            .proxy_from
            .as_deref()
            .is_some_and(|nets| contains(nets, peer))
    }

    /// A slot for reading one balancer connection's header, or None when
    /// as many are being read as the listener holds connections.
    pub(super) fn reading_slot(&self, peer: SocketAddr) -> Option<OwnedSemaphorePermit> {
        let slot = Arc::clone(&self.reading).try_acquire_owned().ok();
        if slot.is_none() {
            if let Some(n) = self.log(|l| &mut l.proxy) {
                tracing::warn!(peer = %peer, refused = n, "connection refused: too many PROXY headers being read");
            }
        }
        slot
    }

    /// The client a balancer's connection is for: its PROXY header read
    /// within `timeout` (and nothing after it), or the balancer itself for
    /// its own connections (`LOCAL`, health checks). None: no valid header
    /// in time; the connection is to be closed (logged).
    pub(super) async fn proxied_client(
        &self,
        tcp: &mut TcpStream,
        peer: SocketAddr,
        timeout: Duration,
    ) -> Option<SocketAddr> {
        let why = match tokio::time::timeout(timeout, read_header(tcp)).await {
            Ok(Ok(client)) => return Some(client.unwrap_or(peer)),
            // Connected and closed without a word: a TCP health check.
            Ok(Err(HeaderError::Io(e))) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                tracing::debug!(peer = %peer, "load balancer connection closed before a PROXY header");
                return None;
            }
            Ok(Err(HeaderError::Io(e))) => format!("connection failed while reading it: {e}"),
            Ok(Err(HeaderError::Header(e))) => e.to_string(),
            Err(_) => "none within the handshake timeout".to_owned(),
        };
        if let Some(n) = self.log(|l| &mut l.proxy) {
            tracing::warn!(peer = %peer, refused = n, cause = %why, "connection from a load balancer refused: no valid PROXY protocol v2 header");
        }
        None
    }

    /// A slot for a connection from `client`, or None (closed, logged):
    /// outside the allow-list, or over a cap.
    pub(super) fn admit(&self, client: SocketAddr) -> Option<Permit> {
        if let Some(nets) = &self.sources.allow {
            if !contains(nets, client.ip()) {
                if let Some(n) = self.log(|l| &mut l.allow) {
                    tracing::warn!(peer = %client, refused = n, "connection from outside the admin allow-list refused");
                }
                return None;
            }
        }
        match self.tracker.try_acquire(client.ip()) {
            Ok(p) => Some(p),
            Err(why) => {
                if let Some(n) = self.log(|l| &mut l.cap) {
                    let limit = match why {
                        Refusal::Total => "max_connections",
                        Refusal::PerSource => "max_connections_per_ip",
                    };
                    tracing::warn!(peer = %client, refused = n, limit, held = self.tracker.total(), "connection refused: too many connections");
                }
                None
            }
        }
    }
}

enum HeaderError {
    Io(std::io::Error),
    Header(ProxyHeaderError),
}

/// Reads exactly one PROXY v2 header (its fixed part, then the length it
/// gives, at most [`proxy::MAX_HEADER_LEN`]), so the TLS handshake that
/// follows is left unread. `Ok(None)`: the balancer's own connection.
async fn read_header(tcp: &mut TcpStream) -> Result<Option<SocketAddr>, HeaderError> {
    let mut prefix = [0u8; PREFIX_LEN];
    tcp.read_exact(&mut prefix).await.map_err(HeaderError::Io)?;
    let len = proxy::header_len(&prefix).map_err(HeaderError::Header)?;
    let mut header = vec![0u8; len];
    header[..PREFIX_LEN].copy_from_slice(&prefix);
    tcp.read_exact(&mut header[PREFIX_LEN..])
        .await
        .map_err(HeaderError::Io)?;
    proxy::client_address(&header).map_err(HeaderError::Header)
}
