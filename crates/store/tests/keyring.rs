//! The people key ring as the servers on one database share it: the first
//! key named stays current until a prepared key is promoted; a key is
//! prepared only to follow the current one, one at a time; a prepared key
//! becomes current only while every live server has loaded it (a server
//! whose report ran out or was withdrawn no longer counts); reports live
//! for their length; the keys wrapping people are listed. Every test runs
//! on both backends, on PostgreSQL with each server on its own pool.
#![allow(clippy::unwrap_used)]

use mamori_domain::{EmploymentStatus, PersonId, PersonRecord};
use mamori_ports::*;
use std::time::Duration;
use time::OffsetDateTime;

mod backends;

const MINUTE: Duration = Duration::from_secs(60);

fn ids(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

async fn the_first_key_named_stays_current_until_a_prepared_one_is_promoted(b: backends::Backend) {
    let (s, d) = b.open().await;
    let other = d.another().await;
    assert_eq!(
        s.people_key_choice().await.unwrap(),
        PeopleKeyChoice::default()
    );
    assert!(
        !s.prepare_people_key("k1", "k2").await.unwrap(),
        "nothing named yet"
    );
    let named = s.adopt_people_key("k1").await.unwrap();
    assert_eq!(named.current.as_deref(), Some("k1"));
    // A second server adopting its own first key changes nothing.
    assert_eq!(other.adopt_people_key("k9").await.unwrap(), named);
    // A key is prepared only to follow the current one, and one at a time.
    assert!(
        !s.prepare_people_key("k9", "k2").await.unwrap(),
        "not current"
    );
    assert!(!s.prepare_people_key("k1", "k1").await.unwrap(), "itself");
    assert!(s.prepare_people_key("k1", "k2").await.unwrap());
    assert!(other.prepare_people_key("k1", "k2").await.unwrap(), "again");
    assert!(
        !other.prepare_people_key("k1", "k3").await.unwrap(),
        "another is prepared"
    );
    assert_eq!(
        other.people_key_choice().await.unwrap(),
        PeopleKeyChoice {
            current: Some("k1".into()),
            next: Some("k2".into())
        }
    );
    // Only the prepared key is promoted, once.
    assert!(!s.promote_people_key("k3").await.unwrap());
    assert!(other.promote_people_key("k2").await.unwrap());
    assert!(!s.promote_people_key("k2").await.unwrap(), "promoted once");
    assert_eq!(
        s.people_key_choice().await.unwrap(),
        PeopleKeyChoice {
            current: Some("k2".into()),
            next: None
        }
    );
    assert!(s.prepare_people_key("k2", "k3").await.unwrap());
}

async fn a_key_is_promoted_only_once_every_live_server_has_loaded_it(b: backends::Backend) {
    let (s, d) = b.open().await;
    let (a, bb) = (d.another().await, d.another().await);
    s.adopt_people_key("k1").await.unwrap();
    assert!(s.prepare_people_key("k1", "k2").await.unwrap());
    a.report_people_keys("server-a", &ids(&["k1", "k2"]), "k1", MINUTE)
        .await
        .unwrap();
    // k20 contains k2's text: loading it is not loading k2.
    bb.report_people_keys("server-b", &ids(&["k1", "k20"]), "k1", MINUTE)
        .await
        .unwrap();
    assert!(!s.promote_people_key("k2").await.unwrap(), "b lacks k2");
    // B loads it: promoted.
    bb.report_people_keys("server-b", &ids(&["k2", "k1"]), "k1", MINUTE)
        .await
        .unwrap();
    assert!(s.promote_people_key("k2").await.unwrap());

    // A server that stopped (withdrawn) or died (its report ran out) no
    // longer holds a promotion back; one that is alive does.
    assert!(s.prepare_people_key("k2", "k3").await.unwrap());
    a.withdraw_people_keys("server-a").await.unwrap();
    bb.report_people_keys("server-b", &ids(&["k2"]), "k2", MINUTE)
        .await
        .unwrap();
    assert!(!s.promote_people_key("k3").await.unwrap());
    d.raw("UPDATE people_key_holders SET until_ms = 1").unwrap();
    assert!(s.promote_people_key("k3").await.unwrap());
}

async fn reports_live_for_their_length_and_list_what_each_server_holds(b: backends::Backend) {
    let (s, d) = b.open().await;
    let other = d.another().await;
    assert!(s.people_key_holders().await.unwrap().is_empty());
    let before = OffsetDateTime::now_utc();
    s.report_people_keys("server-a", &ids(&["k1", "k2"]), "k1", MINUTE)
        .await
        .unwrap();
    other
        .report_people_keys("server-b", &ids(&["k1"]), "k1", MINUTE)
        .await
        .unwrap();
    // A renewal replaces what the server holds.
    s.report_people_keys("server-a", &ids(&["k2", "k1"]), "k2", MINUTE)
        .await
        .unwrap();
    let held = other.people_key_holders().await.unwrap();
    assert_eq!(held.len(), 2, "{held:?}");
    assert_eq!(held[0].holder, "server-a");
    assert_eq!(held[0].loaded, ids(&["k2", "k1"]));
    assert_eq!(held[0].wraps_with, "k2");
    assert_eq!(held[1].loaded, ids(&["k1"]));
    // Its end is about a minute away, by the backend's clock.
    let off = held[0].until - before - time::Duration::minutes(1);
    assert!(off.abs() < time::Duration::seconds(5), "{off}");
    // A report that runs out is no longer listed.
    s.report_people_keys("server-c", &ids(&["k1"]), "k1", Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(s.people_key_holders().await.unwrap().len(), 3);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.people_key_holders().await.unwrap().len(), 2);
    // One that ran out a day ago is swept at the next report.
    d.raw("UPDATE people_key_holders SET until_ms = 1 WHERE holder = 'server-b'")
        .unwrap();
    s.report_people_keys("server-a", &ids(&["k2"]), "k2", MINUTE)
        .await
        .unwrap();
    assert_eq!(
        d.raw_i64("SELECT count(*) FROM people_key_holders WHERE holder = 'server-b'"),
        0
    );
    // A key ID with a comma would read back as two: refused.
    assert!(s
        .report_people_keys("server-a", &ids(&["k1,k2"]), "k1", MINUTE)
        .await
        .is_err());
    assert!(s
        .report_people_keys("server-a", &ids(&[""]), "k1", MINUTE)
        .await
        .is_err());
}

fn person(id: &str, key_id: &str) -> PersonRecord {
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    PersonRecord {
        id: PersonId::parse(id).unwrap(),
        status: EmploymentStatus::Active,
        departed_at: None,
        created_at: now,
        updated_at: now,
        key_id: key_id.into(),
        wrapped_key: format!("wrapped-{id}").into_bytes(),
        sealed: format!("sealed-{id}").into_bytes(),
        email_index: format!("e-{id}"),
        user_id_index: format!("u-{id}"),
        department_index: None,
    }
}

async fn the_keys_wrapping_people_are_listed(b: backends::Backend) {
    let (s, _d) = b.open().await;
    assert!(s.people_keys_wrapping().await.unwrap().is_empty());
    let people = [person("p1", "k2"), person("p2", "k1"), person("p3", "k2")];
    s.insert_people(&people).await.unwrap().unwrap();
    assert_eq!(s.people_keys_wrapping().await.unwrap(), ids(&["k1", "k2"]));
    s.rewrap_person_keys(&[(
        PersonId::parse("p2").unwrap(),
        "k1".into(),
        "k2".into(),
        b"rewrapped".to_vec(),
    )])
    .await
    .unwrap();
    assert_eq!(s.people_keys_wrapping().await.unwrap(), ids(&["k2"]));
    let later = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
    let all: Vec<PersonId> = people.iter().map(|p| p.id.clone()).collect();
    s.purge_people(&all, later).await.unwrap();
    assert!(s.people_keys_wrapping().await.unwrap().is_empty());
}

on_both_backends!(
    the_first_key_named_stays_current_until_a_prepared_one_is_promoted,
    a_key_is_promoted_only_once_every_live_server_has_loaded_it,
    reports_live_for_their_length_and_list_what_each_server_holds,
    the_keys_wrapping_people_are_listed,
);
