//! SignedData: verification, signing (attached/detached) and certs-only.

use std::time::SystemTime;

use cms::cert::IssuerAndSerialNumber;
use cms::content_info::CmsVersion;
use cms::signed_data::SignerIdentifier;
use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef, SetOfVec};
use der::{Any, Decode, Encode, Tag, Tagged};
use mamori_crypto::certs::{parse_cert, ParsedCert};
use mamori_crypto::{verify_signature, DigestAlg, RsaPrivateKey, SignatureAlg};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::time::Time;
use x509_cert::Certificate;

use super::raw::{
    content_info, RawContentInfo, RawEncapContent, RawSet, RawSignedData, RawSignerInfo,
};
use super::{digest_by_oid, digest_oid, oids, PkiError, Result};

/// Result of a successful [`verify_signed_data`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignedData {
    /// The signed content (encapsulated or the supplied detached content).
    pub content: Vec<u8>,
    /// eContentType.
    pub content_type: ObjectIdentifier,
    /// DER of the certificate whose key verified the signature.
    pub signer_cert_der: Vec<u8>,
    /// Signed attributes in received order: OID and DER of the first value.
    pub signed_attrs: Vec<(ObjectIdentifier, Vec<u8>)>,
    /// All certificates carried in the SignedData (DER, received order).
    pub certificates: Vec<Vec<u8>>,
    /// SignerInfo digest algorithm OID (lets callers apply a SHA-1 policy).
    pub digest_oid: ObjectIdentifier,
}

impl VerifiedSignedData {
    /// DER of the first value of the signed attribute `oid`, if present.
    pub fn signed_attr(&self, oid: &ObjectIdentifier) -> Option<&[u8]> {
        find_attr(&self.signed_attrs, oid)
    }
}

fn find_attr<'a>(
    attrs: &'a [(ObjectIdentifier, Vec<u8>)],
    oid: &ObjectIdentifier,
) -> Option<&'a [u8]> {
    attrs
        .iter()
        .find(|(o, _)| o == oid)
        .map(|(_, v)| v.as_slice())
}

/// The certificate (DER) the first SignerInfo of a ContentInfo(SignedData)
/// names, among the embedded ones. Nothing is verified: this lets a server
/// see who claims to have signed a body before the body has arrived (the
/// signature is checked once it has, with [`verify_signed_data`]).
pub fn signer_certificate(der: &[u8]) -> Result<Vec<u8>> {
    let der = super::ber::to_der(der)?;
    let sd: RawSignedData<'_> = content_info(&der, oids::SIGNED_DATA)?.decode_as()?;
    let si_any = sd.signer_infos.0.first().ok_or(PkiError::NoSigner)?;
    let si: RawSignerInfo<'_> = si_any.decode_as()?;
    let certificates = cert_ders(sd.certificates.as_ref())?;
    Ok(find_signer(&certificates, &si.sid)?.der)
}

/// Parses a DER (or BER) ContentInfo(SignedData) and verifies the first SignerInfo
/// against the certificate it identifies (issuerAndSerialNumber or
/// subjectKeyIdentifier) among the embedded certificates.
///
/// `detached_content` must be given iff the SignedData carries no eContent.
/// With signed attributes, the messageDigest (and contentType, if present)
/// are checked and the signature is verified over the attributes' DER SET OF;
/// otherwise over the content. No trust decision is made about the signer.
pub fn verify_signed_data(
    der: &[u8],
    detached_content: Option<&[u8]>,
) -> Result<VerifiedSignedData> {
    let der = super::ber::to_der(der)?;
    let sd: RawSignedData<'_> = content_info(&der, oids::SIGNED_DATA)?.decode_as()?;
    let content = select_content(&sd.encap_content_info, detached_content)?;
    let si_any = sd.signer_infos.0.first().ok_or(PkiError::NoSigner)?;
    let si: RawSignerInfo<'_> = si_any.decode_as()?;
    let certificates = cert_ders(sd.certificates.as_ref())?;
    let signer = find_signer(&certificates, &si.sid)?;

    let (signed_bytes, signed_attrs) = match &si.signed_attrs {
        Some(set) => {
            let attrs = parse_attrs(set)?;
            check_attrs(
                &attrs,
                &si.digest_alg.oid,
                &sd.encap_content_info.econtent_type,
                &content,
            )?;
            (set.to_der()?, attrs)
        }
        None => (content.clone(), Vec::new()),
    };
    let alg = SignatureAlg::from_oids(&si.signature_algorithm.oid, Some(&si.digest_alg.oid))?;
    verify_signature(
        &signer.spki_der,
        alg,
        &signed_bytes,
        si.signature.as_bytes(),
    )
    .map_err(|_| PkiError::BadSignature)?;
    Ok(VerifiedSignedData {
        content,
        content_type: sd.encap_content_info.econtent_type,
        signer_cert_der: signer.der,
        signed_attrs,
        certificates,
        digest_oid: si.digest_alg.oid,
    })
}

