//! Conversion between property lists and JSON, plus a size-capped plist
//! dictionary parser.
//!
//! Mapping (plist → JSON):
//!
//! | plist      | JSON                                        |
//! |------------|---------------------------------------------|
//! | string     | string                                      |
//! | integer    | number (signed or unsigned 64-bit)          |
//! | real       | number (`null` for NaN / infinity)          |
//! | boolean    | boolean                                     |
//! | data       | string, standard base64 with padding        |
//! | date       | string, RFC 3339 in UTC (`…Z`)              |
//! | array      | array                                       |
//! | dictionary | object                                      |
//! | uid        | number                                      |
//!
//! The reverse direction without a schema ([`json_to_plist`]) keeps strings
//! as strings; schema-guided conversion (strings → data/date where the schema
//! says so) lives in [`crate::schema`].

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine as _};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Errors for plist parsing/encoding and check-in / connect message handling.
#[derive(Debug, thiserror::Error)]
pub enum PlistError {
    /// The body exceeds the caller's size cap.
    #[error("plist body too large: {size} bytes (limit {max})")]
    TooLarge {
        /// Size of the input in bytes.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The body is empty.
    #[error("empty plist body")]
    Empty,
    /// The body is neither a valid XML nor a valid binary plist.
    #[error("malformed plist: {0}")]
    Malformed(String),
    /// Arrays/dictionaries nested deeper than [`MAX_PLIST_DEPTH`].
    #[error("plist nested deeper than {0} levels")]
    TooDeep(usize),
    /// More values than the limit (a shared binary object counts each time
    /// it is referenced).
    #[error("plist holds more than {0} values")]
    TooManyValues(usize),
    /// More bytes of strings, keys and data than the limit.
    #[error("plist holds more than {0} bytes of text and data")]
    TooMuchText(usize),
    /// The plist root is not a dictionary.
    #[error("plist root is not a dictionary")]
    NotADictionary,
    /// A required key is absent.
    #[error("missing required key {0}")]
    MissingKey(String),
    /// A key has the wrong plist type.
    #[error("key {key}: expected {expected}")]
    WrongType {
        /// Key (path) that has the wrong type.
        key: String,
        /// Expected plist type.
        expected: &'static str,
    },
    /// A key has the right type but an unacceptable value.
    #[error("key {key}: {reason}")]
    InvalidValue {
        /// Key (path) with the bad value.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A connect request carried an unknown `Status`.
    #[error("unknown command status {0:?}")]
    UnknownStatus(String),
    /// Serialising a plist failed.
    #[error("plist encoding failed: {0}")]
    Encode(String),
    /// A value failed schema validation (used by the profile builder).
    #[error(transparent)]
    Schema(#[from] crate::schema::SchemaError),
}

/// Base64 engine accepting input with or without padding (standard alphabet).
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encode bytes as standard base64 (with padding).
pub fn encode_base64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Decode standard-alphabet base64; padding is optional.
pub fn decode_base64(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    LENIENT_BASE64.decode(s.trim())
}

/// Format a plist date as an RFC 3339 UTC string. Returns `None` only for
/// dates outside the range representable by RFC 3339 (years 0–9999).
pub fn date_to_rfc3339(date: plist::Date) -> Option<String> {
    let t: SystemTime = date.into();
    let dt = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => OffsetDateTime::UNIX_EPOCH.checked_add(time::Duration::try_from(d).ok()?)?,
        Err(e) => {
            OffsetDateTime::UNIX_EPOCH.checked_sub(time::Duration::try_from(e.duration()).ok()?)?
        }
    };
    dt.format(&Rfc3339).ok()
}

/// Parse an RFC 3339 timestamp into a plist date. Sub-second precision is
/// dropped (XML plists carry whole seconds).
pub fn rfc3339_to_date(s: &str) -> Option<plist::Date> {
    let dt = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    let secs = dt.unix_timestamp();
    let t = if secs >= 0 {
        UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs.unsigned_abs()))?
    } else {
        UNIX_EPOCH.checked_sub(std::time::Duration::from_secs(secs.unsigned_abs()))?
    };
    Some(plist::Date::from(t))
}

