//! People imported from an uploaded CSV file in the console: the CSRF
//! token rides inside the upload and is checked; the file is checked
//! first with nothing written; the import takes only the very file that
//! was checked (nothing is kept between the two presses); an upload over
//! the limit, or from a role without the permission, changes nothing.

use crate::common::{role_token, spawn_app, TestApp};
use crate::console::{browser, csrf_of, totp_account};
use crate::console_devices::console_session;
use mamori_domain::Role;
use std::fmt::Write as _;

const BOUNDARY: &str = "mamori-test-boundary";

/// A multipart/form-data body with `fields`, then `file` as `people.csv`.
fn multipart(fields: &[(&str, &str)], file: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in fields {
        let part =
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n");
        body.extend_from_slice(part.as_bytes());
    }
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; \
         filename=\"people.csv\"\r\nContent-Type: text/csv\r\n\r\n"
    );
    body.extend_from_slice(head.as_bytes());
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload(app: &TestApp, auth: (&str, &str), body: Vec<u8>) -> (u16, String) {
    let r = browser(app)
        .post(app.admin_url("/console/people/import/file"))
        .header(auth.0, auth.1)
        .header("accept-language", "en")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// People on the first page of the directory (at most 1,000).
async fn listed(app: &TestApp) -> usize {
    let (st, p) = app.get("/api/v1/people?limit=1000").await;
    assert_eq!(st, 200, "{p}");
    p["people"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_file_is_checked_then_imported_only_if_unchanged() {
    let app = spawn_app().await;
    let secret = totp_account(&app, "importer", Role::DeviceAdmin).await;
    let cookie = console_session(&app, "importer", &secret).await;
    let session = ("cookie", cookie.as_str());
    let page = browser(&app)
        .get(app.admin_url("/console/people/import"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("enctype=\"multipart/form-data\""), "{page}");
    let csrf = csrf_of(&page);
    // 2,000 people: about three times what the paste box takes.
    let mut csv = String::from("name,user_id,email\n");
    for i in 0..2000 {
        writeln!(csv, "Person {i},user{i},user{i}@example.jp").unwrap();
    }
    assert!(csv.len() > 30_000);

    // Without the CSRF token inside the upload: refused, nothing read.
    let (st, _) = upload(
        &app,
        session,
        multipart(&[("step", "check")], csv.as_bytes()),
    )
    .await;
    assert_eq!(st, 403);
    // Checked: nothing written, the same file asked for again.
    let fields = [("csrf", csrf.as_str()), ("step", "check")];
    let (st, page) = upload(&app, session, multipart(&fields, csv.as_bytes())).await;
    assert_eq!(st, 200, "{page}");
    assert!(
        page.contains("people would be added (0 of them departed)"),
        "{page}"
    );
    assert!(page.contains("id=\"import-file-again\"") && page.contains("people.csv"));
    assert!(page.contains("id=\"import-file-go\""));
    let at = page.find("name=\"digest\" value=\"").expect("the digest") + 21;
    let digest = page[at..].split('"').next().unwrap().to_owned();
    assert_eq!(digest.len(), 64);
    assert_eq!(listed(&app).await, 0, "a check writes nothing");

    // Another file under the checked file's digest: checked, not imported.
    let changed = csv.replace("user1999@example.jp", "someone.else@example.jp");
    let fields = [
        ("csrf", csrf.as_str()),
        ("digest", digest.as_str()),
        ("step", "import"),
    ];
    let (st, page) = upload(&app, session, multipart(&fields, changed.as_bytes())).await;
    assert_eq!(st, 409, "{page}");
    assert!(page.contains("id=\"import-file-changed\""));
    assert_eq!(listed(&app).await, 0, "nothing imported");
    // The very file checked: imported.
    let (st, page) = upload(&app, session, multipart(&fields, csv.as_bytes())).await;
    assert_eq!(st, 201, "{page}");
    assert!(page.contains("2000 people imported."), "{page}");
    assert_eq!(listed(&app).await, 1000, "a full page of the 2,000");
    // Pressed again: the check refuses every row, no one is added twice.
    let (st, page) = upload(&app, session, multipart(&fields, csv.as_bytes())).await;
    assert_eq!(st, 400, "{page}");

    // An upload to a route that takes none: refused before it is read.
    let r = browser(&app)
        .post(app.admin_url("/console/people/import"))
        .header("cookie", &cookie)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(&[("csrf", csrf.as_str())], b"x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);

    // Over 16 MiB: refused with the limit named.
    let big = vec![b'a'; 16 * 1024 * 1024 + 1];
    let fields = [("csrf", csrf.as_str()), ("step", "check")];
    let (st, page) = upload(&app, session, multipart(&fields, &big)).await;
    assert_eq!(st, 400);
    assert!(page.contains("16 MiB"), "{page}");
    // A role without people_write is refused before its upload is read.
    let viewer = role_token(&app.running.services, "import-viewer", "viewer").await;
    let bearer = format!("Bearer {viewer}");
    let (st, _) = upload(&app, ("authorization", &bearer), multipart(&fields, b"x")).await;
    assert_eq!(st, 403);
}