fn select_content(encap: &RawEncapContent<'_>, detached: Option<&[u8]>) -> Result<Vec<u8>> {
    match (&encap.econtent, detached) {
        (Some(_), Some(_)) => Err(PkiError::Content(
            "both encapsulated and detached content present",
        )),
        (None, None) => Err(PkiError::Content("no content (detached content required)")),
        (None, Some(d)) => Ok(d.to_vec()),
        (Some(any), None) => {
            if any.tag() != Tag::OctetString {
                return Err(PkiError::Der(format!(
                    "eContent must be a primitive OCTET STRING, found {}",
                    any.tag()
                )));
            }
            Ok(any.value().to_vec())
        }
    }
}

fn cert_ders(set: Option<&RawSet<'_>>) -> Result<Vec<Vec<u8>>> {
    let Some(set) = set else {
        return Ok(Vec::new());
    };
    set.0
        .iter()
        .filter(|c| c.tag() == Tag::Sequence)
        .map(|c| c.to_der().map_err(PkiError::from))
        .collect()
}

fn find_signer(certs: &[Vec<u8>], sid: &SignerIdentifier) -> Result<ParsedCert> {
    let (issuer, serial, ski) = match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => (
            Some(ias.issuer.to_der()?),
            Some(ias.serial_number.as_bytes()),
            None,
        ),
        SignerIdentifier::SubjectKeyIdentifier(ski) => (None, None, Some(ski.0.as_bytes())),
    };
    certs
        .iter()
        .filter_map(|der| parse_cert(der).ok())
        .find(|c| match (&issuer, serial, ski) {
            (Some(i), Some(s), _) => c.issuer_der == *i && c.serial == s,
            (_, _, Some(k)) => c.subject_key_id.as_deref() == Some(k),
            _ => false,
        })
        .ok_or(PkiError::SignerCertNotFound)
}

/// Decodes signed attributes (OID + DER of first value), rejecting duplicates.
fn parse_attrs(set: &RawSet<'_>) -> Result<Vec<(ObjectIdentifier, Vec<u8>)>> {
    let mut out: Vec<(ObjectIdentifier, Vec<u8>)> = Vec::with_capacity(set.0.len());
    for item in &set.0 {
        let attr: Attribute = item.decode_as()?;
        if out.iter().any(|(o, _)| *o == attr.oid) {
            return Err(PkiError::InvalidAttribute(format!(
                "duplicate {}",
                attr.oid
            )));
        }
        let first = attr
            .values
            .iter()
            .next()
            .ok_or_else(|| PkiError::InvalidAttribute(format!("{} has no value", attr.oid)))?;
        out.push((attr.oid, first.to_der()?));
    }
    Ok(out)
}

