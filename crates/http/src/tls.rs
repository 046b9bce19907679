//! Serving an axum router over TLS with hyper, handing the TLS client
//! certificate (if any) to handlers as a request extension.

use crate::conn::{
    AcceptBackoff, CloseReason, ConnState, Limits, LogThrottle, Permit, Standing, TimedBody,
    TrackedBody,
};

pub mod admit;
use admit::Gate;
pub use admit::Sources;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// The TLS client certificate the peer presented (DER), if any.
#[derive(Debug, Clone, Default)]
pub struct PeerCertificate(pub Option<Arc<Vec<u8>>>);

/// The peer's socket address.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// How the request's connection stands with its listener: a handler that
/// authenticated the caller marks it trusted, so that a full listener never
/// evicts it (see [`crate::conn::Tracker::try_acquire`]).
#[derive(Debug, Clone)]
pub struct ConnStanding(pub Arc<Standing>);

impl ConnStanding {
    /// Marks the connection of `extensions`' request as authenticated.
    pub fn trust_in(extensions: &http::Extensions) {
        if let Some(s) = extensions.get::<Self>() {
            s.0.trust();
        }
    }
}

/// Streams one HTTP/2 client may have open at once.
pub const H2_MAX_CONCURRENT_STREAMS: u32 = 100;
/// Largest request header block (HTTP/2; HTTP/1 is bounded by its 64 KiB
/// read buffer). An `Mdm-Signature` header is a few KiB.
pub const H2_MAX_HEADER_LIST_SIZE: u32 = 32 * 1024;
/// Streams a client may reset before the server accepted them, at once
/// (rapid reset, CVE-2023-44487): more is a protocol error ending the
/// connection.
pub const H2_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
/// Streams the server may reset because of client errors before it ends
/// the connection.
pub const H2_MAX_LOCAL_ERROR_RESET_STREAMS: usize = 128;
/// Response bytes buffered per HTTP/2 stream for a slow reader.
pub const H2_MAX_SEND_BUF_SIZE: usize = 64 * 1024;

/// Accepts connections until the task is dropped or `stop` turns true.
pub async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    limits: Limits,
    stop: watch::Receiver<bool>,
) {
    serve_tls_from(listener, acceptor, router, Sources::default(), limits, stop).await;
}

/// Accepts connections until the task is dropped or `stop` turns true;
/// then closes the listening socket, asks every connection to close after
/// the requests in flight (each has the close grace) and returns once none
/// is left. `sources` says whom it serves: with an allow-list, a connection
/// from a client outside every listed network is closed before TLS; a
/// connection from a listed load balancer must start with a PROXY protocol
/// v2 header (read within the handshake timeout) and then counts as the
/// client it names, for every rule (see [`admit`]).
/// `limits` caps the connections held (in total and per source address) and
/// bounds every phase of each connection; a connection over a cap is closed
/// before TLS. Refusals and accept errors are logged at most once a second,
/// with a count; accept errors (a full descriptor table) back off from
/// 10 ms to 1 s.
pub async fn serve_tls_from(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    sources: Sources,
    limits: Limits,
    stop: watch::Receiver<bool>,
) {
    let gate = Gate::new(sources, &limits);
    let served = Arc::new(Served {
        acceptor,
        router,
        builder: http_builder(&limits),
        limits,
    });
    let mut backoff = AcceptBackoff::default();
    let mut accept_log = LogThrottle::new(Duration::from_secs(1));
    loop {
        let mut stopping = stop.clone();
        let accepted = tokio::select! {
            biased;
            () = stop_requested(&mut stopping) => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, addr) = match accepted {
            Ok(c) => {
                backoff.succeeded();
                c
            }
            Err(e) => {
                let wait = backoff.failed();
                if let Some(n) = accept_log.hit(std::time::Instant::now()) {
                    tracing::warn!(cause = %e, failures = n, retry_ms = wait.as_millis() as u64, "accept failed");
                }
                tokio::select! {
                    () = stop_requested(&mut stopping) => break,
                    () = tokio::time::sleep(wait) => continue,
                }
            }
        };
        if gate.is_balancer(addr.ip()) {
            let Some(reading) = gate.reading_slot(addr) else {
                continue;
            };
            let (gate, served, stop) = (Arc::clone(&gate), Arc::clone(&served), stop.clone());
            tokio::spawn(async move {
                let mut tcp = tcp;
                let timeout = served.limits.handshake_timeout;
                let Some(client) = gate.proxied_client(&mut tcp, addr, timeout).await else {
                    return;
                };
                drop(reading);
                if let Some(permit) = gate.admit(client) {
                    serve_connection(tcp, client, served, permit, stop).await;
                }
            });
            continue;
        }
        let Some(permit) = gate.admit(addr) else {
            continue;
        };
        tokio::spawn(serve_connection(
            tcp,
            addr,
            Arc::clone(&served),
            permit,
            stop.clone(),
        ));
    }
    drop(listener);
    gate.tracker().drained().await;
}

