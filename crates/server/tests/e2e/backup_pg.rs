//! Backups of an installation on PostgreSQL: `mamori backup create` reads
//! the database from one snapshot while the server goes on writing, and
//! writes the same encrypted file as on SQLite. `restore --verify` reads
//! it; a person purged after the backup stays unreadable in it;
//! `restore --into` gives an installation on SQLite, which `mamori
//! migrate` moves into a new PostgreSQL database, where a server runs on
//! it. A purged person's wrapped data key leaves the database's files,
//! also when the purge ran while a backup's snapshot was open.

use crate::common::{authorized, client_trusting, operator, role_token, spawn_on_postgres};
use crate::people::{csv_of, import, synthetic};
use mamori::app;
use mamori_core::access::ClientContext;
use mamori_core::Services;
use mamori_sim::{DeviceKind, SimOptions};
use mamori_testkit::pg::{self, Cluster};
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_mamori");

/// Runs `mamori ARGS --data-dir DATA` against the database at `url`, off
/// the runtime's threads: whether it succeeded, and what it printed.
async fn mamori(data: &Path, url: &str, args: &[&str]) -> (bool, String) {
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(args)
        .arg("--data-dir")
        .arg(data)
        .env("MAMORI_DATABASE_URL", url);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn url_of(config: &mamori::config::Config) -> String {
    match &config.database {
        mamori::config::Database::Postgres(url) => url.clone(),
        mamori::config::Database::Embedded => panic!("the server is not on PostgreSQL"),
    }
}

/// Marks synthetic person `i` departed; their ID.
async fn depart(s: &Services, i: usize) -> String {
    let ctx = ClientContext::default();
    let (_, _, email, _) = synthetic(i);
    let person = s
        .lookup_person(&authorized(), &ctx, Some(&email), None)
        .await
        .unwrap();
    let departed = mamori_core::people::PersonInput {
        status: Some("departed".into()),
        ..Default::default()
    };
    s.update_person(&authorized(), &ctx, person.id.as_str(), &departed)
        .await
        .unwrap();
    person.id.as_str().to_owned()
}

/// Runs the retention job with a retention of 0 days: every departed
/// person is purged (and the backend forgets what was deleted).
async fn purge_departed(s: &Services) -> u64 {
    let mut now = s.clone();
    now.config = Arc::new(mamori_core::CoreConfig {
        people_retention_days: 0,
        ..(*s.config).clone()
    });
    now.purge_due_people(&operator(), &ClientContext::default())
        .await
        .unwrap()
}

// Length: one installation's whole story — written to during its backup,
// purged after it, restored, moved back to PostgreSQL and served — each
// step depending on the one before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_on_postgres_taken_while_the_server_writes_restores_and_moves_back() {
    let (app, config) = spawn_on_postgres().await;
    let url = url_of(&config);
    let data = config.data_dir.clone();
    let s = &app.running.services;
    let mut phone = app
        .enrolled(DeviceKind::IPhone, SimOptions::default())
        .await;
    let mac = app.enrolled(DeviceKind::Mac, SimOptions::default()).await;
    let (phone_id, mac_id) = (phone.udid().to_owned(), mac.udid().to_owned());
    let queued = app
        .enqueue(
            &[&phone_id],
            json!({"RequestType": "DeviceInformation", "Queries": ["DeviceName"]}),
        )
        .await;
    let cmd = phone.connect_idle().await.unwrap().expect("the command");
    let answer = phone.builtin_response(&cmd);
    assert!(phone.respond(&cmd, answer).await.unwrap().is_none());
    assert_eq!(app.command(&queued[0].1).await["status"], "Acknowledged");
    let admin = role_token(s, "dir-admin", "device_admin").await;
    assert_eq!(import(&app, &admin, csv_of(0..20)).await.0, 201);
    // Person 5 leaves; person 3 stays, on the phone.
    let leaver = depart(s, 5).await;
    let keeper = s
        .lookup_person(
            &authorized(),
            &ClientContext::default(),
            Some(&synthetic(3).2),
            None,
        )
        .await
        .unwrap()
        .id
        .as_str()
        .to_owned();
    let (st, _) = app
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/devices/{phone_id}/person"),
            Some(json!({"person_id": keeper})),
        )
        .await;
    assert_eq!(st, 204);

    // Writers go on while the backup runs: people added one by one and
    // commands queued, each with its audit records.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (http, stop, written) = (app.http.clone(), Arc::clone(&stop), Arc::clone(&written));
        let people = app.admin_url("/api/v1/people");
        let commands = app.admin_url("/api/v1/commands?push=false");
        let (admin, owner, phone_id) = (admin.clone(), app.token.clone(), phone_id.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let r = http
                    .post(&people)
                    .bearer_auth(&admin)
                    .json(
                        &json!({"name": format!("Writer {i}"), "user_id": format!("w{i}"),
                                  "email": format!("w{i}@example.jp")}),
                    )
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                let r = http
                    .post(&commands)
                    .bearer_auth(&owner)
                    .json(&json!({"devices": [phone_id],
                                  "command": {"RequestType": "DeviceInformation",
                                              "Queries": ["OSVersion"]}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                written.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
        })
    };
    while written.load(Ordering::SeqCst) < 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let file = app.dir.path().join("on-postgres.mbk");
    let before = written.load(Ordering::SeqCst);
    let (ok, text) = mamori(&data, &url, &["backup", "create", file.to_str().unwrap()]).await;
    let during = written.load(Ordering::SeqCst) - before;
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    assert!(ok, "{text}");
    assert!(during > 0, "nothing was written during the backup");
    assert!(text.contains("backup of PostgreSQL at"), "{text}");
    assert!(text.contains("no data keys"), "{text}");
    assert!(text.contains("rows read from one snapshot"), "{text}");
    let bytes = std::fs::read(&file).unwrap();
    for fragment in ["Quillfeather", "SQLite format", phone_id.as_str()] {
        assert!(
            !bytes
                .windows(fragment.len())
                .any(|w| w == fragment.as_bytes()),
            "{fragment} in the backup file"
        );
    }

    // Verified, in-process and from the command line: every person in it
    // readable with today's keys, and no data key in it.
    let v = mamori::backup::verify(s, &data, &file).await.unwrap();
    assert_eq!(
        (v.people, v.readable, v.data_keys),
        (v.readable, v.people, 0)
    );
    let people_in_backup = v.people;
    let total = 20 + written.load(Ordering::SeqCst) as usize;
    assert!(
        (20 + before as usize..total).contains(&people_in_backup),
        "{v:?}: the backup holds neither the people before it nor only those"
    );
    assert_eq!(v.devices, 2);
    let (ok, text) = mamori(
        &data,
        &url,
        &["backup", "restore", file.to_str().unwrap(), "--verify"],
    )
    .await;
    assert!(ok, "{text}");
    assert!(text.contains("integrity ok"), "{text}");
    assert!(
        text.contains(&format!(
            "people {people_in_backup}: readable with today's keys {people_in_backup}"
        )),
        "{text}"
    );

    // Purged after the backup: unreadable in it, and left out when it is
    // restored.
    assert_eq!(purge_departed(s).await, 1);
    let v = mamori::backup::verify(s, &data, &file).await.unwrap();
    assert_eq!(
        (v.people, v.readable, v.purged),
        (people_in_backup, people_in_backup - 1, 1),
        "{v:?}"
    );
    let root = tempfile::tempdir().unwrap();
    let restored = root.path().join("data");
    let (ok, text) = mamori(
        &data,
        &url,
        &[
            "backup",
            "restore",
            file.to_str().unwrap(),
            "--into",
            restored.to_str().unwrap(),
        ],
    )
    .await;
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!(
            "{} people readable, 1 purged since (removed)",
            people_in_backup - 1
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("migrate --from sqlite:{}", restored.display())),
        "{text}"
    );

    // Moved into a new PostgreSQL database: cell for cell, the audit
    // chain of the snapshot verified there.
    let moved = pg::shared().fresh_database();
    let report = mamori::migrate::migrate(&restored, &moved).await.unwrap();
    assert!(report.is_faithful(), "{report:?}");
    assert!(report.audit.fault.is_none(), "{:?}", report.audit);
    assert!(
        report.audit.records >= v.audit_records,
        "{:?}",
        report.audit
    );
    let rows = |name: &str| {
        report
            .tables
            .iter()
            .find(|t| t.name == name)
            .unwrap()
            .destination_rows
    };
    assert_eq!(rows("devices"), 2);
    assert_eq!(rows("people") as usize, people_in_backup - 1);
    assert_eq!(rows("person_keys") as usize, people_in_backup - 1);
    assert!(rows("commands") >= 2 + before);

    // Served from there: the devices, the person, the audit chain.
    let mut served = crate::common::test_config_on(root.path(), false);
    served.database = mamori::config::Database::Postgres(moved.clone());
    let running = app::start(&served).await.unwrap();
    let owner = role_token(&running.services, "after-restore", "owner").await;
    let officer = role_token(&running.services, "officer", "security_officer").await;
    let http = client_trusting(&std::fs::read(running.tls_ca_path.as_ref().unwrap()).unwrap());
    let api = |path: &str| format!("https://{}{path}", running.admin_addr);
    let devices: serde_json::Value = http
        .get(api("/api/v1/devices"))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut listed: Vec<&str> = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["udid"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    let mut expected = vec![phone_id.as_str(), mac_id.as_str()];
    expected.sort_unstable();
    assert_eq!(listed, expected);
    let personal = |id: String| {
        let (http, officer, url) = (
            http.clone(),
            officer.clone(),
            api(&format!("/api/v1/people/{id}/personal-data")),
        );
        async move {
            let r = http.get(url).bearer_auth(officer).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (st, body) = personal(keeper).await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains(&synthetic(3).2), "{body}");
    let (st, body) = personal(leaver).await;
    assert_ne!(st, 200, "{body}");
    assert!(!body.contains("Quillfeather"), "{body}");
    let audit = running.services.verify_audit().await.unwrap();
    assert!(audit.fault.is_none(), "{:?}", audit.fault);
    assert!(audit.records > report.audit.records, "{audit:?}");
    running.stop(Duration::from_secs(5)).await;
    app.running.stop(Duration::from_secs(5)).await;
}

/// Whether the file of `url`'s table `person_keys` holds `bytes`, read by
/// the server after a checkpoint wrote every changed page out.
fn key_table_file_holds(url: &str, bytes: &[u8]) -> bool {
    let db = Cluster::database_of(url);
    pg::shared().psql(db, "CHECKPOINT").unwrap();
    let found = pg::shared()
        .psql(
            db,
            &format!(
                "SELECT position('\\x{}'::bytea IN \
                 pg_read_binary_file(pg_relation_filepath('person_keys'))) > 0",
                hex::encode(bytes)
            ),
        )
        .unwrap();
    found == "t"
}

/// Whether the key's bytes leave the table's file. A transaction open
/// anywhere on the cluster when the purge rewrote the table (this test
/// server's own background jobs, other tests' servers) keeps the old
/// version until a later rewrite: VACUUM FULL is run again, a few times,
/// until none is open. The bytes must go; when they go depends on the
/// other transactions.
async fn gone_from_the_file(url: &str, bytes: &[u8]) -> bool {
    for _ in 0..30 {
        if !key_table_file_holds(url, bytes) {
            return true;
        }
        pg::shared()
            .psql(Cluster::database_of(url), "VACUUM FULL person_keys")
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// Whether `pg_dump` of `url`'s database holds `bytes` (as bytea's hex).
fn dump_holds(url: &str, bytes: &[u8]) -> bool {
    let dump = pg::shared().dump(Cluster::database_of(url));
    String::from_utf8_lossy(&dump).contains(&hex::encode(bytes))
}

async fn wrapped_key(s: &Services, id: &str) -> Vec<u8> {
    let id = mamori_domain::PersonId::parse(id).unwrap();
    s.store.person(&id).await.unwrap().unwrap().wrapped_key
}

/// A purged person's wrapped data key leaves pg_dump's output and the key
/// table's file once the retention job has run. A purge while a backup's
/// snapshot is open cannot drop the key's old row version (the snapshot
/// may still read it); the backup, once its snapshot has ended, has it
/// dropped. And the backup never reads the data keys' table.
// Length: the key followed through two purges and two backups, each step
// reading the files the one before left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_persons_key_leaves_the_database_files_even_during_a_backup() {
    let (app, config) = spawn_on_postgres().await;
    let url = url_of(&config);
    let admin = role_token(&app.running.services, "dir-admin", "device_admin").await;
    assert_eq!(import(&app, &admin, csv_of(0..6)).await.0, 201);
    // The server stops: a transaction of its own jobs open at a purge
    // would keep the old row version as a snapshot does. The command
    // line's services go on.
    let dir = app.dir;
    app.running.stop(Duration::from_secs(5)).await;
    let pusher = Arc::new(mamori_push::ApnsPusher::new(&config.apns_url, Vec::new()).unwrap());
    let (offline, _, _) = app::build_services(
        &config,
        "https://localhost:8443",
        "https://localhost:9443",
        pusher,
        false,
    )
    .await
    .unwrap();
    let s = &offline;

    // Purged with nothing else open.
    let first = depart(s, 1).await;
    let first_key = wrapped_key(s, &first).await;
    assert!(dump_holds(&url, &first_key));
    assert!(key_table_file_holds(&url, &first_key));
    assert_eq!(purge_departed(s).await, 1);
    assert!(!dump_holds(&url, &first_key));
    assert!(gone_from_the_file(&url, &first_key).await);

    // Purged while a backup's snapshot is open.
    let live = mamori_store_pg::PgStore::connect(&url).await.unwrap();
    let snapshot = live.snapshot().await.unwrap();
    let second = depart(s, 2).await;
    let second_key = wrapped_key(s, &second).await;
    assert_eq!(purge_departed(s).await, 1);
    assert!(!dump_holds(&url, &second_key));
    assert!(
        key_table_file_holds(&url, &second_key),
        "the snapshot no longer holds the purged key's old version: this test shows nothing"
    );
    let file = dir.path().join("during-purge.mbk");
    mamori::backup::create_from_snapshot(s, &live, snapshot, &config.data_dir, &file)
        .await
        .unwrap();
    assert!(gone_from_the_file(&url, &second_key).await);
    // The backup was taken before the purge: the person is in it, and
    // unreadable.
    let v = mamori::backup::verify(s, &config.data_dir, &file)
        .await
        .unwrap();
    assert_eq!((v.people, v.readable, v.purged), (5, 4, 1), "{v:?}");

    // The backup never reads the data keys' table: it runs through while
    // another session holds that table whole (as a purge's rewrite does).
    let db = Cluster::database_of(&url).to_owned();
    let holder = {
        let db = db.clone();
        std::thread::spawn(move || {
            pg::shared().psql(
                &db,
                "BEGIN; LOCK TABLE person_keys IN ACCESS EXCLUSIVE MODE; \
                 SELECT pg_sleep(120); COMMIT",
            )
        })
    };
    let held = || {
        pg::shared()
            .psql(
                &db,
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                 WHERE c.relname = 'person_keys' AND l.mode = 'AccessExclusiveLock' \
                 AND l.granted",
            )
            .unwrap()
            == "1"
    };
    while !held() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let file = dir.path().join("keys-held.mbk");
    let created = tokio::time::timeout(
        Duration::from_secs(60),
        mamori::backup::create_on_postgres(s, &live, &config.data_dir, &file),
    )
    .await
    .expect("the backup waited for the data keys' table")
    .unwrap();
    assert!(
        held(),
        "the backup ran only once the data keys' table was free"
    );
    assert!(created.rows > 0);
    pg::shared()
        .psql(
            &db,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE query LIKE '%pg_sleep(120)%' AND pid <> pg_backend_pid()",
        )
        .unwrap();
    assert!(holder.join().unwrap().is_err(), "the holder was not ended");
    live.close();
}
