//! Entry points for the fuzz targets in `fuzz/` (one per parser a device
//! or an unauthenticated client reaches), shared with the unit test below
//! that replays every committed corpus file on stable Rust, so a
//! regression on a known input fails `cargo test` even where no nightly
//! toolchain is at hand.
//!
//! Each entry point feeds arbitrary bytes to a parser and checks the
//! promises that parser makes beyond "returns": the bounded decoder never
//! hands back a tree deeper or larger than its limits; the BER normaliser's
//! output is DER that normalises to itself.

use crate::bounded::{decode, PlistLimits};

/// Small limits, so the fuzzer reaches them often.
const FUZZ_LIMITS: PlistLimits = PlistLimits {
    max_depth: 16,
    max_values: 2_000,
    max_text_bytes: 16 * 1024,
};

/// The bounded plist decoder (XML and binary).
pub fn plist(data: &[u8]) {
    if let Ok(v) = decode(data, FUZZ_LIMITS) {
        let (depth, values) = measure(&v);
        assert!(depth <= FUZZ_LIMITS.max_depth, "depth {depth}");
        assert!(values <= FUZZ_LIMITS.max_values, "values {values}");
    }
}

/// Depth and value count (dictionary keys included), without recursion.
fn measure(v: &plist::Value) -> (usize, usize) {
    let mut stack = vec![(v, 0usize)];
    let (mut depth, mut values) = (0, 0);
    while let Some((v, d)) = stack.pop() {
        values += 1;
        match v {
            plist::Value::Array(items) => {
                depth = depth.max(d + 1);
                stack.extend(items.iter().map(|c| (c, d + 1)));
            }
            plist::Value::Dictionary(dict) => {
                depth = depth.max(d + 1);
                values += dict.len();
                stack.extend(dict.values().map(|c| (c, d + 1)));
            }
            _ => {}
        }
    }
    (depth, values)
}

/// A check-in message, as `PUT /mdm/checkin` reads it.
pub fn checkin(data: &[u8]) {
    let _ = crate::checkin::parse_checkin(data);
}

/// A connect request, as `PUT /mdm/connect` reads it.
pub fn connect(data: &[u8]) {
    let _ = crate::connect::parse_connect(data);
}

/// An `Mdm-Signature` (detached CMS SignedData) over a fixed body, and the
/// same bytes as attached SignedData.
pub fn mdm_signature(data: &[u8]) {
    let _ = crate::cms::verify_signed_data(data, Some(b"<plist/>"));
    let _ = crate::cms::verify_signed_data(data, None);
}

/// A SCEP PKIOperation request (signature, attributes, envelope framing).
pub fn scep(data: &[u8]) {
    let _ = crate::scep::parse_pki_message(data);
}

/// The BER → DER normaliser: what it accepts comes out as DER, which it
/// leaves unchanged.
pub fn ber(data: &[u8]) {
    if let Ok(der) = crate::cms::ber::to_der(data) {
        let again = crate::cms::ber::to_der(&der);
        assert_eq!(
            again.as_deref().ok(),
            Some(der.as_slice()),
            "not idempotent"
        );
    }
}

/// A PKCS#10 certificate request.
pub fn csr(data: &[u8]) {
    let _ = crate::csr::parse_csr(data);
}

/// A PROXY protocol v2 header from a load balancer: a header that is
/// accepted is never longer than the cap or the input.
pub fn proxy(data: &[u8]) {
    if let Ok((_, len)) = crate::proxy::parse(data) {
        assert!(len <= crate::proxy::MAX_HEADER_LEN && len <= data.len());
    }
}

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// Every target by the name of its folder under `fuzz/corpus/`.
pub const TARGETS: [(&str, Target); 8] = [
    ("plist", plist),
    ("checkin", checkin),
    ("connect", connect),
    ("mdm_signature", mdm_signature),
    ("scep", scep),
    ("ber", ber),
    ("csr", csr),
    ("proxy", proxy),
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Replays `fuzz/corpus/<target>/*` (the seeds and whatever the fuzzer
    /// kept) through each target.
    #[test]
    fn every_committed_corpus_input_passes_its_target() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
        let mut total = 0;
        for (name, target) in TARGETS {
            let dir = root.join(name);
            let entries =
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            let mut n = 0;
            for entry in entries {
                let data = std::fs::read(entry.unwrap().path()).unwrap();
                target(&data);
                n += 1;
            }
            assert!(n > 0, "no seeds for {name}");
            total += n;
        }
        assert!(total >= TARGETS.len());
    }
}
