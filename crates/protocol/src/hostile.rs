//! Hostile property lists, built by hand for the tests and fuzz seeds that
//! prove the decoder's limits (`crate::bounded`). The plist crate's writer
//! never shares objects nor nests absurdly, so these are assembled byte by
//! byte following Apple's binary plist layout (CFBinaryPList.c): header
//! `bplist00`, objects, offset table, 32-byte trailer.
//!
//! Compiled for this crate's tests and, through the `test-payloads` feature,
//! for other crates' tests and the fuzz targets; never in the server binary.

#![allow(clippy::cast_possible_truncation)]

/// An XML plist of `depth` nested empty arrays.
pub fn deep_xml(depth: usize) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><plist version=\"1.0\">{}{}</plist>",
        "<array>".repeat(depth),
        "</array>".repeat(depth)
    )
    .into_bytes()
}

/// A binary plist of `depth` nested one-element arrays. With `broken_end`
/// the innermost array refers to an object that does not exist, so a
/// decoder that gets that far fails with the whole depth in hand.
pub fn deep_binary(depth: usize, broken_end: bool) -> Vec<u8> {
    let mut objects = Vec::with_capacity(depth + 1);
    for i in 0..depth {
        objects.push(array_of(&[(i + 1) as u64], 2));
    }
    if broken_end {
        objects.push(array_of(&[0xFFFF], 2));
    } else {
        objects.push(vec![0x09]); // true
    }
    assemble(&objects, 0, 2)
}

/// "Billion laughs": object 0 is `true`; object i is an array of `width`
/// references to object i-1; the root is the last. Expanded, it holds
/// `width^levels` leaves.
pub fn laughs(levels: usize, width: usize) -> Vec<u8> {
    let mut objects = vec![vec![0x09]];
    for i in 1..=levels {
        objects.push(array_of(&vec![(i - 1) as u64; width], 1));
    }
    assemble(&objects, levels as u64, 1)
}

/// A root array of `times` references to one string `s`.
pub fn shared_string(s: &str, times: usize) -> Vec<u8> {
    let mut str_obj = vec![0x5F, 0x11];
    str_obj.extend_from_slice(&(s.len() as u16).to_be_bytes());
    str_obj.extend_from_slice(s.as_bytes());
    let objects = vec![array_of(&vec![1u64; times], 1), str_obj];
    assemble(&objects, 0, 1)
}

/// A check-in-shaped dictionary (`MessageType`, `UDID`) whose `Payload`
/// key holds `inner`'s root: the same bombs, one level down, where a
/// server that looks at the message type first would meet them.
pub fn in_message(udid: &str, inner_laughs_levels: usize, width: usize) -> Vec<u8> {
    // 0: "MessageType", 1: "Authenticate", 2: "UDID", 3: udid, 4: "Payload",
    // 5: leaf, 6..: levels, root: dict.
    let mut objects = vec![
        ascii("MessageType"),
        ascii("Authenticate"),
        ascii("UDID"),
        ascii(udid),
        ascii("Payload"),
        vec![0x09],
    ];
    for i in 0..inner_laughs_levels {
        objects.push(array_of(&vec![(5 + i) as u64; width], 1));
    }
    let top = (objects.len() - 1) as u8;
    objects.push(vec![0xD3, 0, 2, 4, 1, 3, top]);
    let root = (objects.len() - 1) as u64;
    assemble(&objects, root, 1)
}

/// `depth` nested arrays that each declare `refs` one-byte references,
/// all read from the same bytes: array i's list starts with a reference to
/// array i+1 and runs on over the others' lists and a filler of `true`
/// references. The plist crate allocates every list when it opens the
/// array, before any value is produced.
pub fn overlapping_lists(depth: usize, refs: usize) -> Vec<u8> {
    // Object 0: `true`; objects 1..=depth: the arrays (array k refers to
    // k+1 first; the innermost refers to object 0). Each array's header is
    // followed directly by the next array's header, so list k is the
    // remaining header bytes plus the shared filler of zeros.
    let header = |count: usize| {
        let mut o = vec![0xAF, 0x12];
        o.extend_from_slice(&(count as u32).to_be_bytes());
        o
    };
    let mut out = b"bplist00".to_vec();
    let mut offsets = vec![out.len() as u32];
    out.push(0x09);
    for k in 1..=depth {
        offsets.push(out.len() as u32);
        out.extend_from_slice(&header(refs));
        // The first reference of array k: the next array (or `true`).
        out.push(if k < depth { (k + 1) as u8 } else { 0 });
    }
    out.extend(std::iter::repeat_n(0u8, refs));
    let table_at = out.len() as u64;
    for off in &offsets {
        out.extend_from_slice(&off.to_be_bytes()[1..]);
    }
    out.extend_from_slice(&[0; 6]);
    out.push(3);
    out.push(1);
    out.extend_from_slice(&(offsets.len() as u64).to_be_bytes());
    out.extend_from_slice(&1u64.to_be_bytes());
    out.extend_from_slice(&table_at.to_be_bytes());
    out
}

fn ascii(s: &str) -> Vec<u8> {
    let mut o = Vec::new();
    if s.len() < 15 {
        o.push(0x50 | s.len() as u8);
    } else {
        o.push(0x5F);
        o.push(0x11);
        o.extend_from_slice(&(s.len() as u16).to_be_bytes());
    }
    o.extend_from_slice(s.as_bytes());
    o
}

fn array_of(refs: &[u64], ref_size: u8) -> Vec<u8> {
    let mut o = Vec::new();
    if refs.len() < 15 {
        o.push(0xA0 | refs.len() as u8);
    } else {
        o.push(0xAF);
        o.push(0x11); // a two-byte count follows
        o.extend_from_slice(&(refs.len() as u16).to_be_bytes());
    }
    for r in refs {
        match ref_size {
            1 => o.push(*r as u8),
            _ => o.extend_from_slice(&(*r as u16).to_be_bytes()),
        }
    }
    o
}

/// Header, objects, three-byte offsets (small enough for 42,000 objects in
/// a check-in body), trailer.
fn assemble(objects: &[Vec<u8>], root: u64, ref_size: u8) -> Vec<u8> {
    let mut out = b"bplist00".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for o in objects {
        offsets.push(out.len() as u32);
        out.extend_from_slice(o);
    }
    let table_at = out.len() as u64;
    for off in &offsets {
        out.extend_from_slice(&off.to_be_bytes()[1..]);
    }
    out.extend_from_slice(&[0; 6]);
    out.push(3);
    out.push(ref_size);
    out.extend_from_slice(&(objects.len() as u64).to_be_bytes());
    out.extend_from_slice(&root.to_be_bytes());
    out.extend_from_slice(&table_at.to_be_bytes());
    out
}
