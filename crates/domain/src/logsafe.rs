//! Text that came from outside (a device, a client) on its way into the log.
//!
//! A device chooses its SCEP transaction ID, its check-in `MessageType` and
//! every string it reports. Written to a text log raw, a newline forges a
//! whole log line and an ANSI escape rewrites the operator's terminal.
//! [`LogSafe`] prints such a value with every control character escaped
//! (`\n`, `\r`, `\t`, `\u{1b}` …), `\` doubled so an escape cannot be
//! faked, and the text cut at [`LogSafe::MAX_CHARS`] characters.

use std::fmt;

/// Displays untrusted text with control characters escaped; see the module.
#[derive(Debug, Clone, Copy)]
pub struct LogSafe<'a>(pub &'a str);

impl LogSafe<'_> {
    /// The most characters of one value written to the log.
    pub const MAX_CHARS: usize = 256;
}

impl fmt::Display for LogSafe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for (i, c) in self.0.chars().enumerate() {
            if i == Self::MAX_CHARS {
                return f.write_str("…");
            }
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '"' => f.write_str("\\\"")?,
                c if escaped_in_logs(c) => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Whether `c` is written escaped, never as itself: a control character
/// (C0 such as ESC, DEL, C1 such as NEL U+0085) or an invisible format
/// character (bidi overrides and isolates, the line and paragraph
/// separators U+2028/2029). For writers with a syntax of their own that
/// must keep the whole value (the audit sinks); [`LogSafe`] also cuts it.
pub fn escaped_in_logs(c: char) -> bool {
    c.is_control() || is_invisible_format(c)
}

/// Characters that change how a line reads without being visible: bidi
/// overrides and isolates, line and paragraph separators.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2028}' | '\u{2029}' | '\u{2066}'..='\u{2069}')
}

/// Shorthand: `log_safe(&value)` in a `tracing` field (`field = %log_safe(v)`).
pub fn log_safe(s: &str) -> LogSafe<'_> {
    LogSafe(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_log_line_stays_on_one_line() {
        let forged = "x\n2026-12-06T00:00:00Z  INFO device authenticated device=FORGED-LOG-LINE";
        let out = LogSafe(forged).to_string();
        assert!(!out.contains('\n'));
        assert!(out.starts_with("x\\n2026"));
    }

    #[test]
    fn ansi_escapes_and_bidi_overrides_are_shown_not_obeyed() {
        let out = LogSafe("\u{1b}[31mred\u{1b}[0m \u{202e}txt\r").to_string();
        assert_eq!(out, "\\u{1b}[31mred\\u{1b}[0m \\u{202e}txt\\r");
    }

    #[test]
    fn a_backslash_cannot_fake_an_escape_and_long_values_are_cut() {
        assert_eq!(LogSafe("a\\nb").to_string(), "a\\\\nb");
        let long = "a".repeat(1000);
        let out = LogSafe(&long).to_string();
        assert_eq!(out.chars().count(), LogSafe::MAX_CHARS + 1);
        assert_eq!(LogSafe("ユーザー").to_string(), "ユーザー");
    }
}