fn check_attrs(
    attrs: &[(ObjectIdentifier, Vec<u8>)],
    digest_alg: &ObjectIdentifier,
    content_type: &ObjectIdentifier,
    content: &[u8],
) -> Result<()> {
    let md = find_attr(attrs, &oids::MESSAGE_DIGEST)
        .ok_or(PkiError::MissingAttribute("messageDigest"))?;
    let md = OctetStringRef::from_der(md)?;
    if md.as_bytes() != digest_by_oid(digest_alg, content)? {
        return Err(PkiError::DigestMismatch);
    }
    if let Some(ct) = find_attr(attrs, &oids::CONTENT_TYPE) {
        if ObjectIdentifier::from_der(ct)? != *content_type {
            return Err(PkiError::InvalidAttribute("contentType mismatch".into()));
        }
    }
    Ok(())
}

/// Inputs of [`build_signed`].
pub(crate) struct SignParams<'a> {
    pub content: &'a [u8],
    pub detached: bool,
    pub content_type: ObjectIdentifier,
    pub signer_cert_der: &'a [u8],
    pub digest: DigestAlg,
    pub extra_signed_attrs: &'a [(ObjectIdentifier, Any)],
    pub extra_certs: &'a [Vec<u8>],
}

/// Signature callback: PKCS#1 v1.5 signature over the given bytes with the
/// digest in [`SignParams::digest`].
pub(crate) type SignFn<'a> = &'a dyn Fn(&[u8]) -> mamori_crypto::Result<Vec<u8>>;

/// Builds ContentInfo(SignedData) with one SignerInfo (issuerAndSerialNumber,
/// rsaEncryption) and signed attributes contentType, messageDigest, signingTime
/// plus extras. The signer certificate and `extra_certs` are included.
pub(crate) fn build_signed(p: &SignParams<'_>, sign: SignFn<'_>) -> Result<Vec<u8>> {
    let signer = Certificate::from_der(p.signer_cert_der)?;
    let digest_oid = digest_oid(p.digest);
    let digest = digest_by_oid(&digest_oid, p.content)?;

    let mut attr_ders = vec![
        attr_der(oids::CONTENT_TYPE, Any::encode_from(&p.content_type)?)?,
        attr_der(
            oids::MESSAGE_DIGEST,
            Any::encode_from(&OctetStringRef::new(&digest)?)?,
        )?,
        attr_der(
            oids::SIGNING_TIME,
            Any::encode_from(&Time::try_from(SystemTime::now())?)?,
        )?,
    ];
    for (oid, value) in p.extra_signed_attrs {
        attr_ders.push(attr_der(*oid, value.clone())?);
    }
    let attrs = RawSet::sorted_from_ders(&mut attr_ders)?;
    let signature = sign(&attrs.to_der()?)?;

    let digest_alg = AlgorithmIdentifierOwned {
        oid: digest_oid,
        parameters: None,
    };
    let si = RawSignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: signer.tbs_certificate.issuer.clone(),
            serial_number: signer.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: digest_alg.clone(),
        signed_attrs: Some(attrs),
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: oids::RSA_ENCRYPTION,
            parameters: Some(Any::from(der::asn1::Null)),
        },
        signature: OctetStringRef::new(&signature)?,
        unsigned_attrs: None,
    }
    .to_der()?;

    let econtent = OctetStringRef::new(p.content)?.to_der()?;
    let mut certs = vec![p.signer_cert_der.to_vec()];
    for c in p.extra_certs {
        if !certs.contains(c) {
            certs.push(c.clone());
        }
    }
    let version = if p.content_type == oids::DATA {
        CmsVersion::V1
    } else {
        CmsVersion::V3
    };
    let digest_algs = [digest_alg.to_der()?];
    let signer_infos = [si];
    let sd = RawSignedData {
        version,
        digest_algorithms: RawSet::from_ders(&digest_algs)?,
        encap_content_info: RawEncapContent {
            econtent_type: p.content_type,
            econtent: if p.detached {
                None
            } else {
                Some(AnyRef::from_der(&econtent)?)
            },
        },
        certificates: Some(RawSet::from_ders(&certs)?),
        crls: None,
        signer_infos: RawSet::from_ders(&signer_infos)?,
    };
    wrap_signed_data(&sd)
}

