//! Property-list decoding with limits enforced while decoding.
//!
//! `plist::Value::from_reader` builds the whole tree first and only then
//! lets a caller look at it. Two inputs make that fatal: a plist nested tens
//! of thousands of levels deep (building and dropping it recurses until the
//! stack overflows, and a parse error halfway drops the half-built tree the
//! same way), and a binary plist whose objects reference one another many
//! times ("billion laughs": 883 bytes can stand for 1.6 × 10⁹ values, since
//! every reference is expanded into a copy).
//!
//! [`decode`] instead reads the plist crate's event stream (its XML reader,
//! quick-xml underneath, keeps its own nesting on the heap; its binary
//! reader refuses reference cycles and tables larger than the input) and
//! builds the value itself, counting as it goes: nesting depth, number of
//! values (an object referenced twice counts twice, because it is copied
//! twice) and bytes of strings, keys and data. The first limit crossed ends
//! decoding with an error; nothing larger than the limits is ever held, and
//! a half-built tree is never deeper than `max_depth`.
//!
//! Every string a device sends (keys and values) is made fit to be shown
//! as it is decoded ([`shown`]): control characters other than newline and
//! tab, and the invisible characters that reorder or hide text, become
//! U+FFFD. A device chooses its name, its model, its apps' names; an
//! unterminated right-to-left override in one of them made the console
//! show the serial number beside it reversed, and an escape sequence
//! reached every terminal and CSV reader of the API. The signature a
//! message carries is checked over the raw bytes before this, so nothing
//! it proves changes.
//!
//! The stream API sits behind the plist crate's
//! `enable_unstable_features_that_may_break_with_minor_version_bumps`
//! feature; the version is pinned in `Cargo.lock`, and a change there breaks
//! the build, not the limits.

use std::io::{BufReader, Cursor};

use plist::stream::{BinaryReader, Event, OwnedEvent, XmlReader};
use plist::{Dictionary, Value};

use crate::plistjson::PlistError;

/// Whether `c` would change how text around it reads, or the terminal
/// showing it, without being seen: a control character other than newline
/// and tab (ESC, CR, DEL, C1), a bidi override, embedding, isolate or mark,
/// the line and paragraph separators.
fn hidden(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c,
            // Bidi marks, embeddings, overrides and isolates.
            '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            // Line and paragraph separators.
            | '\u{2028}' | '\u{2029}'
            // Invisible: zero-width space, word joiner and invisible
            // operators, byte-order mark, Mongolian vowel separator, soft
            // hyphen, deprecated format controls, interlinear annotation,
            // tag characters (invisible ASCII), Hangul fillers. (The
            // zero-width joiners U+200C/U+200D stay: emoji and several
            // scripts need them.)
            | '\u{200b}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{180e}' | '\u{ad}'
            | '\u{206a}'..='\u{206f}' | '\u{fff9}'..='\u{fffb}' | '\u{e0000}'..='\u{e007f}'
            | '\u{115f}' | '\u{1160}' | '\u{3164}' | '\u{ffa0}')
}

/// `s` with every [`hidden`] character replaced by U+FFFD (the
/// replacement character: something was there); unchanged, without
/// copying, when there is none.
pub fn shown(s: String) -> String {
    if !s.chars().any(hidden) {
        return s;
    }
    s.chars()
        .map(|c| if hidden(c) { '\u{fffd}' } else { c })
        .collect()
}

/// How much one decoded property list may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlistLimits {
    /// Array/dictionary nesting (the root collection is level 1).
    pub max_depth: usize,
    /// Values of every kind, collections and dictionary keys included.
    pub max_values: usize,
    /// Bytes of strings, dictionary keys and data, added up.
    pub max_text_bytes: usize,
}

impl PlistLimits {
    /// Deepest nesting accepted from anyone. Real MDM messages nest a
    /// handful of levels (a command result's profile list: about six).
    pub const MAX_DEPTH: usize = 64;

