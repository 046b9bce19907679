//! SCEP (RFC 8894) pkiMessage handling on top of [`crate::cms`].
//!
//! Server side: [`parse_pki_message`], then (outside this module) decrypt the
//! envelope with [`crate::cms::decrypt_enveloped`] and the RA key, parse the
//! CSR with [`crate::csr::parse_csr`], issue, and answer with
//! [`build_cert_rep_success`] / [`build_cert_rep_failure`].
//! Client side (device simulator): [`build_pki_request`], [`parse_cert_rep`].

use der::asn1::{ObjectIdentifier, OctetStringRef, PrintableStringRef};
use der::{Any, Decode, Tag, Tagged};
use mamori_crypto::{random_bytes, DigestAlg, RsaPrivateKey};

use crate::cms::{
    certs_from_degenerate, decrypt_enveloped, encrypt_enveloped, oids as cms_oids, sign_attached,
    verify_signed_data, ContentEncryptionAlg, PkiError, Result, VerifiedSignedData,
};

/// GetCACaps response body: one capability per line.
pub const CA_CAPS: &str = "AES\nSHA-256\nSHA-1\nDES3\nPOSTPKIOperation\nSCEPStandard\nRenewal\n";

/// Nonce length used for generated senderNonce values.
const NONCE_LEN: usize = 16;
/// Upper bound accepted for a transactionID.
const MAX_TRANSACTION_ID: usize = 256;

/// SCEP attribute OIDs (2.16.840.1.113733.1.9.*).
pub mod oids {
    use der::asn1::ObjectIdentifier as Oid;

    /// messageType (PrintableString).
    pub const MESSAGE_TYPE: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.2");
    /// pkiStatus (PrintableString).
    pub const PKI_STATUS: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.3");
    /// failInfo (PrintableString).
    pub const FAIL_INFO: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.4");
    /// senderNonce (OCTET STRING).
    pub const SENDER_NONCE: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.5");
    /// recipientNonce (OCTET STRING).
    pub const RECIPIENT_NONCE: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.6");
    /// transactionID (PrintableString).
    pub const TRANSACTION_ID: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.7");
}

/// SCEP messageType values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// CertRep (3).
    CertRep,
    /// RenewalReq (17).
    RenewalReq,
    /// PKCSReq (19).
    PkcsReq,
    /// GetCertInitial / CertPoll (20).
    GetCertInitial,
    /// GetCert (21).
    GetCert,
    /// GetCRL (22).
    GetCrl,
}

impl MessageType {
    /// Numeric code.
    pub fn code(self) -> u32 {
        match self {
            Self::CertRep => 3,
            Self::RenewalReq => 17,
            Self::PkcsReq => 19,
            Self::GetCertInitial => 20,
            Self::GetCert => 21,
            Self::GetCrl => 22,
        }
    }

    /// From the numeric code.
    pub fn from_code(code: u32) -> Option<Self> {
        [
            Self::CertRep,
            Self::RenewalReq,
            Self::PkcsReq,
            Self::GetCertInitial,
            Self::GetCert,
            Self::GetCrl,
        ]
        .into_iter()
        .find(|m| m.code() == code)
    }
}

/// SCEP pkiStatus values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PkiStatus {
    /// SUCCESS (0).
    Success,
    /// FAILURE (2).
    Failure,
    /// PENDING (3).
    Pending,
}

impl PkiStatus {
    /// Numeric code.
    pub fn code(self) -> u32 {
        match self {
            Self::Success => 0,
            Self::Failure => 2,
            Self::Pending => 3,
        }
    }
}

/// SCEP failInfo values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailInfo {
    /// badAlg (0).
    BadAlg,
    /// badMessageCheck (1).
    BadMessageCheck,
    /// badRequest (2).
    BadRequest,
    /// badTime (3).
    BadTime,
    /// badCertId (4).
    BadCertId,
}

impl FailInfo {
    /// Numeric code.
    pub fn code(self) -> u32 {
        match self {
            Self::BadAlg => 0,
            Self::BadMessageCheck => 1,
            Self::BadRequest => 2,
            Self::BadTime => 3,
            Self::BadCertId => 4,
        }
    }

    /// From the numeric code.
    pub fn from_code(code: u32) -> Option<Self> {
        [
            Self::BadAlg,
            Self::BadMessageCheck,
            Self::BadRequest,
            Self::BadTime,
            Self::BadCertId,
        ]
        .into_iter()
        .find(|f| f.code() == code)
    }
}

