//! Serving an axum router over TLS with hyper, handing the TLS client
//! certificate (if any) to handlers as a request extension.

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// The TLS client certificate the peer presented (DER), if any.
#[derive(Debug, Clone, Default)]
pub struct PeerCertificate(pub Option<Arc<Vec<u8>>>);

/// The peer's socket address.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Longest a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until the task is dropped.
pub async fn serve_tls(listener: TcpListener, acceptor: TlsAcceptor, router: Router) {
    serve_tls_from(listener, acceptor, router, None).await;
}

/// Accepts connections until the task is dropped; with `allow`, a connection
/// from an address outside every listed network is closed before TLS.
pub async fn serve_tls_from(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    allow: Option<Arc<Vec<ipnet::IpNet>>>,
) {
    loop {
        let (tcp, addr) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(cause = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Some(nets) = &allow {
            let ip = addr.ip().to_canonical();
            if !nets.iter().any(|n| n.contains(&ip)) {
                tracing::warn!(peer = %addr, "connection from outside the admin allow-list refused");
                drop(tcp);
                continue;
            }
        }
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
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
            let svc = router.map_request(move |mut req: axum::extract::Request<_>| {
                req.extensions_mut().insert(peer.clone());
                req.extensions_mut().insert(PeerAddr(addr));
                req
            });
            let hyper_svc = TowerToHyperService::new(svc);
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .max_buf_size(64 * 1024)
                .header_read_timeout(Duration::from_secs(30));
            if let Err(e) = builder.serve_connection(TokioIo::new(tls), hyper_svc).await {
                tracing::debug!(peer = %addr, cause = %e, "connection ended with an error");
            }
        });
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
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
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
