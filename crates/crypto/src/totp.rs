//! TOTP second factor (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps, one
//! step of clock skew either way) with replay protection: a code is accepted
//! only for a time step later than the last one accepted for the account.
//! The HOTP/TOTP computation itself is the `totp-rs` crate's.

use crate::Result;
use totp_rs::{Algorithm, TOTP};

/// Seconds per TOTP step.
pub const STEP_SECONDS: u64 = 30;
const DIGITS: usize = 6;
/// Secret length in bytes (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;

fn totp(secret: &[u8]) -> TOTP {
    TOTP::new_unchecked(Algorithm::SHA1, DIGITS, 1, STEP_SECONDS, secret.to_vec())
}

/// A fresh random TOTP secret.
pub fn generate_totp_secret() -> Result<Vec<u8>> {
    crate::try_random_bytes(SECRET_BYTES)
}

/// The secret in base32 (what users type into an authenticator app).
pub fn totp_secret_base32(secret: &[u8]) -> String {
    totp(secret).get_secret_base32()
}

/// The `otpauth://` URI authenticator apps import (as a QR code).
pub fn totp_uri(secret: &[u8], issuer: &str, account: &str) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        urlencoding::encode(issuer),
        urlencoding::encode(account),
        totp_secret_base32(secret),
        urlencoding::encode(issuer),
    )
}

/// The code an authenticator app shows at Unix time `unix` (for the device
/// simulator and tests; the server only ever verifies).
pub fn totp_code(secret: &[u8], unix: u64) -> String {
    totp(secret).generate(unix)
}

/// Decodes a base32 secret as [`totp_secret_base32`] prints it.
pub fn decode_totp_secret(base32: &str) -> Option<Vec<u8>> {
    totp_rs::Secret::Encoded(base32.to_owned()).to_bytes().ok()
}

/// Checks `code` at Unix time `now`. Returns the time step it matched when
/// it is valid and later than `last_step` (the step of the last accepted
/// code, which the caller stores); `None` for a wrong, stale or replayed
/// code.
pub fn verify_totp(secret: &[u8], code: &str, now: u64, last_step: Option<u64>) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret);
    let current = now / STEP_SECONDS;
    let mut matched = None;
    // Look at every candidate step (no early exit) and compare in constant time.
    for step in [current.saturating_sub(1), current, current + 1] {
        let expected = t.generate(step * STEP_SECONDS);
        if crate::constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            matched = Some(step);
        }
    }
    matched.filter(|step| last_step.is_none_or(|last| *step > last))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// RFC 6238 appendix B test vector (SHA-1, 8 digits there; the 6-digit
    /// code is its last six digits).
    #[test]
    fn matches_the_rfc_6238_vector() {
        let secret = b"12345678901234567890";
        // T = 59 s -> 94287082 (8 digits) -> 287082.
        assert_eq!(verify_totp(secret, "287082", 59, None), Some(1));
        // T = 1111111109 -> 07081804 -> 081804.
        assert_eq!(
            verify_totp(secret, "081804", 1_111_111_109, None),
            Some(1_111_111_109 / 30)
        );
    }

    #[test]
    fn replays_stale_and_malformed_codes_are_refused() {
        let secret = generate_totp_secret().unwrap();
        let now = 1_800_000_000;
        let code = totp(&secret).generate(now);
        let step = verify_totp(&secret, &code, now, None).unwrap();
        assert_eq!(verify_totp(&secret, &code, now, Some(step)), None, "replay");
        assert_eq!(verify_totp(&secret, &code, now + 90, None), None, "stale");
        assert_eq!(
            verify_totp(&secret, &code, now + 30, None),
            Some(step),
            "one step of skew"
        );
        for bad in ["", "12345", "1234567", "abcdef"] {
            assert_eq!(verify_totp(&secret, bad, now, None), None);
        }
        let uri = totp_uri(&secret, "Mamori", "alice@example.com");
        assert!(uri.starts_with("otpauth://totp/Mamori:alice%40example.com?secret="));
        assert_eq!(totp_secret_base32(&secret).len(), 32);
    }
}