/// A verified SCEP request (the outer signature checked against the embedded
/// signer certificate; whether that signer is trusted is the caller's call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiMessage {
    /// messageType.
    pub message_type: MessageType,
    /// transactionID.
    pub transaction_id: String,
    /// senderNonce.
    pub sender_nonce: Vec<u8>,
    /// Certificate that signed the request (self-signed for PKCSReq).
    pub signer_cert_der: Vec<u8>,
    /// The encapsulated ContentInfo(EnvelopedData) DER.
    pub enveloped_der: Vec<u8>,
    /// Digest algorithm OID the client used.
    pub digest_oid: ObjectIdentifier,
}

fn scep_err(msg: impl Into<String>) -> PkiError {
    PkiError::Scep(msg.into())
}

/// Text value (PrintableString, UTF8String or IA5String) of an attribute.
fn text_attr(v: &VerifiedSignedData, oid: &ObjectIdentifier, name: &'static str) -> Result<String> {
    let der = v.signed_attr(oid).ok_or(PkiError::MissingAttribute(name))?;
    let any = Any::from_der(der)?;
    match any.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String => std::str::from_utf8(any.value())
            .map(str::to_owned)
            .map_err(|_| scep_err(format!("{name} is not text"))),
        other => Err(scep_err(format!("{name} has unexpected type {other}"))),
    }
}

fn number_attr(v: &VerifiedSignedData, oid: &ObjectIdentifier, name: &'static str) -> Result<u32> {
    text_attr(v, oid, name)?
        .trim()
        .parse()
        .map_err(|_| scep_err(format!("{name} is not a number")))
}

fn nonce_attr(
    v: &VerifiedSignedData,
    oid: &ObjectIdentifier,
    name: &'static str,
) -> Result<Vec<u8>> {
    let der = v.signed_attr(oid).ok_or(PkiError::MissingAttribute(name))?;
    let nonce = OctetStringRef::from_der(der)?.as_bytes().to_vec();
    if nonce.is_empty() || nonce.len() > 64 {
        return Err(scep_err(format!(
            "{name} has invalid length {}",
            nonce.len()
        )));
    }
    Ok(nonce)
}

fn message_type(v: &VerifiedSignedData) -> Result<MessageType> {
    let code = number_attr(v, &oids::MESSAGE_TYPE, "messageType")?;
    MessageType::from_code(code).ok_or_else(|| scep_err(format!("unknown messageType {code}")))
}

/// Parses and verifies a SCEP request pkiMessage (PKCSReq, RenewalReq,
/// GetCertInitial, GetCert, GetCRL).
pub fn parse_pki_message(der: &[u8]) -> Result<PkiMessage> {
    let v = verify_signed_data(der, None)?;
    if v.content_type != cms_oids::DATA {
        return Err(PkiError::UnexpectedContentType(v.content_type.to_string()));
    }
    let message_type = message_type(&v)?;
    if message_type == MessageType::CertRep {
        return Err(scep_err("CertRep is not a request"));
    }
    // Everything the reply echoes or needs is checked here, so that any
    // parsed request can be answered: a server that issues first and builds
    // the CertRep afterwards must not find out then that it cannot.
    let transaction_id = text_attr(&v, &oids::TRANSACTION_ID, "transactionID")?;
    check_transaction_id(&transaction_id)?;
    let sender_nonce = nonce_attr(&v, &oids::SENDER_NONCE, "senderNonce")?;
    if v.content.is_empty() {
        return Err(PkiError::Content("request has empty content"));
    }
    check_reply_recipient(&v.signer_cert_der)?;
    Ok(PkiMessage {
        message_type,
        transaction_id,
        sender_nonce,
        signer_cert_der: v.signer_cert_der,
        enveloped_der: v.content,
        digest_oid: v.digest_oid,
    })
}

/// A transactionID the CertRep can echo: RFC 8894 makes it a
/// PrintableString (1 to [`MAX_TRANSACTION_ID`] characters, none of them a
/// control character).
fn check_transaction_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_TRANSACTION_ID || PrintableStringRef::new(id).is_err() {
        return Err(PkiError::TransactionId(id.to_owned()));
    }
    Ok(())
}