/// Convert a plist value to JSON (see the module docs for the mapping).
pub fn plist_to_json(value: &plist::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        plist::Value::String(s) => J::String(s.clone()),
        plist::Value::Boolean(b) => J::Bool(*b),
        plist::Value::Integer(i) => {
            if let Some(v) = i.as_signed() {
                J::from(v)
            } else if let Some(v) = i.as_unsigned() {
                J::from(v)
            } else {
                J::Null
            }
        }
        plist::Value::Real(r) => serde_json::Number::from_f64(*r).map_or(J::Null, J::Number),
        plist::Value::Data(d) => J::String(encode_base64(d)),
        plist::Value::Date(d) => date_to_rfc3339(*d).map_or(J::Null, J::String),
        plist::Value::Array(a) => J::Array(a.iter().map(plist_to_json).collect()),
        plist::Value::Dictionary(d) => plist_dict_to_json(d),
        plist::Value::Uid(u) => J::from(u.get()),
        _ => J::Null,
    }
}

/// Convert a plist dictionary to a JSON object.
pub fn plist_dict_to_json(dict: &plist::Dictionary) -> serde_json::Value {
    serde_json::Value::Object(
        dict.iter()
            .map(|(k, v)| (k.clone(), plist_to_json(v)))
            .collect(),
    )
}

/// Convert JSON to a plist value without a schema: strings stay strings,
/// integral numbers become integers, other numbers reals. `null` has no plist
/// equivalent and is rejected (the error names the JSON path, e.g. `a.b[3]`).
pub fn json_to_plist(value: &serde_json::Value) -> Result<plist::Value, PlistError> {
    untyped_json_to_plist(value, "$").map_err(|(key, reason)| PlistError::InvalidValue {
        key,
        reason: reason.to_owned(),
    })
}

