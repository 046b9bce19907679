//! What goes on the wire, as pure functions: the webhook body and its
//! signature, and RFC 5424 syslog messages with RFC 6587 octet-counting
//! framing (the framing RFC 5425 prescribes for syslog over TLS).

use mamori_domain::AuditRecord;
use time::format_description::well_known::Rfc3339;

/// The webhook body: `{"sink": NAME, "records": [...]}`, records oldest
/// first, each with its sequence number (receivers deduplicate by it:
/// delivery is at least once).
pub fn webhook_body(sink: &str, records: &[AuditRecord]) -> Vec<u8> {
    let body = serde_json::json!({ "sink": sink, "records": records });
    // Serialising plain strings and numbers cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The `X-Mamori-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256
/// over "<t>.<body>">`. The timestamp is signed too, so a receiver can
/// refuse replays of old deliveries.
pub fn webhook_signature(secret: &[u8], unix: i64, body: &[u8]) -> String {
    let mut signed = format!("{unix}.").into_bytes();
    signed.extend_from_slice(body);
    format!(
        "t={unix},v1={}",
        hex::encode(mamori_crypto::hmac_sha256(secret, &signed))
    )
}

/// Checks a signature header as a receiver would (used by tests and by
/// anyone writing a receiver in Rust).
pub fn verify_webhook_signature(secret: &[u8], header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    mamori_crypto::constant_time_eq(&mamori_crypto::hmac_sha256(secret, &signed), &v1)
}

/// RFC 5424 facility 13, "log audit".
const FACILITY_LOG_AUDIT: u8 = 13;

/// Private enterprise number for the structured-data ID. 32473 is the
/// number RFC 5612 reserves for documentation and examples; an
/// organisation with its own number can map `mamori@32473` in its SIEM.
pub const SD_ID: &str = "mamori@32473";

/// The RFC 5424 severity of a record: alerts by their stated severity,
/// refusals and failures as notices, the rest informational.
pub fn severity(r: &AuditRecord) -> u8 {
    let detail = r.event.detail.as_deref().unwrap_or("");
    match r.event.outcome.as_str() {
        "alert" if detail.contains("severity=high") => 1,
        "alert" if detail.contains("severity=medium") => 2,
        "alert" => 4,
        "failure" | "denied" => 5,
        _ => 6,
    }
}

/// Writes text that came from outside (a device's unknown check-in
/// MessageType, a parse error, a client's name) so that it stays one
/// line and shows what it holds: `\` doubled, `\n`, `\r` and `\t` as
/// such, every other control or invisible format character (ESC, DEL, NEL
/// U+0085, U+2028/2029, bidi overrides: `mamori_domain::escaped_in_logs`)
/// as `\u{..}`, and the characters of `special` behind a `\`. Nothing is
/// cut: the SIEM gets the whole value.
fn escape_text(v: &str, special: &[char], out: &mut String) {
    use std::fmt::Write;
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if special.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if mamori_domain::escaped_in_logs(c) => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// Escapes an SD-PARAM value (RFC 5424 §6.3.3: `"`, `\` and `]`; and
/// control characters, see [`escape_text`]).
fn sd_escape(v: &str, out: &mut String) {
    escape_text(v, &['"', ']'], out);
}

/// A header field: printable US-ASCII without spaces, at most `max`
/// characters, `-` when empty (RFC 5424 §6.2).
fn header_field(v: &str, max: usize) -> String {
    let s: String = v.chars().filter(char::is_ascii_graphic).take(max).collect();
    if s.is_empty() {
        "-".into()
    } else {
        s
    }
}

/// One record as an RFC 5424 message.
pub fn syslog_message(hostname: &str, r: &AuditRecord) -> String {
    let e = &r.event;
    let pri = u16::from(FACILITY_LOG_AUDIT) * 8 + u16::from(severity(r));
    let stamp = e.at.format(&Rfc3339).unwrap_or_else(|_| "-".to_owned());
    let mut sd = format!("[{SD_ID} seq=\"{}\"", r.seq);
    for (k, v) in [
        ("actor", Some(e.actor.as_str())),
        ("source", e.source.as_deref()),
        ("target", e.target.as_deref()),
        ("outcome", Some(e.outcome.as_str())),
        ("request_id", e.request_id.as_deref()),
    ] {
        if let Some(v) = v {
            sd.push(' ');
            sd.push_str(k);
            sd.push_str("=\"");
            sd_escape(v, &mut sd);
            sd.push('"');
        }
    }
    sd.push(']');
    let mut msg = format!(
        "<{pri}>1 {stamp} {} mamori - {} {sd}",
        header_field(hostname, 255),
        header_field(&e.action, 32)
    );
    if let Some(d) = &e.detail {
        msg.push(' ');
        escape_text(d, &[], &mut msg);
    }
    msg
}

/// Octet-counting framing: `<length> <message>`.
pub fn syslog_frame(hostname: &str, r: &AuditRecord) -> Vec<u8> {
    let msg = syslog_message(hostname, r);
    let mut out = format!("{} ", msg.len()).into_bytes();
    out.extend_from_slice(msg.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mamori_domain::AuditEvent;

    fn rec(outcome: &str, detail: Option<&str>) -> AuditRecord {
        AuditRecord {
            seq: 42,
            event: AuditEvent {
                at: time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
                actor: "admin:ta\"ro]".into(),
                source: Some("10.0.0.7".into()),
                action: "people.read".into(),
                target: Some("p-1".into()),
                outcome: outcome.into(),
                request_id: None,
                detail: detail.map(str::to_owned),
            },
        }
    }

    #[test]
    fn syslog_messages_follow_rfc5424() {
        let m = syslog_message("mdm.example.com", &rec("success", Some("fields=email\nx")));
        assert_eq!(
            m,
            "<110>1 2027-01-15T08:00:00Z mdm.example.com mamori - people.read \
             [mamori@32473 seq=\"42\" actor=\"admin:ta\\\"ro\\]\" source=\"10.0.0.7\" \
             target=\"p-1\" outcome=\"success\"] fields=email\\nx"
        );
        let f = syslog_frame("h", &rec("alert", Some("severity=high")));
        let text = String::from_utf8(f).unwrap();
        let (len, msg) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), msg.len());
        assert!(msg.starts_with("<105>1 "), "{msg}");
        assert_eq!(severity(&rec("denied", None)), 5);
        assert_eq!(header_field("", 5), "-");
        assert_eq!(header_field("a b\u{e9}cdefgh", 5), "abcde");
    }

    /// A device chooses its check-in MessageType and what fails to parse;
    /// `device.rejected` carries that text. Every control character (ESC,
    /// NEL, DEL, C0 and C1), line and paragraph separator and bidi override
    /// reaches the SIEM escaped, and nothing is cut.
    #[test]
    fn device_chosen_text_reaches_syslog_escaped_and_whole() {
        let hostile = "Unknown\u{1b}[2J\u{85}<13>1 forged\u{2028}x\u{2029}y\u{7f}\u{0}\u{9b}\u{202e}\\u{1b}\r\n\t";
        let long = format!("{}{hostile}", "a".repeat(600));
        let mut r = rec("denied", Some(&format!("message type={long}")));
        r.event.target = Some(hostile.into());
        r.event.actor = format!("device:{hostile}");
        let m = syslog_message("h", &r);
        assert!(
            !m.chars().any(mamori_domain::escaped_in_logs),
            "raw control or format character in {m:?}"
        );
        for escaped in [
            "\\u{1b}[2J",
            "\\u{85}",
            "\\u{2028}",
            "\\u{2029}",
            "\\u{7f}",
            "\\u{0}",
            "\\u{9b}",
            "\\u{202e}",
            "\\\\u{1b}",
            "\\r\\n\\t",
        ] {
            assert!(m.contains(escaped), "{escaped} missing in {m:?}");
        }
        assert!(m.contains(&"a".repeat(600)), "the detail was cut");
        assert!(m.ends_with("\\u{202e}\\\\u{1b}\\r\\n\\t"), "{m:?}");
        // In the structured data the escapes are plain text (RFC 5424: a
        // backslash before another character is itself).
        assert!(
            m.contains("target=\"Unknown\\u{1b}[2J\\u{85}<13>1 forged"),
            "{m:?}"
        );
    }

    #[test]
    fn webhook_signatures_verify_and_tampering_fails() {
        let body = webhook_body("siem", &[rec("success", None)]);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["records"][0]["seq"], 42);
        assert_eq!(v["records"][0]["action"], "people.read");
        let h = webhook_signature(b"k", 1_800_000_000, &body);
        assert!(h.starts_with("t=1800000000,v1="));
        assert!(verify_webhook_signature(b"k", &h, &body));
        assert!(!verify_webhook_signature(b"other", &h, &body));
        let mut changed = body.clone();
        changed[5] ^= 1;
        assert!(!verify_webhook_signature(b"k", &h, &changed));
        let moved = h.replace("t=1800000000", "t=1800000001");
        assert!(!verify_webhook_signature(b"k", &moved, &body));
        assert!(!verify_webhook_signature(b"k", "garbage", &body));
    }
}
