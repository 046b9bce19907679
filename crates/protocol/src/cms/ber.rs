//! Minimal BER → DER normalisation for inbound CMS messages.
//!
//! Apple's Security framework (and OpenSSL `-stream`) emit indefinite-length
//! encodings and constructed OCTET STRINGs, which the `der` crate rejects.
//! This pass rewrites lengths to definite minimal form and merges constructed
//! universal string types into primitive ones. It is the identity on DER
//! input, so exact bytes (certificates, DER signed attributes) are preserved.
//! Constructed context-specific strings (e.g. `[0] IMPLICIT OCTET STRING`)
//! cannot be recognised here; callers merge them (see [`implicit_octets`]).
//!
//! Strict about structure: every byte an element's header reads and every
//! definite length stays inside the element's parent; an indefinite-length
//! element ends with its end-of-contents marker (`00 00`) inside its
//! parent's bounds; a tag-0 element anywhere else is refused.

use der::asn1::AnyRef;
use der::{Decode, Tag, Tagged};

use super::{PkiError, Result};

/// Nesting limit (real CMS messages stay far below it).
const MAX_DEPTH: usize = 48;
const CONSTRUCTED: u8 = 0x20;
const CLASS_MASK: u8 = 0xc0;

/// Universal string types whose constructed BER form is merged.
const MERGEABLE: [u8; 9] = [0x04, 0x0c, 0x12, 0x13, 0x14, 0x16, 0x1a, 0x1c, 0x1e];

fn err(msg: &str) -> PkiError {
    PkiError::Der(format!("BER: {msg}"))
}

/// Converts one BER element (the whole input) to DER.
pub(crate) fn to_der(input: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut pos = 0;
    convert(input, &mut pos, input.len(), &mut out, 0)?;
    if pos != input.len() {
        return Err(err("trailing data"));
    }
    Ok(out)
}

struct Header {
    tag: u8,
    /// `None` for indefinite length.
    len: Option<usize>,
}

/// The byte at `pos`, which must lie before `end` (the end of the element
/// being read, never beyond the input).
fn byte_within(input: &[u8], pos: usize, end: usize) -> Result<u8> {
    if pos >= end {
        return Err(err("truncated"));
    }
    input.get(pos).copied().ok_or_else(|| err("truncated"))
}

/// Reads one identifier and length at `*pos`; every byte read, and the
/// content a definite length announces, lie before `end`.
fn read_header(input: &[u8], pos: &mut usize, end: usize) -> Result<Header> {
    let end = end.min(input.len());
    let tag = byte_within(input, *pos, end)?;
    if tag & 0x1f == 0x1f {
        return Err(err("high tag numbers are not supported"));
    }
    let first = byte_within(input, *pos + 1, end)?;
    *pos += 2;
    let len = match first {
        0x80 if tag & CONSTRUCTED != 0 => None,
        0x80 => return Err(err("indefinite length on a primitive")),
        l if l < 0x80 => Some(usize::from(l)),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            let mut len = 0usize;
            for i in 0..n {
                len = (len << 8) | usize::from(byte_within(input, *pos + i, end)?);
            }
            *pos += n;
            Some(len)
        }
        _ => return Err(err("length too large")),
    };
    if let Some(l) = len {
        // `*pos <= end`: every byte read so far was before `end`.
        if l > end - *pos {
            return Err(err("length exceeds enclosing element"));
        }
    }
    Ok(Header { tag, len })
}

fn write_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
}

fn convert(
    input: &[u8],
    pos: &mut usize,
    end: usize,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(err("nesting too deep"));
    }
    let h = read_header(input, pos, end)?;
    if h.tag & !CONSTRUCTED == 0 {
        // Tag 0 is the end-of-contents marker: it only closes an
        // indefinite-length element (see below), it is never an element.
        return Err(err(
            "end-of-contents marker outside an indefinite-length element",
        ));
    }
    if h.tag & CONSTRUCTED == 0 {
        let len = h
            .len
            .ok_or_else(|| err("indefinite length on a primitive"))?;
        let content = input
            .get(*pos..*pos + len)
            .ok_or_else(|| err("truncated"))?;
        *pos += len;
        write_tlv(out, h.tag, content);
        return Ok(());
    }
    let mut content = Vec::new();
    match h.len {
        Some(len) => {
            let child_end = *pos + len;
            while *pos < child_end {
                convert(input, pos, child_end, &mut content, depth + 1)?;
            }
            if *pos != child_end {
                return Err(err("element overruns its parent"));
            }
        }
        // The children, then the end-of-contents marker (`00 00`), all
        // inside the parent's bounds (`end`).
        None => loop {
            if byte_within(input, *pos, end)? == 0 {
                if byte_within(input, *pos + 1, end)? != 0 {
                    return Err(err("end-of-contents marker with a length"));
                }
                *pos += 2;
                break;
            }
            convert(input, pos, end, &mut content, depth + 1)?;
        },
    }
    let primitive = h.tag & !CONSTRUCTED;
    if h.tag & CLASS_MASK == 0 && MERGEABLE.contains(&primitive) {
        write_tlv(out, primitive, &merge_chunks(&content, primitive)?);
    } else {
        write_tlv(out, h.tag, &content);
    }
    Ok(())
}

