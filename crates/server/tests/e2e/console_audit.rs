//! The audit log in the console, without a browser: newest first, filtered
//! by action, actor or target, paged back; the chain verified on demand;
//! only for a role that reads the audit log.

use crate::common::{role_token, spawn_app};

#[tokio::test]
async fn the_log_is_filtered_paged_and_verified() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let auditor = role_token(s, "console-auditor", "security_officer").await;
    let helpdesk = role_token(s, "console-hd", "helpdesk").await;
    // 120 enrollment links: 120 enrollment.link_create records.
    for _ in 0..120 {
        let r = app
            .post("/api/v1/enrollment-links", serde_json::json!({}))
            .await;
        assert_eq!(r.status(), 201);
    }
    let get = |path: String| {
        app.http
            .get(app.admin_url(&path))
            .bearer_auth(&auditor)
            .header("accept-language", "en")
            .send()
    };
    let page = get("/console/audit".into())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let seqs: Vec<i64> = page
        .split("data-seq=\"")
        .skip(1)
        .map(|r| r.split('"').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(seqs.len(), 100, "a page of 100");
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first");
    // The overview shows the chain's head to a role that reads the log.
    let (mut officer, _key) = crate::admins::onboard_webauthn(
        &app,
        "console-officer",
        mamori_domain::Role::SecurityOfficer,
    )
    .await;
    let home = officer
        .raw(reqwest::Method::GET, "/console/")
        .await
        .text()
        .await
        .unwrap();
    let state = home
        .split("id=\"audit-state\"")
        .nth(1)
        .expect("the chain's state");
    assert!(state.contains("<dd>#"), "{state}");
    assert!(home.contains("href=\"/console/audit?action=alert.\""));
    // Filtered: only the links, the older page continues.
    let page = get("/console/audit?action=enrollment.link_create".into())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rows = page.matches("data-seq=").count();
    assert_eq!(rows, 100);
    assert_eq!(
        page.matches("<code>enrollment.link_create</code>").count(),
        100,
        "only the filtered action"
    );
    let at = page.find("rel=\"next\" href=\"").expect("an older page") + 17;
    let older = page[at..].split('"').next().unwrap().replace("&amp;", "&");
    let older_url = older.clone();
    let page = get(older).await.unwrap().text().await.unwrap();
    assert_eq!(
        page.matches("<code>enrollment.link_create</code>").count(),
        20,
        "the rest, further back: {older_url}"
    );
    // Verified on demand.
    let r = app
        .http
        .post(app.admin_url("/console/audit/verify"))
        .bearer_auth(&auditor)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(text.contains("The chain is intact:"), "{text}");
    // Not for a helpdesk.
    let r = app
        .http
        .get(app.admin_url("/console/audit"))
        .bearer_auth(&helpdesk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
