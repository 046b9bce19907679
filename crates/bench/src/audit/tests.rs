//! Tests of the `--audit` generator, plan and output parsing.

#![allow(clippy::unwrap_used)]
use super::fixture::{Fixture, Kind};
use super::measure::parse_verified;
use super::*;

#[test]
fn the_mix_is_about_a_tenth_reads_and_spans_the_year() {
    let fx = Fixture::new(100_000, 1_800_000_123);
    assert_eq!(fx.end % DAY, 0);
    assert_eq!(fx.end - fx.start, DAYS * DAY);
    let reads = (0..100_000)
        .filter(|&i| fx.draw(i).kind == Kind::Read)
        .count();
    assert!((9_000..11_000).contains(&reads), "{reads}");
    assert_eq!(fx.at(0), fx.start);
    assert!(fx.at(99_999) < fx.end);
    assert!((1..100_000).all(|i| fx.at(i) >= fx.at(i - 1)));
    assert_eq!(fx.first_at_or_after(fx.start), 0);
    assert_eq!(fx.first_at_or_after(fx.end), 100_000);
    let e = fx.event(7).unwrap();
    assert_eq!(e, fx.event(7).unwrap(), "deterministic");
    assert_eq!(e.at.unix_timestamp(), fx.at(7));
}

#[test]
fn expected_counts_people_per_field() {
    let fx = Fixture::new(50_000, 1_800_000_123);
    let all = fx.expected(fx.start, fx.end, None);
    let personal = (0..50_000)
        .filter(|&i| fx.draw(i).kind.is_personal())
        .count();
    assert_eq!(all.records, personal);
    assert_eq!(all.by_field["name"], all.people);
    assert!(all.by_field["phone"] <= all.people);
    assert_eq!(all.actors, ACTORS);
    let one = fx.expected(fx.start, fx.end, Some(1));
    assert_eq!(one.actors, 1);
    assert!(one.records < all.records);
    assert_eq!(fx.expected(fx.start - 10, fx.start, None).records, 0);
}

#[test]
fn parses_the_verify_line() {
    assert_eq!(
        parse_verified(
            "audit log intact: 10000005 records checked (0 written before the chain began), 1 signed checkpoints verified\n"
        ),
        Some((10_000_005, 1))
    );
    assert_eq!(parse_verified("AUDIT LOG TAMPERED: record 3"), None);
}

#[test]
fn the_parts_cover_the_log() {
    let p = Plan {
        records: 1_000,
        append: 100_000,
        tasks: 4,
        runs: 1,
    };
    let [a, b, c, d] = p.parts();
    assert_eq!(
        (a.start, a.end, b.end, c.end, d.end),
        (0, 250, 500, 750, 1_000)
    );
}
