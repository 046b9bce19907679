//! Tests of [`super`].
#![allow(clippy::unwrap_used)]
use super::*;

fn incident(facts: IncidentFacts) -> Incident {
    let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    Incident {
        id: "i".into(),
        title: "t".into(),
        status: IncidentStatus::Open,
        opened_at: t,
        opened_by: "x".into(),
        alert_seq: None,
        discovered_at: t,
        window_from: t,
        window_to: t,
        actor: None,
        facts,
        updated_at: t,
    }
}

#[test]
fn the_appi_criteria_decide_whether_to_report() {
    let none = IncidentFacts::default();
    assert!(
        !classify(&none, 1000).report_required,
        "exactly 1,000 is not over"
    );
    assert!(classify(&none, 1001).report_required);
    let misuse = IncidentFacts {
        misuse_intent: true,
        ..IncidentFacts::default()
    };
    let c = classify(&misuse, 3);
    assert!(c.report_required && c.unauthorized_purpose);
    let sensitive = IncidentFacts {
        sensitive_data: true,
        strongly_encrypted: true,
        ..IncidentFacts::default()
    };
    let c = classify(&sensitive, 1);
    assert!(!c.report_required && c.exempt_strong_encryption);
    assert!(
        classify(
            &IncidentFacts {
                financial_harm: true,
                ..none
            },
            1
        )
        .report_required
    );
}

#[test]
fn deadlines_run_from_discovery_and_stretch_for_unauthorized_access() {
    let i = incident(IncidentFacts::default());
    let d = deadlines(&i, i.discovered_at + Duration::days(6));
    assert_eq!(d.preliminary_target - i.discovered_at, Duration::days(3));
    assert_eq!(d.preliminary_latest - i.discovered_at, Duration::days(5));
    assert_eq!(d.final_due - i.discovered_at, Duration::days(30));
    assert!(d.preliminary_overdue && !d.final_overdue);
    let mut j = incident(IncidentFacts {
        unauthorized_access: true,
        ..IncidentFacts::default()
    });
    j.facts.preliminary_reported_at = Some(j.discovered_at + Duration::days(2));
    let d = deadlines(&j, j.discovered_at + Duration::days(45));
    assert_eq!(d.final_due - j.discovered_at, Duration::days(60));
    assert!(!d.preliminary_overdue && !d.final_overdue);
}
