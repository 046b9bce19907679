//! Device identity credentials and the HTTPS clients built from them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mamori_crypto::RsaPrivateKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::{Result, SimError};

/// A device identity: the SCEP-issued certificate and its private key.
///
/// Cloneable so a test can hand device A's identity to device B
/// ([`crate::SimDevice::set_credentials`]). `Debug` shows only the
/// certificate fingerprint.
#[derive(Clone)]
pub struct Credentials {
    /// The identity certificate (DER).
    pub cert_der: Vec<u8>,
    /// The identity private key.
    pub key: RsaPrivateKey,
}

impl Credentials {
    /// Lower-case hex SHA-256 fingerprint of the certificate.
    pub fn fingerprint_sha256_hex(&self) -> String {
        mamori_crypto::sha256_hex(&self.cert_der)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("cert_sha256", &self.fingerprint_sha256_hex())
            .finish_non_exhaustive()
    }
}

/// Parses one or more CA certificates given as PEM (`CERTIFICATE` blocks) or
/// a single DER certificate.
pub fn parse_ca_certs(pem_or_der: &[u8]) -> Result<Vec<Vec<u8>>> {
    let is_pem = pem_or_der
        .windows(10)
        .any(|w| w == b"-----BEGIN".as_slice());
    if !is_pem {
        mamori_crypto::certs::parse_cert(pem_or_der).map_err(|e| SimError::TlsCa(e.to_string()))?;
        return Ok(vec![pem_or_der.to_vec()]);
    }
    let certs = CertificateDer::pem_slice_iter(pem_or_der)
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| SimError::TlsCa(e.to_string()))?;
    if certs.is_empty() {
        return Err(SimError::TlsCa("no CERTIFICATE block in PEM".into()));
    }
    Ok(certs)
}

/// Builds a reqwest client (HTTP/2 + HTTP/1.1 over rustls/aws-lc-rs) that
/// trusts only `roots` and, when given, presents `client` as TLS client
/// certificate.
pub(crate) fn build_client(
    roots: &[Vec<u8>],
    client: Option<&Credentials>,
    timeout: Duration,
    user_agent: &str,
    sessions: Option<crate::device::TlsSessions>,
) -> Result<reqwest::Client> {
    let mut store = rustls::RootCertStore::empty();
    for der in roots {
        store
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| SimError::TlsCa(e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SimError::TlsConfig(e.to_string()))?
        .with_root_certificates(store);
    let mut config = match client {
        Some(creds) => {
            let key =
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(creds.key.to_pkcs8_der().to_vec()));
            builder
                .with_client_auth_cert(vec![CertificateDer::from(creds.cert_der.clone())], key)
                .map_err(|e| SimError::TlsConfig(e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    if let Some(store) = sessions {
        config.resumption = rustls::client::Resumption::store(store);
    }
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(timeout)
        .user_agent(user_agent)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| SimError::TlsConfig(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_pem_and_der_cas() {
        let key = RsaPrivateKey::generate_2048().unwrap();
        let der = mamori_crypto::certs::self_signed_cert(&key, "Test CA").unwrap();
        let pem = mamori_crypto::certs::cert_to_pem(&der);
        assert_eq!(parse_ca_certs(pem.as_bytes()).unwrap(), vec![der.clone()]);
        let two = format!("{pem}{pem}");
        assert_eq!(parse_ca_certs(two.as_bytes()).unwrap().len(), 2);
        assert_eq!(parse_ca_certs(&der).unwrap(), vec![der.clone()]);
        assert!(parse_ca_certs(b"junk").is_err());
        assert!(
            parse_ca_certs(b"-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n").is_err()
        );
        let client = build_client(
            std::slice::from_ref(&der),
            Some(&Credentials {
                cert_der: der.clone(),
                key,
            }),
            Duration::from_secs(5),
            "test",
            None,
        );
        assert!(client.is_ok());
    }
}