/// Resolves once `stop` turns true (never, if its sender is gone without
/// saying so: dropping a server's handle does not stop it).
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The HTTP/1.1 and HTTP/2 settings of a listener.
fn http_builder(limits: &Limits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .max_buf_size(64 * 1024)
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
        .max_header_list_size(H2_MAX_HEADER_LIST_SIZE)
        .max_pending_accept_reset_streams(H2_MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(H2_MAX_LOCAL_ERROR_RESET_STREAMS)
        .max_send_buf_size(H2_MAX_SEND_BUF_SIZE);
    builder
}

/// What every connection of a listener shares.
struct Served {
    acceptor: TlsAcceptor,
    router: Router,
    limits: Limits,
    builder: Builder<TokioExecutor>,
}

/// One connection: TLS handshake within its timeout, then HTTP until the
/// client leaves, the connection has been idle for the idle timeout or a
/// request body was too slow; a connection asked to close has the close
/// grace to finish, then is dropped. An evicted connection is dropped at
/// once, unless a request is in flight: then it closes as asked to (the
/// request finishes within the close grace). `permit` holds its slot.
async fn serve_connection(
    tcp: TcpStream,
    addr: SocketAddr,
    served: Arc<Served>,
    permit: Permit,
    mut stop: watch::Receiver<bool>,
) {
    let standing = Arc::clone(permit.standing());
    serve_admitted(tcp, addr, &served, &standing, &mut stop).await;
    drop(permit);
}

/// The connection's life once admitted: handshake, service, closing.
// Length: the phases in order, each racing the same stop, eviction and
// timeout signals; split, every part would need the same locals.
async fn serve_admitted(
    tcp: TcpStream,
    addr: SocketAddr,
    served: &Arc<Served>,
    standing: &Arc<Standing>,
    stop: &mut watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let limits = &served.limits;
    let handshake = tokio::time::timeout(limits.handshake_timeout, served.acceptor.accept(tcp));
    let tls = match tokio::select! {
        () = stop_requested(stop) => return,
        () = standing.evicted() => {
            tracing::debug!(peer = %addr, "connection evicted during its handshake");
            return;
        }
        r = handshake => r,
    } {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(peer = %addr, cause = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(peer = %addr, "TLS handshake timed out");
            return;
        }
    };
    let peer = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| Arc::new(c.as_ref().to_vec()));
    let peer = PeerCertificate(peer);
    let state = ConnState::new();
    let svc = {
        let state = Arc::clone(&state);
        let served = Arc::clone(served);
        let standing = ConnStanding(Arc::clone(standing));
        hyper::service::service_fn(move |req: http::Request<Incoming>| {
            let in_flight = state.begin();
            let (mut parts, body) = req.into_parts();
            parts.extensions.insert(peer.clone());
            parts.extensions.insert(PeerAddr(addr));
            parts.extensions.insert(standing.clone());
            let body = TimedBody::new(body, &served.limits, Arc::clone(&state));
            let req = http::Request::from_parts(parts, body);
            let router = served.router.clone();
            async move {
                let res = router.oneshot(req).await?;
                Ok::<_, Infallible>(res.map(|b| TrackedBody::new(b, in_flight)))
            }
        })
    };
    let conn = served.builder.serve_connection(TokioIo::new(tls), svc);
    tokio::pin!(conn);
    let reason = tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(peer = %addr, cause = %e, "connection ended with an error");
            }
            return;
        }
        reason = state.should_close(limits.idle_timeout) => reason,
        () = stop_requested(stop) => CloseReason::Shutdown,
        // Waiting for a request (or its headers): dropped at once. With a
        // request in flight (a device's check-in being handled), it may
        // finish within the close grace rather than stop halfway.
        () = standing.evicted() => {
            if state.in_flight() == 0 {
                tracing::debug!(peer = %addr, "connection evicted to make way for a newer one");
                return;
            }
            CloseReason::Evicted
        }
    };
    tracing::debug!(peer = %addr, ?reason, "closing connection");
    conn.as_mut().graceful_shutdown();
    match tokio::time::timeout(limits.close_grace, conn).await {
        Ok(Err(e)) => tracing::debug!(peer = %addr, cause = %e, "connection ended with an error"),
        Ok(Ok(())) => {}
        Err(_) => tracing::debug!(peer = %addr, "connection dropped after the close grace"),
    }
}