    /// Limits for a body of at most `max_len` bytes. XML and binary plists
    /// without shared objects cannot exceed them: every value costs at least
    /// a byte of input (4 values per byte would be a generous ceiling) and
    /// text cannot grow. Binary plists share keys legitimately (a list of 500
    /// apps names "Identifier" once), hence the headroom; past it, only
    /// reference expansion can go, and that is what is refused.
    pub fn for_body(max_len: usize) -> Self {
        PlistLimits {
            max_depth: Self::MAX_DEPTH,
            max_values: max_len.clamp(4096, 500_000),
            max_text_bytes: max_len.saturating_mul(2).max(64 * 1024),
        }
    }
}

/// What the builder is inside of.
enum Frame {
    Array(Vec<Value>),
    Dict {
        dict: Dictionary,
        /// A key read, its value not yet.
        key: Option<String>,
    },
}

struct Builder {
    limits: PlistLimits,
    stack: Vec<Frame>,
    values: usize,
    text_bytes: usize,
    root: Option<Value>,
}

impl Builder {
    fn new(limits: PlistLimits) -> Self {
        Builder {
            limits,
            stack: Vec::new(),
            values: 0,
            text_bytes: 0,
            root: None,
        }
    }

    fn count(&mut self, text: usize) -> Result<(), PlistError> {
        self.values += 1;
        if self.values > self.limits.max_values {
            return Err(PlistError::TooManyValues(self.limits.max_values));
        }
        self.text_bytes = self.text_bytes.saturating_add(text);
        if self.text_bytes > self.limits.max_text_bytes {
            return Err(PlistError::TooMuchText(self.limits.max_text_bytes));
        }
        Ok(())
    }

    fn event(&mut self, event: OwnedEvent) -> Result<(), PlistError> {
        if self.root.is_some() {
            return Err(PlistError::Malformed("content after the root value".into()));
        }
        let text = match &event {
            Event::String(s) => s.len(),
            Event::Data(d) => d.len(),
            _ => 0,
        };
        if !matches!(event, Event::EndCollection) {
            self.count(text)?;
        }
        // A dictionary expects a key (a string) before each value.
        if let Some(Frame::Dict {
            key: key @ None, ..
        }) = self.stack.last_mut()
        {
            return match event {
                Event::String(s) => {
                    *key = Some(shown(s.into_owned()));
                    Ok(())
                }
                Event::EndCollection => self.close(),
                _ => Err(PlistError::Malformed(
                    "dictionary key is not a string".into(),
                )),
            };
        }
        let value = match event {
            Event::StartArray(_) => return self.open(Frame::Array(Vec::new())),
            Event::StartDictionary(_) => {
                return self.open(Frame::Dict {
                    dict: Dictionary::new(),
                    key: None,
                })
            }
            Event::EndCollection => {
                if matches!(self.stack.last(), Some(Frame::Dict { .. })) {
                    return Err(PlistError::Malformed(
                        "dictionary key without a value".into(),
                    ));
                }
                return self.close();
            }
            Event::Boolean(b) => Value::Boolean(b),
            Event::Data(d) => Value::Data(d.into_owned()),
            Event::Date(d) => Value::Date(d),
            Event::Integer(i) => Value::Integer(i),
            Event::Real(r) => Value::Real(r),
            Event::String(s) => Value::String(shown(s.into_owned())),
            Event::Uid(u) => Value::Uid(u),
            _ => return Err(PlistError::Malformed("unsupported plist element".into())),
        };
        self.place(value)
    }

    fn open(&mut self, frame: Frame) -> Result<(), PlistError> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(PlistError::TooDeep(self.limits.max_depth));
        }
        self.stack.push(frame);
        Ok(())
    }

    fn close(&mut self) -> Result<(), PlistError> {
        let value = match self.stack.pop() {
            Some(Frame::Array(items)) => Value::Array(items),
            Some(Frame::Dict { dict, .. }) => Value::Dictionary(dict),
            None => return Err(PlistError::Malformed("unbalanced end of collection".into())),
        };
        self.place(value)
    }

    fn place(&mut self, value: Value) -> Result<(), PlistError> {
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Array(items)) => items.push(value),
            Some(Frame::Dict { dict, key }) => match key.take() {
                Some(k) => {
                    dict.insert(k, value);
                }
                None => {
                    return Err(PlistError::Malformed(
                        "dictionary value without a key".into(),
                    ))
                }
            },
        }
        Ok(())
    }

    fn finish(self) -> Result<Value, PlistError> {
        match (self.root, self.stack.is_empty()) {
            (Some(v), true) => Ok(v),
            _ => Err(PlistError::Malformed("unexpected end of plist".into())),
        }
    }
}