/// The reply is encrypted to the request's signer certificate (RSA key
/// transport): its key must take that, which a trial encryption shows.
fn check_reply_recipient(signer_cert_der: &[u8]) -> Result<()> {
    // Read as `encrypt_enveloped` reads it.
    let cert = x509_cert::Certificate::from_der(signer_cert_der)?;
    let spki = der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info)?;
    mamori_crypto::encrypt_pkcs1v15(&spki, &[0u8; 32])
        .map(drop)
        .map_err(|_| {
            PkiError::UnsupportedAlgorithm(
                "the signer's key cannot receive the reply (RSA key transport)".into(),
            )
        })
}

fn printable(s: &str) -> Result<Any> {
    Ok(Any::encode_from(&PrintableStringRef::new(s)?)?)
}

/// A transactionID as a client sends it: a PrintableString, as RFC 8894
/// demands; text outside that alphabet goes as a UTF8String (some clients
/// do that; a server refuses it, which is how tests send one).
fn transaction_id_attr(s: &str) -> Result<Any> {
    match PrintableStringRef::new(s) {
        Ok(p) => Ok(Any::encode_from(&p)?),
        Err(_) => Ok(Any::encode_from(&der::asn1::Utf8StringRef::new(s)?)?),
    }
}

fn octets(b: &[u8]) -> Result<Any> {
    Ok(Any::encode_from(&OctetStringRef::new(b)?)?)
}

/// Signed attributes of a CertRep answering `req`.
fn cert_rep_attrs(
    req: &PkiMessage,
    status: PkiStatus,
    fail: Option<FailInfo>,
) -> Result<Vec<(ObjectIdentifier, Any)>> {
    let mut attrs = vec![
        (
            oids::MESSAGE_TYPE,
            printable(&MessageType::CertRep.code().to_string())?,
        ),
        (oids::PKI_STATUS, printable(&status.code().to_string())?),
        (oids::TRANSACTION_ID, printable(&req.transaction_id)?),
        (oids::RECIPIENT_NONCE, octets(&req.sender_nonce)?),
        (oids::SENDER_NONCE, octets(&random_bytes(NONCE_LEN))?),
    ];
    if let Some(f) = fail {
        attrs.push((oids::FAIL_INFO, printable(&f.code().to_string())?));
    }
    Ok(attrs)
}

/// CertRep SUCCESS: the issued certificate in a certs-only SignedData,
/// encrypted to the request's signer certificate with `enc_alg` (use the
/// algorithm the request used), wrapped in SignedData signed by the RA
/// (SHA-256) carrying the RA certificate.
pub fn build_cert_rep_success(
    req: &PkiMessage,
    issued_cert_der: &[u8],
    enc_alg: ContentEncryptionAlg,
    ra_cert_der: &[u8],
    ra_key: &RsaPrivateKey,
) -> Result<Vec<u8>> {
    let degenerate = crate::cms::degenerate_certs_only(&[issued_cert_der.to_vec()])?;
    let enveloped = encrypt_enveloped(&degenerate, &req.signer_cert_der, enc_alg)?;
    let attrs = cert_rep_attrs(req, PkiStatus::Success, None)?;
    sign_attached(
        &enveloped,
        cms_oids::DATA,
        ra_cert_der,
        ra_key,
        DigestAlg::Sha256,
        &attrs,
        &[],
    )
}

/// CertRep FAILURE with `fail_info` (signed over empty data content).
pub fn build_cert_rep_failure(
    req: &PkiMessage,
    fail_info: FailInfo,
    ra_cert_der: &[u8],
    ra_key: &RsaPrivateKey,
) -> Result<Vec<u8>> {
    let attrs = cert_rep_attrs(req, PkiStatus::Failure, Some(fail_info))?;
    sign_attached(
        &[],
        cms_oids::DATA,
        ra_cert_der,
        ra_key,
        DigestAlg::Sha256,
        &attrs,
        &[],
    )
}

/// CertRep PENDING (signed over empty data content).
pub fn build_cert_rep_pending(
    req: &PkiMessage,
    ra_cert_der: &[u8],
    ra_key: &RsaPrivateKey,
) -> Result<Vec<u8>> {
    let attrs = cert_rep_attrs(req, PkiStatus::Pending, None)?;
    sign_attached(
        &[],
        cms_oids::DATA,
        ra_cert_der,
        ra_key,
        DigestAlg::Sha256,
        &attrs,
        &[],
    )
}

