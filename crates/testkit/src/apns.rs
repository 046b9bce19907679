//! A local stand-in for APNs, and a test "Apple" CA to go with it.
//!
//! [`Ca`] issues the stand-in's TLS server certificate (for `127.0.0.1`) and
//! MDM push certificates whose subject carries
//! `UID=com.apple.mgmt.External.<uuid>` (see [`new_topic`]).
//! [`StandIn`] speaks HTTP/2 only over TLS on `127.0.0.1:0`, requires a
//! client certificate issued by a given CA, records every request as a
//! [`Recorded`] and answers each one with `200` or a configured [`Reply`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// OID of the `UID` attribute (0.9.2342.19200300.100.1.1), which holds the
/// push topic in an MDM push certificate's subject.
pub const UID_OID: &[u64] = &[0, 9, 2342, 19200300, 100, 1, 1];

/// A fresh MDM push topic: `com.apple.mgmt.External.<uuid>`.
pub fn new_topic() -> String {
    format!("com.apple.mgmt.External.{}", uuid::Uuid::new_v4())
}

/// A test CA (for example the test "Apple" CA) and its key.
pub struct Ca {
    /// The self-signed CA certificate.
    pub cert: rcgen::Certificate,
    /// The CA's signing key.
    pub key: KeyPair,
}

impl Ca {
    /// A new self-signed CA with common name `name`.
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("generate test CA key");
        let mut params =
            CertificateParams::new(Vec::<String>::new()).expect("test CA certificate parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("self-sign test CA");
        Self { cert, key }
    }

    /// The CA certificate, DER.
    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A push (TLS client) certificate with `UID=<uid>` in its subject, none
    /// when `uid` is `None`: (certificate PEM, private key PEM).
    pub fn push_cert(&self, uid: Option<&str>) -> (String, String) {
        let key = KeyPair::generate().expect("generate push certificate key");
        let mut params =
            CertificateParams::new(Vec::<String>::new()).expect("push certificate parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "APSP:test-push-cert");
        if let Some(uid) = uid {
            params
                .distinguished_name
                .push(DnType::CustomDnType(UID_OID.to_vec()), uid);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign push certificate");
        (cert.pem(), key.serialize_pem())
    }

    /// A push certificate for the key of a certificate signing request
    /// (PEM), as Apple's portal issues one for a request: its PEM.
    pub fn push_cert_for_request(&self, csr_pem: &str, uid: &str) -> String {
        let mut csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
            .expect("a certificate signing request");
        csr.params.distinguished_name = rcgen::DistinguishedName::new();
        csr.params
            .distinguished_name
            .push(DnType::CommonName, "APSP:test-push-cert");
        csr.params
            .distinguished_name
            .push(DnType::CustomDnType(UID_OID.to_vec()), uid);
        csr.params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        csr.signed_by(&self.cert, &self.key)
            .expect("sign the requested push certificate")
            .pem()
    }

    /// A TLS server certificate for `127.0.0.1` (and `localhost`).
    pub fn server_cert(&self) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().expect("generate server certificate key");
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server certificate parameters");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign server certificate");
        (
            cert.der().clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }
}

/// One request the stand-in received.
#[derive(Debug)]
pub struct Recorded {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Request path, e.g. `/3/device/<hex token>`.
    pub path: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// Request body.
    pub body: Bytes,
    /// The client (push) certificate the connection was made with.
    pub client_cert: Option<CertificateDer<'static>>,
}

/// The answer the stand-in gives for a device token. Every response also
/// carries a fresh `apns-id` header.
#[derive(Clone, Debug)]
pub struct Reply {
    /// Response status.
    pub status: StatusCode,
    /// Response body.
    pub body: Bytes,
}

impl Reply {
    /// `200` with an empty body: the notification was accepted.
    pub fn ok() -> Self {
        Self {
            status: StatusCode::OK,
            body: Bytes::new(),
        }
    }

