//! EnvelopedData with RSA PKCS#1 v1.5 key transport and CBC content ciphers.

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{
    EncryptedContentInfo, EnvelopedData, KeyTransRecipientInfo, RecipientIdentifier, RecipientInfo,
    RecipientInfos,
};
use der::asn1::{ObjectIdentifier, OctetString, OctetStringRef};
use der::{Any, Decode, Encode};
use mamori_crypto::certs::{parse_cert, ParsedCert};
use mamori_crypto::{encrypt_pkcs1v15, try_random_bytes, CryptoError};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use super::raw::{content_info, RawEnvelopedData};
use super::{oids, PkiError, Result};

/// Content-encryption algorithms supported in EnvelopedData (all CBC with
/// PKCS#7 padding; the IV is the algorithm parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentEncryptionAlg {
    /// Single DES (legacy SCEP clients; refusable by policy).
    DesCbc,
    /// Triple DES (EDE3).
    DesEde3Cbc,
    /// AES-128.
    Aes128Cbc,
    /// AES-192.
    Aes192Cbc,
    /// AES-256.
    Aes256Cbc,
}

impl ContentEncryptionAlg {
    /// The algorithm OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::DesCbc => oids::DES_CBC,
            Self::DesEde3Cbc => oids::DES_EDE3_CBC,
            Self::Aes128Cbc => oids::AES128_CBC,
            Self::Aes192Cbc => oids::AES192_CBC,
            Self::Aes256Cbc => oids::AES256_CBC,
        }
    }

    /// Maps an OID to an algorithm.
    pub fn from_oid(oid: &ObjectIdentifier) -> Result<Self> {
        Ok(match *oid {
            oids::DES_CBC => Self::DesCbc,
            oids::DES_EDE3_CBC => Self::DesEde3Cbc,
            oids::AES128_CBC => Self::Aes128Cbc,
            oids::AES192_CBC => Self::Aes192Cbc,
            oids::AES256_CBC => Self::Aes256Cbc,
            other => {
                return Err(PkiError::UnsupportedAlgorithm(format!(
                    "content encryption {other}"
                )))
            }
        })
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::DesCbc => 8,
            Self::DesEde3Cbc | Self::Aes192Cbc => 24,
            Self::Aes128Cbc => 16,
            Self::Aes256Cbc => 32,
        }
    }

    /// Block (and IV) length in bytes.
    pub fn block_len(self) -> usize {
        match self {
            Self::DesCbc | Self::DesEde3Cbc => 8,
            _ => 16,
        }
    }

    fn is_des(self) -> bool {
        matches!(self, Self::DesCbc | Self::DesEde3Cbc)
    }

    fn decrypt(self, key: &[u8], iv: &[u8], ct: &[u8]) -> Result<Vec<u8>> {
        fn run<C: BlockDecryptMut + KeyIvInit>(k: &[u8], iv: &[u8], ct: &[u8]) -> Result<Vec<u8>> {
            C::new_from_slices(k, iv)
                .map_err(|_| PkiError::Decryption)?
                .decrypt_padded_vec_mut::<Pkcs7>(ct)
                .map_err(|_| PkiError::Decryption)
        }
        match self {
            Self::DesCbc => run::<cbc::Decryptor<des::Des>>(key, iv, ct),
            Self::DesEde3Cbc => run::<cbc::Decryptor<des::TdesEde3>>(key, iv, ct),
            Self::Aes128Cbc => run::<cbc::Decryptor<aes::Aes128>>(key, iv, ct),
            Self::Aes192Cbc => run::<cbc::Decryptor<aes::Aes192>>(key, iv, ct),
            Self::Aes256Cbc => run::<cbc::Decryptor<aes::Aes256>>(key, iv, ct),
        }
    }

    fn encrypt(self, key: &[u8], iv: &[u8], pt: &[u8]) -> Result<Vec<u8>> {
        fn run<C: BlockEncryptMut + KeyIvInit>(k: &[u8], iv: &[u8], pt: &[u8]) -> Result<Vec<u8>> {
            Ok(C::new_from_slices(k, iv)
                .map_err(|_| PkiError::UnsupportedAlgorithm("bad key/IV length".into()))?
                .encrypt_padded_vec_mut::<Pkcs7>(pt))
        }
        match self {
            Self::DesCbc => run::<cbc::Encryptor<des::Des>>(key, iv, pt),
            Self::DesEde3Cbc => run::<cbc::Encryptor<des::TdesEde3>>(key, iv, pt),
            Self::Aes128Cbc => run::<cbc::Encryptor<aes::Aes128>>(key, iv, pt),
            Self::Aes192Cbc => run::<cbc::Encryptor<aes::Aes192>>(key, iv, pt),
            Self::Aes256Cbc => run::<cbc::Encryptor<aes::Aes256>>(key, iv, pt),
        }
    }
}

