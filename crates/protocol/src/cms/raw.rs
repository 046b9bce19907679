//! Byte-preserving ASN.1 views of CMS structures.
//!
//! `der`'s `SetOfVec` sorts on decode, which would change the bytes a
//! signature covers; these types keep SET OF elements exactly as received.

use cms::content_info::CmsVersion;
use cms::signed_data::SignerIdentifier;
use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef};
use der::{
    Decode, DecodeValue, Encode, EncodeValue, FixedTag, Header, Length, Reader, Sequence, Tag,
    Writer,
};
use spki::AlgorithmIdentifierOwned;

/// A SET OF whose elements are kept as raw TLVs in their original order.
#[derive(Clone, Debug, Default)]
pub(crate) struct RawSet<'a>(pub Vec<AnyRef<'a>>);

impl FixedTag for RawSet<'_> {
    const TAG: Tag = Tag::Set;
}

impl<'a> DecodeValue<'a> for RawSet<'a> {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        reader.read_nested(header.length, |reader| {
            let mut items = Vec::new();
            while !reader.is_finished() {
                items.push(AnyRef::decode(reader)?);
            }
            Ok(Self(items))
        })
    }
}

impl EncodeValue for RawSet<'_> {
    fn value_len(&self) -> der::Result<Length> {
        self.0
            .iter()
            .try_fold(Length::ZERO, |acc, item| acc + item.encoded_len()?)
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        self.0.iter().try_for_each(|item| item.encode(writer))
    }
}

impl<'a> RawSet<'a> {
    /// Builds a set from DER-encoded elements, keeping their order.
    pub fn from_ders(ders: &'a [Vec<u8>]) -> der::Result<Self> {
        ders.iter()
            .map(|d| AnyRef::from_der(d))
            .collect::<der::Result<Vec<_>>>()
            .map(Self)
    }

    /// Builds a DER-sorted set (X.690 §11.6) from DER-encoded elements.
    pub fn sorted_from_ders(ders: &'a mut [Vec<u8>]) -> der::Result<Self> {
        ders.sort();
        Self::from_ders(ders)
    }
}

/// ContentInfo with a borrowed content.
#[derive(Sequence)]
pub(crate) struct RawContentInfo<'a> {
    pub content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    pub content: AnyRef<'a>,
}

/// EncapsulatedContentInfo with a borrowed eContent.
#[derive(Sequence)]
pub(crate) struct RawEncapContent<'a> {
    pub econtent_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub econtent: Option<AnyRef<'a>>,
}

/// SignedData with raw certificate and SignerInfo sets.
#[derive(Sequence)]
pub(crate) struct RawSignedData<'a> {
    pub version: CmsVersion,
    pub digest_algorithms: RawSet<'a>,
    pub encap_content_info: RawEncapContent<'a>,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub certificates: Option<RawSet<'a>>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub crls: Option<RawSet<'a>>,
    pub signer_infos: RawSet<'a>,
}

/// SignerInfo with raw (signed) attributes.
#[derive(Sequence)]
pub(crate) struct RawSignerInfo<'a> {
    pub version: CmsVersion,
    pub sid: SignerIdentifier,
    pub digest_alg: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub signed_attrs: Option<RawSet<'a>>,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: OctetStringRef<'a>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub unsigned_attrs: Option<RawSet<'a>>,
}

/// Decodes a ContentInfo and checks its content type.
pub(crate) fn content_info<'a>(
    der: &'a [u8],
    expected: ObjectIdentifier,
) -> crate::cms::Result<AnyRef<'a>> {
    let ci = RawContentInfo::from_der(der)?;
    if ci.content_type != expected {
        return Err(crate::cms::PkiError::UnexpectedContentType(
            ci.content_type.to_string(),
        ));
    }
    Ok(ci.content)
}

/// EnvelopedData whose encryptedContent may be primitive or constructed.
#[derive(Sequence)]
pub(crate) struct RawEnvelopedData<'a> {
    pub version: CmsVersion,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub originator_info: Option<AnyRef<'a>>,
    pub recip_infos: cms::enveloped_data::RecipientInfos,
    pub encrypted_content: RawEncryptedContentInfo<'a>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub unprotected_attrs: Option<AnyRef<'a>>,
}

/// EncryptedContentInfo with a raw `[0] IMPLICIT OCTET STRING`.
#[derive(Sequence)]
pub(crate) struct RawEncryptedContentInfo<'a> {
    pub content_type: ObjectIdentifier,
    pub content_enc_alg: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub encrypted_content: Option<AnyRef<'a>>,
}