/// Schema-less JSON → plist conversion reporting the failing path.
pub(crate) fn untyped_json_to_plist(
    value: &serde_json::Value,
    path: &str,
) -> Result<plist::Value, (String, &'static str)> {
    use serde_json::Value as J;
    Ok(match value {
        J::Null => return Err((path.to_owned(), "null is not representable in a plist")),
        J::Bool(b) => plist::Value::Boolean(*b),
        J::Number(n) => number_to_plist(n),
        J::String(s) => plist::Value::String(s.clone()),
        J::Array(items) => plist::Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| untyped_json_to_plist(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        J::Object(map) => {
            let mut dict = plist::Dictionary::new();
            for (k, v) in map {
                dict.insert(k.clone(), untyped_json_to_plist(v, &format!("{path}.{k}"))?);
            }
            plist::Value::Dictionary(dict)
        }
    })
}

/// JSON number → plist integer (if integral and in range) or real.
pub(crate) fn number_to_plist(n: &serde_json::Number) -> plist::Value {
    if let Some(i) = n.as_i64() {
        plist::Value::Integer(i.into())
    } else if let Some(u) = n.as_u64() {
        plist::Value::Integer(u.into())
    } else {
        plist::Value::Real(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Maximum array/dictionary nesting accepted by [`parse_plist_dict`]. Real MDM
/// messages nest a handful of levels; the cap keeps the recursive conversion
/// and validation code (and `Drop`) far from the stack's end.
pub const MAX_PLIST_DEPTH: usize = crate::bounded::PlistLimits::MAX_DEPTH;

/// Parse an XML or binary plist whose root must be a dictionary.
///
/// `max_len` caps the input size in bytes; larger bodies are rejected before
/// any parsing happens. While decoding, nesting is limited to
/// [`MAX_PLIST_DEPTH`] and the number of values and bytes of text to what a
/// body of `max_len` bytes can honestly hold ([`PlistLimits::for_body`]).
///
/// [`PlistLimits::for_body`]: crate::bounded::PlistLimits::for_body
pub fn parse_plist_dict(bytes: &[u8], max_len: usize) -> Result<plist::Dictionary, PlistError> {
    if bytes.len() > max_len {
        return Err(PlistError::TooLarge {
            size: bytes.len(),
            max: max_len,
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(PlistError::Empty);
    }
    crate::bounded::decode_dict(bytes, crate::bounded::PlistLimits::for_body(max_len))
}

/// Serialise a plist value as an XML plist document.
pub fn to_xml_bytes(value: &plist::Value) -> Result<Vec<u8>, PlistError> {
    let mut buf = Vec::new();
    value
        .to_writer_xml(&mut buf)
        .map_err(|e| PlistError::Encode(e.to_string()))?;
    Ok(buf)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>S</key><string>hi</string>
  <key>I</key><integer>-5</integer>
  <key>R</key><real>1.5</real>
  <key>B</key><true/>
  <key>D</key><data>AAEC</data>
  <key>T</key><date>2024-05-01T12:30:00Z</date>
  <key>A</key><array><string>x</string><integer>1</integer></array>
  <key>N</key><dict><key>k</key><string>v</string></dict>
</dict>
</plist>"#;

    #[test]
    fn xml_to_json() {
        let d = parse_plist_dict(XML.as_bytes(), 10_000).unwrap();
        let j = plist_dict_to_json(&d);
        assert_eq!(
            j,
            json!({"S":"hi","I":-5,"R":1.5,"B":true,"D":"AAEC","T":"2024-05-01T12:30:00Z",
                   "A":["x",1],"N":{"k":"v"}})
        );
    }

    #[test]
    fn binary_plist_accepted() {
        let d = parse_plist_dict(XML.as_bytes(), 10_000).unwrap();
        let mut bin = Vec::new();
        plist::Value::Dictionary(d.clone())
            .to_writer_binary(&mut bin)
            .unwrap();
        let back = parse_plist_dict(&bin, 10_000).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn size_cap_and_errors() {
        assert!(matches!(
            parse_plist_dict(XML.as_bytes(), 10),
            Err(PlistError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_plist_dict(b"  \n", 10),
            Err(PlistError::Empty)
        ));
        assert!(matches!(
            parse_plist_dict(b"<plist><dict><key>a</key>", 100),
            Err(PlistError::Malformed(_))
        ));
        assert!(matches!(
            parse_plist_dict(b"bplist00garbage", 100),
            Err(PlistError::Malformed(_))
        ));
        let arr = br#"<?xml version="1.0"?><plist version="1.0"><array/></plist>"#;
        assert!(matches!(
            parse_plist_dict(arr, 1000),
            Err(PlistError::NotADictionary)
        ));
    }

    #[test]
    fn deep_nesting_rejected_without_stack_overflow() {
        let n = 200_000;
        let body = format!(
            "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict><key>a</key>{}{}</dict></plist>",
            "<array>".repeat(n),
            "</array>".repeat(n)
        );
        assert!(matches!(
            parse_plist_dict(body.as_bytes(), 10_000_000),
            Err(PlistError::TooDeep(MAX_PLIST_DEPTH))
        ));
        let ok = format!(
            "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict><key>a</key>{}{}</dict></plist>",
            "<array>".repeat(MAX_PLIST_DEPTH - 1),
            "</array>".repeat(MAX_PLIST_DEPTH - 1)
        );
        parse_plist_dict(ok.as_bytes(), 10_000_000).unwrap();
    }

    #[test]
    fn json_roundtrip_untyped() {
        let j = json!({"a": [1, -2, 1.25, "s", true, {"b": 18446744073709551615u64}]});
        let p = json_to_plist(&j).unwrap();
        assert_eq!(plist_to_json(&p), j);
        let err = json_to_plist(&json!({"a": [1, null]})).unwrap_err();
        assert!(err.to_string().contains("$.a[1]"), "{err}");
    }

    #[test]
    fn dates_and_base64() {
        let d = rfc3339_to_date("2024-05-01T14:30:00.75+02:00").unwrap();
        assert_eq!(date_to_rfc3339(d).unwrap(), "2024-05-01T12:30:00Z");
        assert!(rfc3339_to_date("yesterday").is_none());
        assert_eq!(decode_base64("AAEC").unwrap(), vec![0, 1, 2]);
        assert_eq!(decode_base64("AAE").unwrap(), vec![0, 1]);
        assert_eq!(decode_base64("AAE=").unwrap(), vec![0, 1]);
        assert!(decode_base64("!!").is_err());
    }
}