fn attr_der(oid: ObjectIdentifier, value: Any) -> Result<Vec<u8>> {
    let values = SetOfVec::try_from(vec![value])?;
    Ok(Attribute { oid, values }.to_der()?)
}

fn wrap_signed_data(sd: &RawSignedData<'_>) -> Result<Vec<u8>> {
    let sd_der = sd.to_der()?;
    Ok(RawContentInfo {
        content_type: oids::SIGNED_DATA,
        content: AnyRef::from_der(&sd_der)?,
    }
    .to_der()?)
}

/// Signs `content` with `key` and returns ContentInfo(SignedData) with the
/// content encapsulated. `digest` selects the message digest and the RSA
/// PKCS#1 v1.5 hash (SHA-1 signing is unavailable, see
/// [`RsaPrivateKey::sign_pkcs1`]).
pub fn sign_attached(
    content: &[u8],
    content_type: ObjectIdentifier,
    signer_cert_der: &[u8],
    key: &RsaPrivateKey,
    digest: DigestAlg,
    extra_signed_attrs: &[(ObjectIdentifier, Any)],
    extra_certs: &[Vec<u8>],
) -> Result<Vec<u8>> {
    sign_impl(
        content,
        false,
        content_type,
        signer_cert_der,
        key,
        digest,
        extra_signed_attrs,
        extra_certs,
    )
}

/// Like [`sign_attached`] but the eContent is omitted (detached signature,
/// e.g. the `Mdm-Signature` header).
pub fn sign_detached(
    content: &[u8],
    content_type: ObjectIdentifier,
    signer_cert_der: &[u8],
    key: &RsaPrivateKey,
    digest: DigestAlg,
    extra_signed_attrs: &[(ObjectIdentifier, Any)],
    extra_certs: &[Vec<u8>],
) -> Result<Vec<u8>> {
    sign_impl(
        content,
        true,
        content_type,
        signer_cert_der,
        key,
        digest,
        extra_signed_attrs,
        extra_certs,
    )
}

#[allow(clippy::too_many_arguments)]
fn sign_impl(
    content: &[u8],
    detached: bool,
    content_type: ObjectIdentifier,
    signer_cert_der: &[u8],
    key: &RsaPrivateKey,
    digest: DigestAlg,
    extra_signed_attrs: &[(ObjectIdentifier, Any)],
    extra_certs: &[Vec<u8>],
) -> Result<Vec<u8>> {
    let params = SignParams {
        content,
        detached,
        content_type,
        signer_cert_der,
        digest,
        extra_signed_attrs,
        extra_certs,
    };
    build_signed(&params, &|data| key.sign_pkcs1(digest, data))
}

/// A certs-only SignedData (no signers, no content) carrying `certs` in the
/// given order, as used by SCEP GetCACert and CertRep.
pub fn degenerate_certs_only(certs: &[Vec<u8>]) -> Result<Vec<u8>> {
    let set = RawSet::from_ders(certs)?;
    if set.0.iter().any(|c| c.tag() != Tag::Sequence) {
        return Err(PkiError::Der("certificate is not a SEQUENCE".into()));
    }
    let sd = RawSignedData {
        version: CmsVersion::V1,
        digest_algorithms: RawSet::default(),
        encap_content_info: RawEncapContent {
            econtent_type: oids::DATA,
            econtent: None,
        },
        certificates: Some(set),
        crls: None,
        signer_infos: RawSet::default(),
    };
    wrap_signed_data(&sd)
}

/// The certificates (DER, in order) of a ContentInfo(SignedData), typically a
/// certs-only one. Signatures, if any, are not checked.
pub fn certs_from_degenerate(der: &[u8]) -> Result<Vec<Vec<u8>>> {
    let der = super::ber::to_der(der)?;
    let sd: RawSignedData<'_> = content_info(&der, oids::SIGNED_DATA)?.decode_as()?;
    cert_ders(sd.certificates.as_ref())
}