/// A certificate chain (leaf first) and its private key.
pub type ServerCert = (
    Vec<rustls_pki_types::CertificateDer<'static>>,
    rustls_pki_types::PrivateKeyDer<'static>,
);

/// Builds a rustls server configuration serving the first certificate whose
/// key can sign with a scheme the client offers (list an ECDSA certificate
/// before an RSA one: its handshake costs the server far less). With
/// `client_ca`, clients may (but need not) present a certificate; see
/// [`DeviceCertVerifier`].
pub fn server_config(
    certs: Vec<ServerCert>,
    client_ca: Option<rustls_pki_types::CertificateDer<'static>>,
) -> Result<rustls::ServerConfig, rustls::Error> {
    let provider = Arc::new(server_provider());
    let keys = certs
        .into_iter()
        .map(|(chain, key)| {
            let signer = provider.key_provider.load_private_key(key)?;
            Ok(Arc::new(rustls::sign::CertifiedKey::new(chain, signer)))
        })
        .collect::<Result<Vec<_>, rustls::Error>>()?;
    if keys.is_empty() {
        return Err(rustls::Error::General("no server certificate".into()));
    }
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        Some(ca) => {
            let hint = mamori_crypto::certs::parse_cert(ca.as_ref())
                .map_err(|e| rustls::Error::General(e.to_string()))?
                .subject_der;
            builder.with_client_cert_verifier(Arc::new(DeviceCertVerifier {
                provider,
                hints: vec![rustls::DistinguishedName::from(hint)],
            }))
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_cert_resolver(Arc::new(BySignatureScheme(keys)));
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    cfg.ignore_client_order = true;
    // Devices woken by a push open a new connection per session: stateless
    // session tickets (keys rotated by rustls) let them resume without a
    // full handshake, and cost the server no memory per device.
    cfg.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()?;
    Ok(cfg)
}

/// aws-lc-rs with AES-128-GCM/SHA-256 preferred: a TLS 1.3 handshake's key
/// schedule runs many HMACs, and with SHA-384 (the AES-256 suite) they were
/// the largest single cost of a new device connection in profiles. Both
/// suites stay available; this is only the server's preference.
fn server_provider() -> rustls::crypto::CryptoProvider {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    provider
}

/// Picks the first certificate whose key can sign with a scheme the client
/// offers; falls back to the last one.
#[derive(Debug)]
struct BySignatureScheme(Vec<Arc<rustls::sign::CertifiedKey>>);

impl rustls::server::ResolvesServerCert for BySignatureScheme {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let offered = hello.signature_schemes();
        self.0
            .iter()
            .find(|k| k.key.choose_scheme(offered).is_some())
            .or_else(|| self.0.last())
            .cloned()
    }
}

/// Asks for a client certificate (naming the device CA as the acceptable
/// issuer), checks the client holds its key (the handshake signature), and
/// leaves every trust decision to the service layer, which verifies the
/// chain, validity, revocation and binding — so a foreign, expired or
/// revoked certificate gets a clear 401 and a log line instead of a bare
/// TLS alert.
#[derive(Debug)]
pub struct DeviceCertVerifier {
    provider: Arc<rustls::crypto::CryptoProvider>,
    hints: Vec<rustls::DistinguishedName>,
}

impl rustls::server::danger::ClientCertVerifier for DeviceCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
