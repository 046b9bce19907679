//! Incidents: opened by a high-severity alert with its scope attached,
//! classified under the APPI as facts are recorded, people notified, and
//! an evidence bundle that `mamori audit verify --bundle` proves offline —
//! and refuses once altered or checked against another key.

use crate::common::{spawn_app, TestApp};
use serde_json::{json, Value};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mamori");

fn verify(bundle: &std::path::Path, key: Option<&std::path::Path>) -> (bool, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["audit", "verify", "--bundle"]).arg(bundle);
    if let Some(k) = key {
        cmd.arg("--public-key").arg(k);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn patch(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    app.send(reqwest::Method::PATCH, path, Some(body)).await
}

/// Called from the insider test (`audit.rs`) once its reads were stopped
/// (`people`: those disclosed): the incident the alert opened, and its
/// evidence.
pub async fn the_alerts_incident_holds_the_scope_and_its_evidence(
    app: &TestApp,
    insider: &str,
    people: &[String],
) {
    let (st, list) = app.get("/api/v1/incidents").await;
    assert_eq!(st, 200);
    let incidents = list["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{list}");
    let inc = &incidents[0];
    assert_eq!(inc["opened_by"], "system");
    assert_eq!(inc["actor"], insider);
    assert!(inc["alert_seq"].is_i64());
    let id = inc["id"].as_str().unwrap().to_owned();
    // The console's alerts page names the rule and links the incident.
    let alerts = app
        .http
        .get(app.admin_url("/console/alerts"))
        .bearer_auth(&app.token)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        alerts.contains("<code>bulk_personal_data_read</code>"),
        "{alerts}"
    );
    assert!(alerts.contains(&format!("href=\"/console/incidents/{id}\"")));
    let n = people.len();
    let (_, view) = app.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(view["notification"]["affected"], n, "{view}");
    assert_eq!(view["notification"]["pending"], n);
    assert_eq!(view["by_field"]["email"], n);
    // Fewer than 1,000 people, nothing else established: no report
    // required yet.
    assert_eq!(view["classification"]["report_required"], false);
    let (_, listed) = app.get(&format!("/api/v1/incidents/{id}/people")).await;
    let mut ids: Vec<String> = listed["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["person"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, people);

    // The insider meant harm: report required, final report in 60 days.
    let (st, view) = patch(
        app,
        &format!("/api/v1/incidents/{id}"),
        json!({"misuse_intent": true, "report": {"cause": "An insider's token read the directory."}}),
    )
    .await;
    assert_eq!(st, 200, "{view}");
    assert_eq!(view["classification"]["report_required"], true);
    let discovered = time::OffsetDateTime::parse(
        view["incident"]["discovered_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let final_due = time::OffsetDateTime::parse(
        view["deadlines"]["final_due"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(final_due - discovered, time::Duration::days(60));
    let items = view["report_items"].as_array().unwrap();
    assert_eq!(items.len(), 9);
    let cause = items.iter().find(|i| i["key"] == "cause").unwrap();
    assert_eq!(cause["done"], true);
    let count = items.iter().find(|i| i["key"] == "people").unwrap();
    assert_eq!(count["from_audit_trail"], n.to_string());
    let (st, _) = patch(
        app,
        &format!("/api/v1/incidents/{id}"),
        json!({"report": {"x": "y"}}),
    )
    .await;
    assert_eq!(st, 400, "unknown report item");

    // Two people told, then everyone.
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/notifications"),
            json!({"people": [people[0], people[1]]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["notification"]["notified"], 2);
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/notifications"),
            json!({"all": true}),
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["notification"]["pending"], 0);

    // The evidence bundle, verified offline by the CLI.
    let r = app
        .http
        .get(app.admin_url(&format!("/api/v1/incidents/{id}/evidence")))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("evidence.json");
    std::fs::write(&file, &bytes).unwrap();
    let key = app.dir.path().join("data/audit-public.pem");
    let (ok, out) = verify(&file, Some(&key));
    assert!(ok, "{out}");
    assert!(out.contains("evidence bundle intact"), "{out}");
    assert!(
        out.contains(&format!("scope: {n} people affected, {n} access records")),
        "{out}"
    );
    let (ok, out) = verify(&file, None);
    assert!(ok && out.contains("fingerprint"), "{out}");

    // Altered: one record's actor changed.
    let mut b: Value = serde_json::from_slice(&bytes).unwrap();
    let recs = b["body"]["records"].as_array_mut().unwrap();
    let r = recs
        .iter_mut()
        .find(|r| r["action"] == "people.read")
        .unwrap();
    r["actor"] = json!("admin:someone-else");
    let altered = dir.path().join("altered.json");
    std::fs::write(&altered, serde_json::to_vec(&b).unwrap()).unwrap();
    let (ok, out) = verify(&altered, Some(&key));
    assert!(!ok, "{out}");
    assert!(out.contains("EVIDENCE BUNDLE INVALID"), "{out}");
    // Another server's key.
    let other = spawn_app().await;
    let (ok, out) = verify(&file, Some(&other.dir.path().join("data/audit-public.pem")));
    assert!(!ok && out.contains("another audit key"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_opened_by_hand_is_checked_and_classified() {
    let app = spawn_app().await;
    let r = app.post("/api/v1/incidents", json!({"title": ""})).await;
    assert_eq!(r.status(), 400);
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Laptop stolen", "from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status(), 400, "window backwards");
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Laptop stolen", "discovered_at": "2026-11-01T09:00:00Z"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let id = v["incident"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["notification"]["affected"], 0);
    assert_eq!(v["deadlines"]["preliminary_latest"], "2026-11-06T09:00:00Z");
    assert_eq!(v["deadlines"]["final_due"], "2026-12-01T09:00:00Z");
    assert_eq!(v["deadlines"]["preliminary_overdue"], true, "{v}");
    let (st, v) = patch(
        &app,
        &format!("/api/v1/incidents/{id}"),
        json!({"sensitive_data": true, "strongly_encrypted": true, "preliminary_reported_at": "2026-11-03T09:00:00Z", "status": "reported"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["classification"]["report_required"], false, "exempt");
    assert_eq!(v["deadlines"]["preliminary_overdue"], false);
    assert_eq!(v["incident"]["status"], "reported");
    let (st, _) = patch(
        &app,
        &format!("/api/v1/incidents/{id}"),
        json!({"status": "done"}),
    )
    .await;
    assert_eq!(st, 400);
    let (st, _) = app.get("/api/v1/incidents/nope").await;
    assert_eq!(st, 404);
    // Every step is on record.
    let audit = app.audit_records().await;
    let actions: Vec<&str> = audit
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"incident.open") && actions.contains(&"incident.update"));
}