/// Client side: builds a PKCSReq/RenewalReq pkiMessage carrying `csr_der`
/// encrypted to `recipient_cert_der` (the RA) and signed by `signer_key`
/// (whose certificate is `signer_cert_der`).
#[allow(clippy::too_many_arguments)]
pub fn build_pki_request(
    message_type: MessageType,
    csr_der: &[u8],
    signer_cert_der: &[u8],
    signer_key: &RsaPrivateKey,
    recipient_cert_der: &[u8],
    enc_alg: ContentEncryptionAlg,
    digest: DigestAlg,
    transaction_id: &str,
) -> Result<Vec<u8>> {
    let req = RequestParams {
        message_type,
        csr_der,
        signer_cert_der,
        recipient_cert_der,
        enc_alg,
        digest,
        transaction_id,
    };
    build_request_with(&req, &|data| signer_key.sign_pkcs1(digest, data))
}

/// Inputs of [`build_request_with`].
pub(crate) struct RequestParams<'a> {
    pub message_type: MessageType,
    pub csr_der: &'a [u8],
    pub signer_cert_der: &'a [u8],
    pub recipient_cert_der: &'a [u8],
    pub enc_alg: ContentEncryptionAlg,
    pub digest: DigestAlg,
    pub transaction_id: &'a str,
}

/// [`build_pki_request`] with an arbitrary PKCS#1 v1.5 signing callback.
pub(crate) fn build_request_with(
    p: &RequestParams<'_>,
    sign: crate::cms::SignFn<'_>,
) -> Result<Vec<u8>> {
    let enveloped = encrypt_enveloped(p.csr_der, p.recipient_cert_der, p.enc_alg)?;
    let attrs = [
        (
            oids::MESSAGE_TYPE,
            printable(&p.message_type.code().to_string())?,
        ),
        (oids::TRANSACTION_ID, transaction_id_attr(p.transaction_id)?),
        (oids::SENDER_NONCE, octets(&random_bytes(NONCE_LEN))?),
    ];
    let params = crate::cms::SignParams {
        content: &enveloped,
        detached: false,
        content_type: cms_oids::DATA,
        signer_cert_der: p.signer_cert_der,
        digest: p.digest,
        extra_signed_attrs: &attrs,
        extra_certs: &[],
    };
    crate::cms::build_signed(&params, sign)
}

/// Outcome of a CertRep, as seen by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertRepOutcome {
    /// Certificate issued.
    Success {
        /// The issued certificate (DER).
        cert_der: Vec<u8>,
    },
    /// Request rejected.
    Failure {
        /// Reason.
        fail_info: FailInfo,
    },
    /// Request pending manual approval.
    Pending,
}

/// Client side: verifies a CertRep and, on success, decrypts the issued
/// certificate with `key` (the key of `signer_cert_der_of_request`, to which
/// the server encrypted the reply).
pub fn parse_cert_rep(
    der: &[u8],
    signer_cert_der_of_request: &[u8],
    key: &RsaPrivateKey,
) -> Result<CertRepOutcome> {
    let v = match verify_signed_data(der, None) {
        Err(PkiError::Content(_)) => verify_signed_data(der, Some(&[]))?,
        other => other?,
    };
    if message_type(&v)? != MessageType::CertRep {
        return Err(scep_err("not a CertRep"));
    }
    match number_attr(&v, &oids::PKI_STATUS, "pkiStatus")? {
        0 => {
            let (degenerate, _) =
                decrypt_enveloped(&v.content, signer_cert_der_of_request, true, |ct| {
                    key.decrypt_pkcs1v15(ct)
                })?;
            let certs = certs_from_degenerate(&degenerate)?;
            let spki = key.public_key_spki_der();
            let ours = certs
                .iter()
                .find(|c| mamori_crypto::certs::parse_cert(c).is_ok_and(|p| p.spki_der == spki));
            let cert_der = ours
                .or_else(|| certs.first())
                .cloned()
                .ok_or_else(|| scep_err("CertRep carries no certificate"))?;
            Ok(CertRepOutcome::Success { cert_der })
        }
        2 => {
            let code = number_attr(&v, &oids::FAIL_INFO, "failInfo")?;
            let fail_info = FailInfo::from_code(code)
                .ok_or_else(|| scep_err(format!("unknown failInfo {code}")))?;
            Ok(CertRepOutcome::Failure { fail_info })
        }
        3 => Ok(CertRepOutcome::Pending),
        other => Err(scep_err(format!("unknown pkiStatus {other}"))),
    }
}

#[cfg(test)]
mod tests;