/// Decodes an XML or binary property list (chosen by the `bplist` magic;
/// the old ASCII format is not accepted), enforcing `limits` while decoding.
pub fn decode(bytes: &[u8], limits: PlistLimits) -> Result<Value, PlistError> {
    let mut builder = Builder::new(limits);
    if bytes.starts_with(b"bplist") {
        check_binary_tables(bytes, limits)?;
        feed(&mut builder, BinaryReader::new(Cursor::new(bytes)))?;
    } else {
        feed(
            &mut builder,
            XmlReader::new(BufReader::new(Cursor::new(bytes))),
        )?;
    }
    builder.finish()
}

/// Bounds what the plist crate's binary reader allocates before it emits
/// a single event: it reads the whole offset table into a `Vec<u64>`, and
/// each array, set or dictionary's reference list when the collection is
/// opened (8 bytes of memory per reference). The crate only checks that a
/// list ends before the trailer, so 64 nested arrays whose lists all
/// overlap the whole body cost 64 × 8 bytes per byte of input: 135 MB for
/// a 256 KiB check-in. This pre-scan reads the 32-byte trailer and each
/// object's marker (and, for a collection, its count) — nothing else —
/// and refuses a plist whose objects, or whose collections' references
/// added up, exceed `max_values`: in a well-formed plist every reference
/// stands for a value the decoder will count anyway. Hand-written because
/// the crate offers no limit of its own; it is a validator only, and the
/// crate still does the decoding.
fn check_binary_tables(bytes: &[u8], limits: PlistLimits) -> Result<(), PlistError> {
    let bad = |what: &str| PlistError::Malformed(format!("binary plist: {what}"));
    let n = bytes.len();
    if n < 8 + 32 {
        return Err(bad("too short"));
    }
    let trailer = &bytes[n - 32..];
    let offset_size = usize::from(trailer[6]);
    let ref_size = usize::from(trailer[7]);
    if !matches!(offset_size, 1 | 2 | 3 | 4 | 8) || !matches!(ref_size, 1 | 2 | 3 | 4 | 8) {
        return Err(bad("invalid trailer"));
    }
    let be = |b: &[u8]| b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
    let objects = be(&trailer[8..16]);
    let table_at = be(&trailer[24..32]);
    if objects > limits.max_values as u64 {
        return Err(PlistError::TooManyValues(limits.max_values));
    }
    // Both fit in usize now (objects ≤ max_values, table checked below).
    let objects = objects as usize;
    let table_end = (objects * offset_size)
        .checked_add(usize::try_from(table_at).map_err(|_| bad("offset table out of range"))?)
        .filter(|end| *end <= n - 32)
        .ok_or_else(|| bad("offset table out of range"))?;
    let table = &bytes[table_end - objects * offset_size..table_end];
    let mut references: u64 = 0;
    for entry in table.chunks_exact(offset_size) {
        let at = usize::try_from(be(entry)).map_err(|_| bad("object offset out of range"))?;
        let Some(&marker) = bytes.get(at).filter(|_| at < table_end) else {
            return Err(bad("object offset out of range"));
        };
        let per_entry = match marker >> 4 {
            0xA | 0xC => 1,
            0xD => 2,
            _ => continue,
        };
        let count = match marker & 0x0F {
            0x0F => {
                // A count that does not fit the marker: an integer object follows.
                let int_marker = *bytes.get(at + 1).ok_or_else(|| bad("truncated count"))?;
                if int_marker >> 4 != 0x1 || int_marker & 0x0F > 3 {
                    return Err(bad("invalid collection count"));
                }
                let width = 1usize << (int_marker & 0x0F);
                be(bytes
                    .get(at + 2..at + 2 + width)
                    .ok_or_else(|| bad("truncated count"))?)
            }
            small => u64::from(small),
        };
        references = references.saturating_add(count.saturating_mul(per_entry));
        if references > limits.max_values as u64 {
            return Err(PlistError::TooManyValues(limits.max_values));
        }
    }
    // Lists that do not overlap fit in the file.
    if references.saturating_mul(ref_size as u64) > n as u64 {
        return Err(bad("collections overlap"));
    }
    Ok(())
}

