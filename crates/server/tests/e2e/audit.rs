//! The audit log: hash chain and signed checkpoints (edit, delete, reorder
//! or truncate a record in the database file → `audit verify` names it),
//! and fail-closed (an unwritable audit log stops the action).

use crate::common::{role_token, spawn_app, TestApp};
use crate::people::{csv_of, import};
use serde_json::json;

fn raw(app: &TestApp) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(app.dir.path().join("data").join("mamori.db")).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    c
}

async fn fault(app: &TestApp) -> Option<String> {
    app.running.services.verify_audit().await.unwrap().fault
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_the_audit_log_is_named() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let admin = role_token(s, "dir-admin", "device_admin").await;
    for i in 0..4 {
        assert_eq!(import(&app, &admin, csv_of(i * 5..i * 5 + 5)).await.0, 201);
    }
    s.audit_checkpoint(&crate::common::operator())
        .await
        .unwrap()
        .unwrap();
    let v = s.verify_audit().await.unwrap();
    assert_eq!((v.fault.clone(), v.checkpoints), (None, 1), "{v:?}");
    assert!(v.records >= 10, "{v:?}");
    let last: i64 = raw(&app)
        .query_row("SELECT MAX(seq) FROM audit_log", [], |r| r.get(0))
        .unwrap();

    // An attacker with the database file drops the append-only triggers...
    let c = raw(&app);
    c.execute_batch("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
        .unwrap();
    // ...and edits a record.
    let actor: String = c
        .query_row("SELECT actor FROM audit_log WHERE seq = 5", [], |r| {
            r.get(0)
        })
        .unwrap();
    c.execute(
        "UPDATE audit_log SET actor = 'admin:nobody' WHERE seq = 5",
        [],
    )
    .unwrap();
    let f = fault(&app).await.unwrap();
    assert!(f.contains("record 5 was altered"), "{f}");
    c.execute("UPDATE audit_log SET actor = ? WHERE seq = 5", [&actor])
        .unwrap();
    assert_eq!(fault(&app).await, None);

    // Reorders two records (swaps everything but their positions).
    c.execute_batch(
        "CREATE TEMP TABLE a AS SELECT * FROM audit_log WHERE seq IN (3, 4);
         UPDATE audit_log SET (at, actor, source, action, target, outcome, request_id, detail, prev_hash, hash) =
           (SELECT at, actor, source, action, target, outcome, request_id, detail, prev_hash, hash
            FROM temp.a WHERE temp.a.seq = 7 - audit_log.seq)
         WHERE seq IN (3, 4);",
    )
    .unwrap();
    let f = fault(&app).await.unwrap();
    assert!(f.contains("record 3"), "{f}");
    c.execute_batch(
        "UPDATE audit_log SET (at, actor, source, action, target, outcome, request_id, detail, prev_hash, hash) =
           (SELECT at, actor, source, action, target, outcome, request_id, detail, prev_hash, hash
            FROM temp.a WHERE temp.a.seq = audit_log.seq)
         WHERE seq IN (3, 4);",
    )
    .unwrap();
    assert_eq!(fault(&app).await, None);

    // Deletes a record in the middle.
    c.execute("DELETE FROM audit_log WHERE seq = 7", [])
        .unwrap();
    let f = fault(&app).await.unwrap();
    assert!(f.contains("record 7 is missing"), "{f}");

    // Cuts records off the end, past the signed checkpoint.
    c.execute("DELETE FROM audit_log WHERE seq >= ?", [last - 1])
        .unwrap();
    c.execute("DELETE FROM audit_log WHERE seq = 7", [])
        .unwrap();
    let v = s.verify_audit().await.unwrap();
    let f = v.fault.unwrap();
    assert!(
        f.contains("record 7 is missing") || f.contains("signed in a checkpoint"),
        "{f}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_tail_is_caught_by_the_signed_checkpoint() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let admin = role_token(s, "dir-admin", "device_admin").await;
    assert_eq!(import(&app, &admin, csv_of(0..3)).await.0, 201);
    let pinned = s
        .audit_checkpoint(&crate::common::operator())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.audit_checkpoint(&crate::common::operator())
            .await
            .unwrap(),
        None,
        "nothing new"
    );
    let c = raw(&app);
    c.execute_batch("DROP TRIGGER audit_log_no_delete;")
        .unwrap();
    c.execute("DELETE FROM audit_log WHERE seq >= ?", [pinned - 1])
        .unwrap();
    let f = fault(&app).await.unwrap();
    assert!(f.contains(&format!("record {pinned}")), "{f}");
    assert!(f.contains("missing"), "{f}");
    // A forged checkpoint (no valid signature) is refused too.
    c.execute_batch("DROP TRIGGER audit_checkpoints_no_update;")
        .unwrap();
    c.execute("UPDATE audit_checkpoints SET signature = x'00'", [])
        .unwrap();
    let f = fault(&app).await.unwrap();
    assert!(f.contains("missing") || f.contains("bad signature"), "{f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_audit_log_stops_the_action() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let admin = role_token(s, "dir-admin", "device_admin").await;
    assert_eq!(import(&app, &admin, csv_of(0..2)).await.0, 201);
    let victim = role_token(s, "victim", "viewer").await;
    let c = raw(&app);
    c.execute_batch(
        "CREATE TRIGGER audit_blocked BEFORE INSERT ON audit_log
         BEGIN SELECT RAISE(ABORT, 'audit store unwritable'); END;",
    )
    .unwrap();
    let (st, body) = import(&app, &admin, csv_of(10..12)).await;
    assert_eq!(st, 503, "{body}");
    assert_eq!(
        body["error"],
        "the audit log cannot be written; nothing was done"
    );
    let r = app
        .post("/api/v1/admins/victim/disable", json!({"reason": "test"}))
        .await;
    assert_eq!(r.status(), 503);
    // Nothing changed.
    assert_eq!(s.store.count_people().await.unwrap(), 2);
    let r = app
        .http
        .get(app.admin_url("/api/v1/devices"))
        .bearer_auth(&victim)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the account was not disabled");
    c.execute_batch("DROP TRIGGER audit_blocked;").unwrap();
    assert_eq!(import(&app, &admin, csv_of(10..12)).await.0, 201);
    assert_eq!(fault(&app).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insider_bulk_read_is_stopped_and_its_scope_reported() {
    let app = spawn_app().await; // alert at 300 people a minute
    let s = &app.running.services;
    let admin = role_token(s, "dir-admin", "device_admin").await;
    assert_eq!(import(&app, &admin, csv_of(0..600)).await.0, 201);
    let insider = role_token(s, "insider", "security_officer").await;
    let label = format!("token:{}:insider", insider.split('_').nth(1).unwrap());
    let get = |path: String, token: String| {
        let r = app.http.get(app.admin_url(&path)).bearer_auth(token).send();
        async move {
            let r = r.await.unwrap();
            let st = r.status().as_u16();
            (st, r.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    // 250 people: under the threshold, delivered.
    let (st, page) = get(
        "/api/v1/people/personal-data?limit=250".into(),
        insider.clone(),
    )
    .await;
    assert_eq!(st, 200);
    let after = page["next_after"].as_str().unwrap().to_owned();
    // 250 more within the minute: the alert fires, nothing is delivered,
    // and the account is suspended.
    let (st, body) = get(
        format!("/api/v1/people/personal-data?limit=250&after={after}"),
        insider.clone(),
    )
    .await;
    assert_eq!(st, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("suspended"));
    let (st, _) = get("/api/v1/devices".into(), insider.clone()).await;
    assert_eq!(st, 401, "the token is revoked");
    let mut alerts = Vec::new();
    let mut after_seq = 0;
    loop {
        let (_, page) = app
            .get(&format!("/api/v1/audit?limit=1000&after={after_seq}"))
            .await;
        let recs = page["records"].as_array().unwrap().clone();
        if recs.is_empty() {
            break;
        }
        after_seq = recs.last().unwrap()["seq"].as_i64().unwrap();
        alerts.extend(recs.into_iter().filter(|r| {
            r["action"] == "alert.bulk_personal_data_read" || r["action"] == "actor.suspend"
        }));
    }
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[0]["target"], label.as_str());
    assert!(alerts[0]["detail"]
        .as_str()
        .unwrap()
        .starts_with("severity=high reads=500"));

    // The scope: exactly the 250 people whose data left (the refused 250
    // were asked for, not disclosed), every field, one actor.
    let (st, report) = app
        .get(&format!("/api/v1/reports/breach-scope?actor={label}"))
        .await;
    assert_eq!(st, 200, "{report}");
    assert_eq!(report["people_affected"], 250);
    assert_eq!(report["records"], 250);
    for f in ["name", "user_id", "email", "department", "phone"] {
        assert_eq!(report["by_field"][f], 250, "{f}");
    }
    assert_eq!(
        report["by_actor"],
        json!([{"actor": label, "people": 250, "reads": 250}])
    );
    let (_, all) = app.get("/api/v1/people?limit=1000").await;
    let mut disclosed: Vec<String> = all["people"].as_array().unwrap()[..250]
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    let mut reported: Vec<String> = report["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["person"].as_str().unwrap().to_owned())
        .collect();
    disclosed.sort();
    reported.sort();
    assert_eq!(reported, disclosed);
    // The alert opened an incident with exactly that scope; its evidence
    // bundle proves it offline.
    crate::incidents::the_alerts_incident_holds_the_scope_and_its_evidence(
        &app, &label, &disclosed,
    )
    .await;
    // Another window holds nothing; a bad window is refused.
    let (_, empty) = app
        .get("/api/v1/reports/breach-scope?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z")
        .await;
    assert_eq!(empty["people_affected"], 0);
    let (st, _) = app.get("/api/v1/reports/breach-scope?from=yesterday").await;
    assert_eq!(st, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_old_records_only_behind_a_signed_mark() {
    let app = spawn_app().await;
    let s = &app.running.services;
    for _ in 0..3 {
        app.profile(json!({})).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let cutoff = time::OffsetDateTime::now_utc();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    for _ in 0..3 {
        app.profile(json!({})).await;
    }
    let before_cut: i64 = raw(&app)
        .query_row(
            "SELECT MAX(seq) FROM audit_log WHERE at < ?",
            [cutoff.unix_timestamp()],
            |r| r.get(0),
        )
        .unwrap();
    let removed = s
        .truncate_audit_before(&crate::common::operator(), cutoff)
        .await
        .unwrap();
    assert_eq!(removed, before_cut as u64);
    let v = s.verify_audit().await.unwrap();
    assert_eq!(
        (v.fault.clone(), v.truncated_up_to),
        (None, Some(before_cut)),
        "{v:?}"
    );
    let first: i64 = raw(&app)
        .query_row("SELECT MIN(seq) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(first, before_cut + 1);
    // The truncation itself is on record.
    let (what, detail): (String, String) = raw(&app)
        .query_row(
            "SELECT action, detail FROM audit_log WHERE action = 'audit.truncate'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(what, "audit.truncate");
    assert!(detail.contains(&format!("up_to={before_cut}")), "{detail}");
    // Nothing newer than the mark can be deleted, even from the file.
    let err = raw(&app)
        .execute("DELETE FROM audit_log WHERE seq = ?", [first])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    // A mark forged without the audit key lets the file delete records,
    // but `audit verify` names the forgery.
    let c = raw(&app);
    c.execute(
        "INSERT INTO audit_truncations (up_to_seq, hash, at, before_at, signature)
         VALUES (?, zeroblob(32), 0, 0, x'3006020101020101')",
        [first + 2],
    )
    .unwrap();
    c.execute("DELETE FROM audit_log WHERE seq <= ?", [first + 2])
        .unwrap();
    let f = fault(&app).await.unwrap();
    assert!(
        f.contains(&format!(
            "truncation mark at record {} has a bad signature",
            first + 2
        )),
        "{f}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_never_removes_what_a_sink_has_not_delivered() {
    let app = crate::common::spawn_with(|c| {
        c.audit_sinks =
            mamori_sinks::SinkSpec::parse_list("down=https://127.0.0.1:1/hook").unwrap();
    })
    .await;
    let s = &app.running.services;
    app.profile(json!({})).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let removed = s
        .truncate_audit_before(&crate::common::operator(), time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(removed, 0);
    assert_eq!(s.verify_audit().await.unwrap().truncated_up_to, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_devices_do_and_what_is_refused_to_them_is_on_record() {
    let app = spawn_app().await;
    let mut a = app
        .enrolled(
            mamori_sim::DeviceKind::IPhone,
            mamori_sim::SimOptions::default(),
        )
        .await;
    let b = app
        .enrolled(
            mamori_sim::DeviceKind::IPhone,
            mamori_sim::SimOptions::default(),
        )
        .await;
    let udid = a.udid().to_owned();
    let q = app
        .enqueue(
            &[&udid],
            json!({"RequestType": "DeviceInformation", "Queries": ["OSVersion"]}),
        )
        .await;
    a.run_queue().await.unwrap();
    // A's certificate claiming B's identity: refused, and recorded.
    a.claim_udid(Some(b.udid().to_owned()));
    assert_eq!(a.connect_idle().await.unwrap_err().status(), Some(403));
    a.claim_udid(None);
    a.check_out().await.unwrap();

    let audit = app.audit_records().await;
    let recs = audit;
    let find = |action: &str, target: &str| {
        recs.iter()
            .find(|r| r["action"] == action && r["target"] == target)
            .unwrap_or_else(|| panic!("no {action} for {target}"))
            .clone()
    };
    let enroll = find("device.enroll", &udid);
    assert_eq!(enroll["actor"], format!("device:{udid}"));
    assert_eq!(enroll["source"], "127.0.0.1");
    let result = find("command.result", &q[0].1);
    assert_eq!(result["actor"], format!("device:{udid}"));
    assert_eq!(
        result["detail"],
        "status=Acknowledged request_type=DeviceInformation"
    );
    let refused = recs
        .iter()
        .find(|r| r["action"] == "device.rejected")
        .unwrap();
    assert_eq!(refused["outcome"], "denied");
    assert_eq!(refused["source"], "127.0.0.1");
    assert!(refused["detail"].as_str().unwrap().starts_with("connect: "));
    find("device.checkout", &udid);
    assert_eq!(fault(&app).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breach_scope_narrows_to_one_token_or_one_network() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let admin = role_token(s, "dir-admin", "device_admin").await;
    assert_eq!(import(&app, &admin, csv_of(0..5)).await.0, 201);
    let (_, all) = app.get("/api/v1/people?limit=10").await;
    let ids: Vec<String> = all["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    let alice = role_token(s, "alice", "security_officer").await;
    let bob = role_token(s, "bob", "security_officer").await;
    let read = |token: String, from: &'static str, id: String| {
        let http = crate::common::client_from(&app, from);
        let url = app.admin_url(&format!("/api/v1/people/{id}/personal-data"));
        async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    for id in &ids[..3] {
        read(alice.clone(), "127.0.0.1", id.clone()).await;
    }
    for id in &ids[3..] {
        read(bob.clone(), "127.0.1.1", id.clone()).await;
    }
    let alice_id = alice.split('_').nth(1).unwrap();
    let (st, r) = app
        .get(&format!("/api/v1/reports/breach-scope?token={alice_id}"))
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["people_affected"], 3);
    assert_eq!(r["token"], alice_id);
    let (_, r) = app
        .get("/api/v1/reports/breach-scope?network=127.0.1.0/24")
        .await;
    assert_eq!(r["people_affected"], 2, "{r}");
    assert_eq!(r["network"], "127.0.1.0/24");
    assert_eq!(
        r["by_actor"][0]["actor"],
        format!("token:{}:bob", bob.split('_').nth(1).unwrap())
    );
    let (_, r) = app.get("/api/v1/reports/breach-scope").await;
    assert_eq!(r["people_affected"], 5);
    for bad in ["network=127.0.0.0/99", "network=somewhere", "token=x%20y"] {
        let (st, _) = app
            .get(&format!("/api/v1/reports/breach-scope?{bad}"))
            .await;
        assert_eq!(st, 400, "{bad}");
    }
}

/// The store links each append onto the end it holds under its write lock:
/// a second writer on the same database (a `mamori` command while the
/// server runs, another server) refuses nobody, and the log neither forks
/// nor has a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_one_log_never_fork_it() {
    let app = spawn_app().await;
    let services = app.running.services.clone();
    let other = std::sync::Arc::new(
        mamori_store::SqliteStore::open(&app.dir.path().join("data").join("mamori.db"))
            .await
            .unwrap(),
    );
    let before = services.store.audit_head().await.unwrap().seq;
    let event = |who: &str, i: usize| mamori_domain::AuditEvent {
        at: time::OffsetDateTime::now_utc(),
        actor: who.to_owned(),
        source: None,
        action: "test.append".into(),
        target: None,
        outcome: "success".into(),
        request_id: None,
        detail: Some(format!("n={i}")),
    };
    let server = tokio::spawn(async move {
        for i in 0..150 {
            services.audit(event("system", i)).await.unwrap();
        }
    });
    let cli = tokio::spawn(async move {
        let writer = mamori_core::audit::chain::ChainWriter::default();
        for i in 0..150 {
            writer
                .append(&*other, &[event("cli:test(uid=0)", i)])
                .await
                .unwrap();
        }
    });
    server.await.unwrap();
    cli.await.unwrap();
    let services = &app.running.services;
    assert_eq!(
        services.store.audit_head().await.unwrap().seq,
        before + 300,
        "every append landed once"
    );
    let verified = services.verify_audit().await.unwrap();
    assert_eq!(verified.fault, None);
    assert_eq!(verified.records, u64::try_from(before + 300).unwrap());
}
