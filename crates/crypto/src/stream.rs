//! Streaming authenticated encryption for large files (backups): the STREAM
//! construction (Hoang, Reyhanitabar, Rogaway, Vizár) over AES-256-GCM, as
//! RustCrypto's `aead::stream` implements it. The plaintext is cut into
//! 64 KiB chunks; each chunk's nonce holds a counter and a last-chunk flag,
//! so reordered, dropped, repeated or truncated chunks fail to open. `aad`
//! (the file's header) is bound to every chunk.

use crate::{CryptoError, Result};
use aes_gcm::aead::stream::{DecryptorBE32, EncryptorBE32};
use aes_gcm::aead::{KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use std::io::{Read, Write};

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// Bytes of the random nonce prefix written before the chunks.
pub const NONCE_PREFIX: usize = 7;
const TAG: usize = 16;

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CryptoError::Io(e.to_string())),
        }
    }
    Ok(n)
}

fn io(e: std::io::Error) -> CryptoError {
    CryptoError::Io(e.to_string())
}

/// Encrypts all of `r` into `w` under `key`; returns the plaintext length.
pub fn encrypt_stream(
    key: &[u8; 32],
    aad: &[u8],
    r: &mut impl Read,
    w: &mut impl Write,
) -> Result<u64> {
    let cipher = Aes256Gcm::new(key.into());
    let prefix = crate::try_random_bytes(NONCE_PREFIX)?;
    w.write_all(&prefix).map_err(io)?;
    let mut enc = EncryptorBE32::from_aead(cipher, prefix.as_slice().into());
    let mut cur = vec![0u8; CHUNK];
    let mut next = vec![0u8; CHUNK];
    let mut cur_len = read_full(r, &mut cur)?;
    let mut total = 0u64;
    loop {
        let next_len = if cur_len == CHUNK {
            read_full(r, &mut next)?
        } else {
            0
        };
        total += cur_len as u64;
        let payload = Payload {
            msg: &cur[..cur_len],
            aad,
        };
        if next_len == 0 {
            let ct = enc
                .encrypt_last(payload)
                .map_err(|_| CryptoError::Encryption)?;
            w.write_all(&ct).map_err(io)?;
            return Ok(total);
        }
        let ct = enc
            .encrypt_next(payload)
            .map_err(|_| CryptoError::Encryption)?;
        w.write_all(&ct).map_err(io)?;
        std::mem::swap(&mut cur, &mut next);
        cur_len = next_len;
    }
}

/// Decrypts what [`encrypt_stream`] wrote (same key and `aad`) into `w`;
/// any tampering, truncation or a wrong key is an error. What was written
/// to `w` before an error must be discarded.
pub fn decrypt_stream(
    key: &[u8; 32],
    aad: &[u8],
    r: &mut impl Read,
    w: &mut impl Write,
) -> Result<u64> {
    let cipher = Aes256Gcm::new(key.into());
    let mut prefix = [0u8; NONCE_PREFIX];
    if read_full(r, &mut prefix)? != NONCE_PREFIX {
        return Err(CryptoError::Decryption);
    }
    let mut dec = DecryptorBE32::from_aead(cipher, prefix.as_slice().into());
    let size = CHUNK + TAG;
    let mut cur = vec![0u8; size];
    let mut next = vec![0u8; size];
    let mut cur_len = read_full(r, &mut cur)?;
    let mut total = 0u64;
    loop {
        let next_len = if cur_len == size {
            read_full(r, &mut next)?
        } else {
            0
        };
        let payload = Payload {
            msg: &cur[..cur_len],
            aad,
        };
        if next_len == 0 {
            let pt = dec
                .decrypt_last(payload)
                .map_err(|_| CryptoError::Decryption)?;
            w.write_all(&pt).map_err(io)?;
            return Ok(total + pt.len() as u64);
        }
        let pt = dec
            .decrypt_next(payload)
            .map_err(|_| CryptoError::Decryption)?;
        total += pt.len() as u64;
        w.write_all(&pt).map_err(io)?;
        std::mem::swap(&mut cur, &mut next);
        cur_len = next_len;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn round(len: usize) {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let key = [9u8; 32];
        let mut ct = Vec::new();
        assert_eq!(
            encrypt_stream(&key, b"hdr", &mut &data[..], &mut ct).unwrap(),
            len as u64
        );
        let mut pt = Vec::new();
        decrypt_stream(&key, b"hdr", &mut &ct[..], &mut pt).unwrap();
        assert_eq!(pt, data, "length {len}");
    }

    #[test]
    fn round_trips_any_length() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17] {
            round(len);
        }
    }

    #[test]
    fn tampering_truncation_and_wrong_keys_are_refused() {
        let data = vec![7u8; 2 * CHUNK + 100];
        let key = [1u8; 32];
        let mut ct = Vec::new();
        encrypt_stream(&key, b"hdr", &mut &data[..], &mut ct).unwrap();
        let open = |key: &[u8; 32], aad: &[u8], ct: &[u8]| {
            decrypt_stream(key, aad, &mut &ct[..], &mut Vec::new()).is_ok()
        };
        assert!(open(&key, b"hdr", &ct));
        assert!(!open(&[2u8; 32], b"hdr", &ct));
        assert!(!open(&key, b"other", &ct));
        let mut flipped = ct.clone();
        flipped[NONCE_PREFIX + 10] ^= 1;
        assert!(!open(&key, b"hdr", &flipped));
        // Dropping the last chunk: the previous one is not marked last.
        let cut = NONCE_PREFIX + 2 * (CHUNK + TAG);
        assert!(!open(&key, b"hdr", &ct[..cut]));
        assert!(!open(&key, b"hdr", &ct[..NONCE_PREFIX - 1]));
    }
}