fn feed(
    builder: &mut Builder,
    events: impl Iterator<Item = Result<OwnedEvent, plist::Error>>,
) -> Result<(), PlistError> {
    for event in events {
        let event = event.map_err(|e| PlistError::Malformed(e.to_string()))?;
        builder.event(event)?;
    }
    Ok(())
}

/// Decodes a property list whose root must be a dictionary.
pub fn decode_dict(bytes: &[u8], limits: PlistLimits) -> Result<Dictionary, PlistError> {
    match decode(bytes, limits)? {
        Value::Dictionary(d) => Ok(d),
        _ => Err(PlistError::NotADictionary),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::hostile::{deep_binary, deep_xml, laughs, shared_string};

    const LIMITS: PlistLimits = PlistLimits {
        max_depth: PlistLimits::MAX_DEPTH,
        max_values: 10_000,
        max_text_bytes: 64 * 1024,
    };

    #[test]
    fn a_device_string_cannot_reorder_or_hide_what_is_shown_beside_it() {
        let mut d = Dictionary::new();
        d.insert(
            "ModelName\u{202e}".into(),
            Value::String("iPhone\u{202e}FKAH\u{1b}[31m\r\u{2066}x\u{85}".into()),
        );
        d.insert(
            "Note".into(),
            Value::String("line 1\n\tline 2 — 日本語 עברית".into()),
        );
        let got = decode_dict(&xml(&Value::Dictionary(d)), LIMITS).unwrap();
        assert_eq!(
            got.get("ModelName\u{fffd}").and_then(Value::as_string),
            Some("iPhone\u{fffd}FKAH\u{fffd}[31m\u{fffd}\u{fffd}x\u{fffd}")
        );
        // Newlines, tabs and any script are kept as they were.
        assert_eq!(
            got.get("Note").and_then(Value::as_string),
            Some("line 1\n\tline 2 — 日本語 עברית")
        );
        // Invisible characters that could make two serials look alike.
        let mut d = Dictionary::new();
        d.insert(
            "SerialNumber".into(),
            Value::String("F\u{200b}K\u{feff}1\u{e0041}\u{3164}👩\u{200d}💻".into()),
        );
        let got = decode_dict(&xml(&Value::Dictionary(d)), LIMITS).unwrap();
        assert_eq!(
            got.get("SerialNumber").and_then(Value::as_string),
            Some("F\u{fffd}K\u{fffd}1\u{fffd}\u{fffd}👩\u{200d}💻")
        );
    }

    fn xml(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        v.to_writer_xml(&mut out).unwrap();
        out
    }

    fn binary(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        v.to_writer_binary(&mut out).unwrap();
        out
    }

    fn sample() -> Value {
        let mut inner = Dictionary::new();
        inner.insert("k".into(), Value::String("v".into()));
        inner.insert("n".into(), Value::Integer(7.into()));
        inner.insert("d".into(), Value::Data(vec![1, 2, 3]));
        inner.insert("b".into(), Value::Boolean(true));
        inner.insert("r".into(), Value::Real(1.5));
        inner.insert("u".into(), Value::Uid(plist::Uid::new(3)));
        let mut root = Dictionary::new();
        root.insert(
            "A".into(),
            Value::Array(vec![Value::Dictionary(inner), Value::String("x".into())]),
        );
        root.insert("E".into(), Value::Array(vec![]));
        root.insert("F".into(), Value::Dictionary(Dictionary::new()));
        Value::Dictionary(root)
    }

    #[test]
    fn decodes_what_the_plist_crate_decodes() {
        let v = sample();
        assert_eq!(decode(&binary(&v), LIMITS).unwrap(), v);
        // XML has no Uid.
        let mut no_uid = v.clone();
        if let Some(Value::Array(a)) = no_uid.as_dictionary_mut().unwrap().get_mut("A") {
            a[0].as_dictionary_mut().unwrap().remove("u");
        }
        assert_eq!(decode(&xml(&no_uid), LIMITS).unwrap(), no_uid);
    }

    /// 40,000 nested arrays: the plist crate's own builder overflowed the
    /// stack on this (in a server thread that aborts the process).
    #[test]
    fn deep_xml_is_refused_without_recursion() {
        let n = 40_000;
        let e = decode(&deep_xml(n), LIMITS).unwrap_err();
        assert!(matches!(e, PlistError::TooDeep(64)), "{e}");
        // And cut off halfway (a parse error deep inside).
        let doc = format!("<plist>{}<bogus>", "<array>".repeat(n));
        assert!(decode(doc.as_bytes(), LIMITS).is_err());
    }

    /// A binary plist of ~42,000 nested one-element arrays that ends in an
    /// error: the case that crashed the server on drop.
    #[test]
    fn deep_binary_ending_in_an_error_is_refused() {
        let doc = deep_binary(42_000, true);
        assert!(doc.len() < 256 * 1024);
        // With the check-in body's limits the objects fit; the depth does not.
        let e = decode(&doc, PlistLimits::for_body(256 * 1024)).unwrap_err();
        assert!(matches!(e, PlistError::TooDeep(64)), "{e}");
        // With smaller limits the object count alone refuses it.
        let e = decode(&doc, LIMITS).unwrap_err();
        assert!(matches!(e, PlistError::TooManyValues(_)), "{e}");
        let ok_depth = deep_binary(60, false);
        assert!(decode(&ok_depth, LIMITS).is_ok());
        let too_deep = deep_binary(65, false);
        assert!(matches!(
            decode(&too_deep, LIMITS),
            Err(PlistError::TooDeep(64))
        ));
    }

    /// "Billion laughs": each level is an array of 100 references to the
    /// level below. 3 levels: 10⁶ leaves from a few hundred bytes.
    #[test]
    fn shared_references_count_every_time_they_are_used() {
        let doc = laughs(3, 100);
        assert!(doc.len() < 1024, "{} bytes", doc.len());
        let e = decode(&doc, LIMITS).unwrap_err();
        assert!(matches!(e, PlistError::TooManyValues(10_000)), "{e}");
        // 5 levels of 100: 10¹⁰ values, refused just as fast.
        let e = decode(&laughs(5, 100), LIMITS).unwrap_err();
        assert!(matches!(e, PlistError::TooManyValues(_)), "{e}");
        // A few shared references stay within the budget.
        assert!(decode(&laughs(2, 10), LIMITS).is_ok());
    }

    #[test]
    fn one_big_string_referenced_many_times_is_refused_by_bytes() {
        // Root array: 200 references to one 1 KiB string.
        let s = "x".repeat(1024);
        let doc = shared_string(&s, 200);
        let e = decode(&doc, LIMITS).unwrap_err();
        assert!(matches!(e, PlistError::TooMuchText(_)), "{e}");
    }

    /// 65 nested arrays whose reference lists all overlap one long list
    /// (the crate reads each list into memory when the array is opened).
    #[test]
    fn overlapping_reference_lists_are_refused_before_decoding() {
        let doc = crate::hostile::overlapping_lists(65, 200_000);
        let limits = PlistLimits::for_body(256 * 1024);
        assert!(doc.len() <= 256 * 1024, "{}", doc.len());
        let e = decode(&doc, limits).unwrap_err();
        assert!(
            matches!(e, PlistError::TooManyValues(_) | PlistError::Malformed(_)),
            "{e}"
        );
        // The legitimate shapes still decode.
        assert!(decode(&deep_binary(60, false), LIMITS).is_ok());
        assert!(decode(&laughs(2, 10), LIMITS).is_ok());
    }

    #[test]
    fn malformed_structures_are_errors() {
        for doc in [
            "<plist><dict><key>a</key></dict></plist>",
            "<plist><dict><string>a</string></dict></plist>",
            "<plist><array><string>a</string></plist>",
            "<plist></plist>",
            "",
            "not a plist",
        ] {
            assert!(decode(doc.as_bytes(), LIMITS).is_err(), "{doc}");
        }
        assert!(decode(b"bplist00garbage", LIMITS).is_err());
    }
}
