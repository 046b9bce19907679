//! The audit log in the console, without a browser: newest first, filtered
//! by action, actor or target, paged back; the chain verified on demand;
//! only for a role that reads the audit log.

use crate::common::{role_token, spawn_app, TestApp};

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
    let (_, page) = fetch(&app, "/console/audit", &auditor, "en").await;
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
    assert!(home.contains("href=\"/console/alerts\""));
    let week = home
        .split("id=\"alerts-week\"")
        .nth(1)
        .expect("the week's alerts");
    assert!(
        week.contains("アラート 0 件（うち重要度 高 0 件）"),
        "{week}"
    );
    // Filtered: only the links, the older page continues.
    let filtered = "/console/audit?action=enrollment.link_create";
    let (_, page) = fetch(&app, filtered, &auditor, "en").await;
    let rows = page.matches("data-seq=").count();
    assert_eq!(rows, 100);
    assert_eq!(
        page.matches("<code>enrollment.link_create</code>").count(),
        100,
        "only the filtered action"
    );
    let at = page.find("rel=\"next\" href=\"").expect("an older page") + 17;
    let older = page[at..].split('"').next().unwrap().replace("&amp;", "&");
    let (_, page) = fetch(&app, &older, &auditor, "en").await;
    assert_eq!(
        page.matches("<code>enrollment.link_create</code>").count(),
        20,
        "the rest, further back: {older}"
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
    assert_eq!(fetch(&app, "/console/audit", &helpdesk, "en").await.0, 403);
}

/// `GET path` with `token`, in `lang`: the status and the page.
async fn fetch(app: &TestApp, path: &str, token: &str, lang: &str) -> (u16, String) {
    let r = app
        .http
        .get(app.admin_url(path))
        .bearer_auth(token)
        .header("accept-language", lang)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The alerts page: the rule in the reader's language, its severity, whom
/// it concerns; the periods; the overview's count; not for a helpdesk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_listed_with_rule_severity_and_whom_they_concern() {
    use crate::admins::{onboard_totp, Browser, PASSWORD};
    let app = spawn_app().await;
    let s = &app.running.services;
    let helpdesk = role_token(s, "console-hd", "helpdesk").await;
    let (_, page) = fetch(&app, "/console/alerts", &app.token, "en").await;
    assert!(page.contains("0 alert(s), 0 of high severity."), "{page}");
    // Three wrong second factors in a row: alert.mfa_failures.
    onboard_totp(&app, "mika", mamori_domain::Role::Helpdesk).await;
    let mut b = Browser::new(&app);
    let login = serde_json::json!({"name": "mika", "password": PASSWORD});
    assert_eq!(b.post("/api/v1/auth/login", login).await.0, 200);
    for _ in 0..3 {
        let code = serde_json::json!({"code": "000000"});
        assert_eq!(b.post("/api/v1/auth/totp", code).await.0, 401);
    }
    let (_, page) = fetch(&app, "/console/alerts", &app.token, "en").await;
    assert!(page.contains("1 alert(s), 1 of high severity."), "{page}");
    let row = page.split("<tr data-seq=").nth(1).expect("a row");
    assert!(row.contains("Repeated second-factor failures"), "{row}");
    assert!(row.contains("<code>mfa_failures</code>") && row.contains(">High<"));
    assert!(row.contains("href=\"/console/audit?target=mika\""), "{row}");
    // In Japanese too; any period offered, an unknown one is a week.
    let (_, ja) = fetch(&app, "/console/alerts?days=90", &app.token, "ja").await;
    assert!(ja.contains("第二要素の連続失敗"));
    assert!(ja.contains("aria-current=\"page\">過去 90 日"), "{ja}");
    let (_, odd) = fetch(&app, "/console/alerts?days=5", &app.token, "en").await;
    assert!(odd.contains("aria-current=\"page\">last 7 days"), "{odd}");
    // Not for a helpdesk.
    assert_eq!(fetch(&app, "/console/alerts", &helpdesk, "en").await.0, 403);
}