/// Concatenates the values of DER primitive chunks that all carry `tag`.
fn merge_chunks(mut content: &[u8], tag: u8) -> Result<Vec<u8>> {
    let mut merged = Vec::with_capacity(content.len());
    while !content.is_empty() {
        let chunk = AnyRef::from_der(&content[..der_len(content)?]).map_err(PkiError::from)?;
        if chunk_tag(chunk.tag()) != Some(tag) {
            return Err(err("mixed chunk types in constructed string"));
        }
        merged.extend_from_slice(chunk.value());
        content = &content[der_len(content)?..];
    }
    Ok(merged)
}

fn chunk_tag(tag: Tag) -> Option<u8> {
    Some(u8::from(tag)).filter(|t| t & CONSTRUCTED == 0)
}

/// Total length of the first DER TLV in `data` (short/long definite form).
fn der_len(data: &[u8]) -> Result<usize> {
    let mut pos = 0;
    let h = read_header(data, &mut pos, data.len())?;
    Ok(pos
        + h.len
            .ok_or_else(|| err("indefinite length after normalisation"))?)
}

/// Value of an IMPLICIT OCTET STRING field that may arrive primitive or as
/// a constructed sequence of OCTET STRING chunks (BER).
pub(crate) fn implicit_octets(field: &AnyRef<'_>) -> Result<Vec<u8>> {
    if !field.tag().is_constructed() {
        return Ok(field.value().to_vec());
    }
    merge_chunks(field.value(), 0x04)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn indefinite_and_constructed_strings() {
        // SEQUENCE(indef) { OCTET STRING(constructed, indef) { "ab", "c" }, INTEGER 5 }
        let ber = [
            0x30, 0x80, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0x00, 0x00, 0x02,
            0x01, 0x05, 0x00, 0x00,
        ];
        let der = to_der(&ber).unwrap();
        assert_eq!(
            der,
            [0x30, 0x08, 0x04, 0x03, b'a', b'b', b'c', 0x02, 0x01, 0x05]
        );
        assert_eq!(to_der(&der).unwrap(), der);
    }

    #[test]
    fn long_lengths_are_minimised() {
        let ber = [0x04, 0x81, 0x02, 1, 2];
        assert_eq!(to_der(&ber).unwrap(), [0x04, 0x02, 1, 2]);
        let long = vec![7u8; 300];
        let mut der = vec![0x04, 0x82, 0x01, 0x2c];
        der.extend_from_slice(&long);
        assert_eq!(to_der(&der).unwrap(), der);
    }

    #[test]
    fn malformed_input_is_rejected() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x80],
            &[0x30, 0x80, 0x02, 0x01, 0x05],
            &[0x04, 0x80, 0x00, 0x00],
            &[0x04, 0x05, 1],
            &[0x1f, 0x01, 0x00],
            &[0x04, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x03, 0x04, 0x05, 0x00],
            &[0x24, 0x03, 0x02, 0x01, 0x00],
            &[0x04, 0x00, 0x00],
        ] {
            assert!(to_der(bad).is_err(), "{bad:02x?}");
        }
        let deep: Vec<u8> = std::iter::repeat_n([0x30u8, 0x80], 200).flatten().collect();
        assert!(to_der(&deep).is_err());
    }

    #[test]
    fn end_of_contents_must_close_inside_the_parent() {
        // The inner indefinite SEQUENCE's marker lies past the outer
        // definite SEQUENCE (3 bytes): once normalised to `30 02 30 00`.
        assert!(to_der(&[0x30, 0x03, 0x30, 0x80, 0x00, 0x00]).is_err());
        // Same, one level deeper and with content before the marker.
        assert!(
            to_der(&[0x30, 0x06, 0x30, 0x05, 0x30, 0x80, 0x02, 0x01, 0x05, 0x00, 0x00]).is_err()
        );
        // A definite parent whose indefinite child is closed inside it is legal.
        assert_eq!(
            to_der(&[0x30, 0x04, 0x30, 0x80, 0x00, 0x00]).unwrap(),
            [0x30, 0x02, 0x30, 0x00]
        );
    }

    #[test]
    fn end_of_contents_is_never_an_element() {
        for bad in [
            // EOC as a whole input, in a definite SEQUENCE, constructed.
            &[0x00, 0x00][..],
            &[0x30, 0x02, 0x00, 0x00],
            &[0x30, 0x04, 0x02, 0x00, 0x00, 0x00],
            &[0x20, 0x00],
            // An EOC marker with a length.
            &[0x30, 0x80, 0x00, 0x01, 0x00, 0x00, 0x00],
            // An indefinite OCTET STRING closed by `00 01`.
            &[0x24, 0x80, 0x04, 0x01, 0x61, 0x00, 0x01],
        ] {
            assert!(to_der(bad).is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn headers_and_lengths_stay_inside_the_parent() {
        for bad in [
            // The child's length byte lies past the parent's one byte.
            &[0x30, 0x01, 0x04, 0x00][..],
            // The child's long-form length bytes lie past the parent.
            &[0x30, 0x02, 0x04, 0x82, 0x00, 0x00],
            // Truncated long-form lengths.
            &[0x04, 0x81],
            &[0x04, 0x82, 0x01],
            &[0x30, 0x84, 0xff, 0xff],
            // Lengths past the end of the input or of the parent.
            &[0x04, 0x82, 0x01, 0x00, 0x00],
            &[0x30, 0x03, 0x04, 0x02, 0x61],
            &[0x30, 0x80, 0x04, 0x05, 0x61, 0x00, 0x00],
            // A primitive in an indefinite parent running over the marker.
            &[0x30, 0x80, 0x04, 0x03, 0x61, 0x00, 0x00],
            // Indefinite element never closed inside a definite one.
            &[0x30, 0x03, 0x30, 0x80, 0x05],
            // A huge length (would overflow 32-bit arithmetic).
            &[0x04, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00],
        ] {
            assert!(to_der(bad).is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn legal_nested_indefinite_forms_normalise() {
        // SEQUENCE(indef) { SEQUENCE(indef) { INTEGER 5 } }
        let ber = [
            0x30, 0x80, 0x30, 0x80, 0x02, 0x01, 0x05, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(
            to_der(&ber).unwrap(),
            [0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x05]
        );
        // Definite { indefinite { constructed OCTET STRING (indef) { "a", "b" } }, NULL }
        let ber = [
            0x30, 0x0e, 0x30, 0x80, 0x24, 0x80, 0x04, 0x01, b'a', 0x04, 0x01, b'b', 0x00, 0x00,
            0x00, 0x00, 0x05, 0x00,
        ];
        assert!(
            to_der(&ber).is_err(),
            "the outer length is 14, the content 16"
        );
        let mut ber = ber;
        ber[1] = 0x10;
        assert_eq!(
            to_der(&ber).unwrap(),
            [0x30, 0x08, 0x30, 0x04, 0x04, 0x02, b'a', b'b', 0x05, 0x00]
        );
        // A constructed OCTET STRING nested in a constructed OCTET STRING.
        let ber = [
            0x24, 0x80, 0x24, 0x80, 0x04, 0x01, b'x', 0x00, 0x00, 0x04, 0x01, b'y', 0x00, 0x00,
        ];
        assert_eq!(to_der(&ber).unwrap(), [0x04, 0x02, b'x', b'y']);
        // Empty indefinite elements.
        assert_eq!(to_der(&[0x30, 0x80, 0x00, 0x00]).unwrap(), [0x30, 0x00]);
        assert_eq!(to_der(&[0xa0, 0x80, 0x00, 0x00]).unwrap(), [0xa0, 0x00]);
    }

    #[test]
    fn nesting_is_bounded_in_definite_forms_too() {
        // Nested definite SEQUENCEs (each header 2 bytes, short-form
        // lengths): refused past MAX_DEPTH, not by running out of stack.
        let n = MAX_DEPTH + 10;
        let mut der = Vec::new();
        for i in 0..n {
            der.push(0x30);
            der.push(u8::try_from(2 * (n - 1 - i)).unwrap());
        }
        assert!(to_der(&der).is_err());
        // Just within the limit it normalises to itself.
        let n = MAX_DEPTH;
        let mut der = Vec::new();
        for i in 0..n {
            der.push(0x30);
            der.push(u8::try_from(2 * (n - 1 - i)).unwrap());
        }
        assert_eq!(to_der(&der).unwrap(), der);
    }
}
