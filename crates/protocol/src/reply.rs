//! What the server answers to check-in messages that expect an answer
//! (Apple's check-in protocol: `UserAuthenticate`, `GetBootstrapToken`).

/// The answer to `UserAuthenticate` that needs no `AuthToken` from the
/// user: an empty `DigestChallenge`.
pub fn no_digest_challenge() -> Vec<u8> {
    let mut d = plist::Dictionary::new();
    d.insert(
        "DigestChallenge".into(),
        plist::Value::String(String::new()),
    );
    xml(d)
}

/// The answer to `GetBootstrapToken`: the token the device escrowed.
pub fn bootstrap_token(token: Vec<u8>) -> Vec<u8> {
    let mut d = plist::Dictionary::new();
    d.insert("BootstrapToken".into(), plist::Value::Data(token));
    xml(d)
}

/// A dictionary of strings and data as an XML plist. Writing these into
/// memory cannot fail (no I/O, no UIDs); were the plist crate ever to
/// err, the answer is empty rather than partial.
fn xml(d: plist::Dictionary) -> Vec<u8> {
    let mut out = Vec::new();
    if plist::to_writer_xml(&mut out, &plist::Value::Dictionary(d)).is_err() {
        out.clear();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn replies_read_back_as_apple_describes_them() {
        let v = plist::Value::from_reader_xml(&no_digest_challenge()[..]).unwrap();
        assert_eq!(
            v.as_dictionary()
                .and_then(|d| d.get("DigestChallenge"))
                .and_then(plist::Value::as_string),
            Some("")
        );
        let v = plist::Value::from_reader_xml(&bootstrap_token(vec![1, 2, 3])[..]).unwrap();
        assert_eq!(
            v.as_dictionary()
                .and_then(|d| d.get("BootstrapToken"))
                .and_then(plist::Value::as_data),
            Some(&[1u8, 2, 3][..])
        );
    }
}