    /// A refusal: `status` with body `{"reason":"<reason>"}`.
    pub fn refused(status: StatusCode, reason: &str) -> Self {
        Self {
            status,
            body: Bytes::from(format!(r#"{{"reason":"{reason}"}}"#)),
        }
    }

    /// `400 {"reason":"BadDeviceToken"}`.
    pub fn bad_device_token() -> Self {
        Self::refused(StatusCode::BAD_REQUEST, "BadDeviceToken")
    }
}

/// A local stand-in for APNs: HTTP/2 only, client certificate required.
/// The server task stops when this is dropped.
pub struct StandIn {
    /// `https://127.0.0.1:<port>`, without a trailing slash.
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StandIn {
    /// Serves with a certificate from `server_ca`, accepting only clients
    /// whose certificate `client_ca` issued; answers `200` to everything.
    pub async fn start(server_ca: &Ca, client_ca: &Ca) -> Self {
        Self::start_with(server_ca, client_ca, HashMap::new()).await
    }

    /// As [`StandIn::start`], but answers a request for a hex device token
    /// found in `replies` with that [`Reply`] (others get [`Reply::ok`]).
    pub async fn start_with(
        server_ca: &Ca,
        client_ca: &Ca,
        replies: HashMap<String, Reply>,
    ) -> Self {
        let acceptor = tls_acceptor(server_ca, client_ca);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the APNs stand-in");
        let port = listener
            .local_addr()
            .expect("stand-in local address")
            .port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let replies = Arc::new(replies);

        let recorded = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve_connection(
                    acceptor.clone(),
                    tcp,
                    Arc::clone(&recorded),
                    Arc::clone(&replies),
                ));
            }
        });
        Self {
            url: format!("https://127.0.0.1:{port}"),
            requests,
            task,
        }
    }

    /// Takes every request recorded so far.
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *lock(&self.requests))
    }

    /// Waits (at most 5 s) until `n` requests arrived, then takes them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Recorded> {
        for _ in 0..100 {
            if lock(&self.requests).len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.take()
    }

    /// Waits a short while (600 ms) and returns how many requests arrived
    /// meanwhile, taking them.
    pub async fn quiet_count(&self) -> usize {
        tokio::time::sleep(Duration::from_millis(600)).await;
        self.take().len()
    }
}

/// The stand-in's TLS setup: HTTP/2 only, a server certificate from
/// `server_ca`, and client certificates required, issued by `client_ca`.
fn tls_acceptor(server_ca: &Ca, client_ca: &Ca) -> TlsAcceptor {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(client_ca.der()).expect("trust the client CA");
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .expect("client certificate verifier");
    let (cert, key) = server_ca.server_cert();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS protocol versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert], key)
        .expect("stand-in server certificate");
    config.alpn_protocols = vec![b"h2".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

/// Serves one TCP connection: the TLS handshake, then HTTP/2 requests,
/// each recorded and answered by [`answer`].
async fn serve_connection(
    acceptor: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    replies: Arc<HashMap<String, Reply>>,
) {
    // A refused handshake (no or untrusted client cert) ends here.
    let Ok(tls) = acceptor.accept(tcp).await else {
        return;
    };
    let client_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.clone().into_owned());
    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
        answer(
            req,
            Arc::clone(&recorded),
            Arc::clone(&replies),
            client_cert.clone(),
        )
    });
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

/// Records one request and answers it: the [`Reply`] configured for its
/// device token, else `200`, with a fresh `apns-id`.
async fn answer(
    req: Request<hyper::body::Incoming>,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    replies: Arc<HashMap<String, Reply>>,
    client_cert: Option<CertificateDer<'static>>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let headers = req.headers().clone();
    let body = req.into_body().collect().await?.to_bytes();
    let token = path.rsplit('/').next().unwrap_or_default();
    let reply = replies.get(token).cloned().unwrap_or_else(Reply::ok);
    lock(&recorded).push(Recorded {
        method,
        path,
        headers,
        body,
        client_cert,
    });
    let response = Response::builder()
        .status(reply.status)
        .header("apns-id", uuid::Uuid::new_v4().to_string())
        .body(Full::new(reply.body))
        .expect("stand-in response");
    Ok(response)
}

fn lock(requests: &Mutex<Vec<Recorded>>) -> MutexGuard<'_, Vec<Recorded>> {
    requests.lock().expect("stand-in request log poisoned")
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for StandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandIn").finish_non_exhaustive()
    }
}
