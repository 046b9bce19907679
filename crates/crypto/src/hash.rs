//! Hashes and randomness.

use crate::{CryptoError, Result};
use sha1::Digest as _;

/// SHA-1 digest (legacy protocols only: SCEP, old Mdm-Signature headers).
pub fn sha1(data: &[u8]) -> [u8; 20] {
    sha1::Sha1::digest(data).into()
}

/// SHA-256 digest.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

/// Lower-case hex SHA-256 digest.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha256(data))
}

/// HMAC-SHA256 of `data` under `key` (aws-lc-rs).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let tag = aws_lc_rs::hmac::sign(&k, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// `n` bytes from the aws-lc CSPRNG, reporting RNG failure as an error.
pub fn try_random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| CryptoError::Rng)?;
    Ok(buf)
}

/// `n` bytes from the aws-lc CSPRNG.
///
/// # Panics
/// Only if the operating system RNG is broken (aws-lc itself aborts in that
/// case); never depends on input. Use [`try_random_bytes`] to get an error instead.
#[allow(clippy::expect_used)]
pub fn random_bytes(n: usize) -> Vec<u8> {
    try_random_bytes(n).expect("system CSPRNG failure")
}

/// A fresh random certificate serial number: 16 bytes, positive, canonical DER
/// INTEGER content (first byte in `0x01..=0x7f`).
pub fn random_serial() -> Result<Vec<u8>> {
    let mut serial = try_random_bytes(16)?;
    if let Some(first) = serial.first_mut() {
        *first &= 0x7f;
        if *first == 0 {
            *first = 0x01;
        }
    }
    Ok(serial)
}

/// Compares two secrets in constant time (aws-lc-rs), so a mismatch position
/// leaks nothing through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            hex::encode(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn randomness_and_serials() {
        assert_eq!(random_bytes(32).len(), 32);
        assert_ne!(random_bytes(16), random_bytes(16));
        for _ in 0..50 {
            let s = random_serial().expect("serial");
            assert_eq!(s.len(), 16);
            assert!(s[0] >= 1 && s[0] <= 0x7f);
        }
    }
}
