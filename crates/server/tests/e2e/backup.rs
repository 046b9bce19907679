//! Backups: encrypted, consistent while the server runs, without data
//! keys — so a person purged after the backup stays unreadable when the
//! backup is restored.

use crate::common::{role_token, spawn_with};
use crate::people::{csv_of, import, synthetic};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_purged_after_a_backup_stays_unreadable_in_it() {
    let app = spawn_with(|c| c.people_retention_days = 0).await;
    let s = &app.running.services;
    let admin = role_token(s, "dir-admin", "device_admin").await;
    assert_eq!(import(&app, &admin, csv_of(0..20)).await.0, 201);
    let ctx = mamori_core::access::ClientContext::default();
    let (_, _, email, _) = synthetic(5);
    let leaver = s
        .lookup_person(&crate::common::authorized(), &ctx, Some(&email), None)
        .await
        .unwrap();
    let departed = mamori_core::people::PersonInput {
        status: Some("departed".into()),
        ..Default::default()
    };
    s.update_person(
        &crate::common::authorized(),
        &ctx,
        leaver.id.as_str(),
        &departed,
    )
    .await
    .unwrap();

    let data = app.dir.path().join("data");
    let file = app.dir.path().join("before-purge.mbk");
    let store = mamori::app::open_store(&data).await.unwrap();
    let created = mamori::backup::create(s, &store, &data, &file)
        .await
        .unwrap();
    assert!(created.file_bytes > created.snapshot_bytes);
    let bytes = std::fs::read(&file).unwrap();
    for fragment in [
        "Quillfeather",
        "zquill",
        "mamori-corp",
        "+81-3-5550-",
        "SQLite format",
    ] {
        assert!(
            !bytes
                .windows(fragment.len())
                .any(|w| w == fragment.as_bytes()),
            "{fragment} in the backup file"
        );
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Before the purge every person in the backup is readable.
    let v = mamori::backup::verify(s, &data, &file).await.unwrap();
    assert_eq!((v.people, v.readable, v.data_keys), (20, 20, 0));
    assert!(v.audit_records > 0 && v.admins >= 1);

    assert_eq!(
        s.purge_due_people(&crate::common::operator(), &ctx)
            .await
            .unwrap(),
        1
    );
    let v = mamori::backup::verify(s, &data, &file).await.unwrap();
    assert_eq!((v.people, v.readable, v.purged), (20, 19, 1), "{v:?}");
    // Restored, the purged person is left out; the others get their live
    // data keys.
    let into = app.dir.path().join("restored");
    let r = mamori::backup::restore_into(s, &data, &file, &into)
        .await
        .unwrap();
    assert_eq!((r.people, r.removed), (19, 1), "{r:?}");
    let restored = rusqlite::Connection::open(into.join("mamori.db")).unwrap();
    let keys: i64 = restored
        .query_row(
            "SELECT count(*) FROM person_keys k JOIN people p ON p.id = k.person_id",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(keys, 19);
    let gone: i64 = restored
        .query_row(
            "SELECT count(*) FROM people_tombstones WHERE id = ?1",
            [leaver.id.as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(gone, 1);

    // A damaged or altered backup is refused, as is a foreign master key.
    let mut altered = bytes.clone();
    let at = altered.len() - 100;
    altered[at] ^= 0x40;
    let bad = app.dir.path().join("altered.mbk");
    std::fs::write(&bad, &altered).unwrap();
    let err = mamori::backup::verify(s, &data, &bad).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("damaged or was altered"),
        "{err:#}"
    );
    let truncated = app.dir.path().join("truncated.mbk");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert!(mamori::backup::verify(s, &data, &truncated).await.is_err());
    let other =
        mamori_core::people::vault::LocalKeyring::new(&[zeroize::Zeroizing::new(vec![3u8; 32])])
            .unwrap();
    let mut foreign = s.clone();
    foreign.vault = std::sync::Arc::new(other);
    let err = mamori::backup::verify(&foreign, &data, &file)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("not loaded"), "{err:#}");
    // An existing file is never overwritten.
    assert!(mamori::backup::create(s, &store, &data, &file)
        .await
        .is_err());
}
