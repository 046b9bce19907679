//! The MDM push certificate and its private key.

use std::fmt;
use std::sync::Arc;

use der::asn1::ObjectIdentifier;
use der::{Decode, Tag, Tagged};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::PushError;

/// `userId` (UID, RFC 4519): where Apple puts the APNs topic of an MDM push
/// certificate.
const UID: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.9.2342.19200300.100.1.1");

/// Every MDM push topic starts with this.
pub const MDM_TOPIC_PREFIX: &str = "com.apple.mgmt.";

/// A validated MDM push certificate (PEM chain, leaf first) and its key.
///
/// `Debug` never shows the key.
#[derive(Clone)]
pub struct PushCredentials {
    cert_pem: String,
    key_pem: Zeroizing<String>,
    topic: String,
    not_after: OffsetDateTime,
}

impl PushCredentials {
    /// Checks that `cert_pem` holds at least one X.509 certificate (the first
    /// is the push certificate, any further ones its chain), that `key_pem`
    /// is the private key of the first one, and that its subject carries an
    /// MDM topic (`UID=com.apple.mgmt.…`).
    ///
    /// An expired certificate is accepted: see [`PushCredentials::not_after`].
    pub fn parse(cert_pem: &str, key_pem: &str) -> Result<Self, PushError> {
        let key_pem = Zeroizing::new(key_pem.to_owned());
        let chain = cert_chain(cert_pem)?;
        let leaf = chain.first().ok_or(PushError::NoCertificate)?;
        let parsed =
            Certificate::from_der(leaf).map_err(|e| PushError::BadCertificate(e.to_string()))?;
        for extra in chain.iter().skip(1) {
            Certificate::from_der(extra)
                .map_err(|e| PushError::BadCertificate(format!("chain: {e}")))?;
        }
        let topic = topic_of(&parsed)?;
        let not_after = OffsetDateTime::from_unix_timestamp(
            i64::try_from(
                parsed
                    .tbs_certificate
                    .validity
                    .not_after
                    .to_unix_duration()
                    .as_secs(),
            )
            .map_err(|_| PushError::BadCertificate("validity out of range".into()))?,
        )
        .map_err(|_| PushError::BadCertificate("validity out of range".into()))?;

        // Proves the key is usable and belongs to the leaf certificate.
        certified_key(chain, &key_pem, &provider())?;

        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            key_pem,
            topic,
            not_after,
        })
    }

    /// The APNs topic (`com.apple.mgmt.External.<uuid>`).
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// When the push certificate expires.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Whether the certificate has expired at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now > self.not_after
    }

    /// The certificate chain, PEM, as given.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PEM, as given.
    pub fn key_pem(&self) -> &Zeroizing<String> {
        &self.key_pem
    }

    /// The chain and key in the form rustls signs with.
    pub(crate) fn certified_key(
        &self,
        provider: &CryptoProvider,
    ) -> Result<CertifiedKey, PushError> {
        certified_key(cert_chain(&self.cert_pem)?, &self.key_pem, provider)
    }
}

impl fmt::Debug for PushCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushCredentials")
            .field("topic", &self.topic)
            .field("not_after", &self.not_after)
            .field("key_pem", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// The crypto provider every TLS object of this crate uses.
pub(crate) fn provider() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

fn cert_chain(cert_pem: &str) -> Result<Vec<CertificateDer<'static>>, PushError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PushError::BadCertificate(format!("PEM: {e}")))?;
    if chain.is_empty() {
        return Err(PushError::NoCertificate);
    }
    Ok(chain)
}

fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key_pem: &str,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, PushError> {
    // The PEM error text never quotes the input.
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| PushError::BadKey(e.to_string()))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => PushError::KeyMismatch,
        other => PushError::BadKey(other.to_string()),
    })
}

fn topic_of(cert: &Certificate) -> Result<String, PushError> {
    let uid = cert
        .tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == UID)
        .ok_or(PushError::NoTopic)?;
    let text = match uid.value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString => {
            std::str::from_utf8(uid.value.value())
                .map_err(|_| PushError::BadCertificate("UID is not text".into()))?
        }
        other => {
            return Err(PushError::BadCertificate(format!(
                "UID has unexpected type {other}"
            )))
        }
    };
    let topic = text.trim();
    // The topic goes into logs, audit records and an HTTP header: printable
    // ASCII only (Apple's are `com.apple.mgmt.External.<uuid>`).
    if !topic.starts_with(MDM_TOPIC_PREFIX)
        || topic.len() == MDM_TOPIC_PREFIX.len()
        || topic.len() > 200
        || !topic.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(PushError::NotMdmTopic(topic.escape_debug().to_string()));
    }
    Ok(topic.to_owned())
}

/// Builds the TLS client configuration used to reach APNs.
pub(crate) fn client_config(
    credentials: &PushCredentials,
    roots: rustls::RootCertStore,
) -> Result<rustls::ClientConfig, PushError> {
    let provider = provider();
    let certified = credentials.certified_key(&provider)?;
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| PushError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}