/// Decrypts a DER (or BER) ContentInfo(EnvelopedData) addressed to
/// `recipient_cert_der`.
///
/// Only the KeyTransRecipientInfo whose issuerAndSerialNumber (or subject key
/// identifier) matches the recipient certificate is used; other recipients are
/// never tried. The content-encryption key is recovered through `decrypt_key`
/// (RSA PKCS#1 v1.5, e.g. `|ct| ra_key.decrypt_pkcs1v15(ct)`). Key-transport
/// failures are not reported separately from content failures (implicit
/// rejection with a random key), so the result is no padding oracle.
/// With `allow_single_des == false`, DES-CBC content is refused up front.
pub fn decrypt_enveloped<F>(
    der: &[u8],
    recipient_cert_der: &[u8],
    allow_single_des: bool,
    decrypt_key: F,
) -> Result<(Vec<u8>, ContentEncryptionAlg)>
where
    F: Fn(&[u8]) -> std::result::Result<Zeroizing<Vec<u8>>, CryptoError>,
{
    let der = super::ber::to_der(der)?;
    let ed: RawEnvelopedData<'_> = content_info(&der, oids::ENVELOPED_DATA)?.decode_as()?;
    let recipient = parse_cert(recipient_cert_der)?;
    let ktri = find_recipient(&ed.recip_infos, &recipient)?;
    if ktri.key_enc_alg.oid != oids::RSA_ENCRYPTION {
        return Err(PkiError::UnsupportedAlgorithm(format!(
            "key transport {}",
            ktri.key_enc_alg.oid
        )));
    }
    let eci = &ed.encrypted_content;
    let alg = ContentEncryptionAlg::from_oid(&eci.content_enc_alg.oid)?;
    if alg == ContentEncryptionAlg::DesCbc && !allow_single_des {
        return Err(PkiError::SingleDesRefused);
    }
    let iv = iv_param(&eci.content_enc_alg, alg)?;
    let ct = super::ber::implicit_octets(
        eci.encrypted_content
            .as_ref()
            .ok_or(PkiError::Content("EnvelopedData has no encryptedContent"))?,
    )?;
    if ct.is_empty() || ct.len() % alg.block_len() != 0 {
        return Err(PkiError::Decryption);
    }

    // Implicit rejection: on RSA failure continue with a random key and fail later.
    let (key, rsa_ok) = match decrypt_key(ktri.enc_key.as_bytes()) {
        Ok(k) if k.len() == alg.key_len() => (k, true),
        _ => (Zeroizing::new(try_random_bytes(alg.key_len())?), false),
    };
    let plain = alg.decrypt(&key, &iv, &ct);
    match plain {
        Ok(p) if rsa_ok => Ok((p, alg)),
        _ => Err(PkiError::Decryption),
    }
}

fn find_recipient<'a>(
    infos: &'a RecipientInfos,
    cert: &ParsedCert,
) -> Result<&'a KeyTransRecipientInfo> {
    for info in infos.0.iter() {
        let RecipientInfo::Ktri(ktri) = info else {
            continue;
        };
        let matches = match &ktri.rid {
            RecipientIdentifier::IssuerAndSerialNumber(ias) => {
                ias.issuer.to_der()? == cert.issuer_der
                    && ias.serial_number.as_bytes() == cert.serial
            }
            RecipientIdentifier::SubjectKeyIdentifier(ski) => {
                cert.subject_key_id.as_deref() == Some(ski.0.as_bytes())
            }
        };
        if matches {
            return Ok(ktri);
        }
    }
    Err(PkiError::NoMatchingRecipient)
}

fn iv_param(alg_id: &AlgorithmIdentifierOwned, alg: ContentEncryptionAlg) -> Result<Vec<u8>> {
    let iv = alg_id
        .parameters
        .as_ref()
        .ok_or_else(|| PkiError::UnsupportedAlgorithm("content cipher without IV".into()))?
        .decode_as::<OctetString>()?;
    if iv.as_bytes().len() != alg.block_len() {
        return Err(PkiError::UnsupportedAlgorithm(
            "IV has the wrong length".into(),
        ));
    }
    Ok(iv.as_bytes().to_vec())
}

/// Encrypts `content` to the RSA key of `recipient_cert_der`: ContentInfo(
/// EnvelopedData v0) with one KeyTransRecipientInfo (issuerAndSerialNumber,
/// rsaEncryption), a fresh random key and IV.
pub fn encrypt_enveloped(
    content: &[u8],
    recipient_cert_der: &[u8],
    alg: ContentEncryptionAlg,
) -> Result<Vec<u8>> {
    let cert = Certificate::from_der(recipient_cert_der)?;
    let spki = cert.tbs_certificate.subject_public_key_info.to_der()?;
    let mut key = Zeroizing::new(try_random_bytes(alg.key_len())?);
    if alg.is_des() {
        set_odd_parity(&mut key);
    }
    let iv = try_random_bytes(alg.block_len())?;
    let ciphertext = alg.encrypt(&key, &iv, content)?;
    let enc_key = encrypt_pkcs1v15(&spki, &key)?;

    let ktri = KeyTransRecipientInfo {
        version: CmsVersion::V0,
        rid: RecipientIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: cert.tbs_certificate.issuer.clone(),
            serial_number: cert.tbs_certificate.serial_number.clone(),
        }),
        key_enc_alg: AlgorithmIdentifierOwned {
            oid: oids::RSA_ENCRYPTION,
            parameters: Some(Any::from(der::asn1::Null)),
        },
        enc_key: OctetString::new(enc_key)?,
    };
    let ed = EnvelopedData {
        version: CmsVersion::V0,
        originator_info: None,
        recip_infos: RecipientInfos::try_from(vec![RecipientInfo::Ktri(ktri)])?,
        encrypted_content: EncryptedContentInfo {
            content_type: oids::DATA,
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: alg.oid(),
                parameters: Some(Any::encode_from(&OctetStringRef::new(&iv)?)?),
            },
            encrypted_content: Some(OctetString::new(ciphertext)?),
        },
        unprotected_attrs: None,
    };
    Ok(ContentInfo {
        content_type: oids::ENVELOPED_DATA,
        content: Any::encode_from(&ed)?,
    }
    .to_der()?)
}

/// Sets odd parity on each DES key byte (RFC 1423 / FIPS 46-3 convention).
fn set_odd_parity(key: &mut [u8]) {
    for b in key.iter_mut() {
        let high = *b & 0xfe;
        *b = high | u8::from(high.count_ones() % 2 == 0);
    }
}
