//! Importing people in the console: CSV pasted into the page (at most
//! 30,000 characters: a few hundred people) or uploaded as a file (at
//! most 16 MiB, see [`crate::upload`]), checked first with nothing
//! written — how many people it adds, every refused row with its line and
//! reason — then imported with one press. An uploaded file is not kept
//! between the check and the import: the import asks for the same file
//! again and imports it only if it is byte for byte the one checked (its
//! SHA-256 rides in the form). The same use-cases as
//! `POST /api/v1/people/import`.

use super::page::{notice, page, PageCtx, Shell};
use crate::auth::Auth;
use crate::extract::Client;
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use mamori_core::access::permit::PeopleWrite;
use mamori_core::access::{Authorized, ClientContext};
use mamori_core::people::{ImportPreview, RowError};
use mamori_core::{CoreError, Services};
use maud::{html, Markup};
use serde::Deserialize;

/// The most characters the page takes (inside the console's form limit).
const MAX_CSV: usize = 30_000;

fn form(ctx: &PageCtx, csrf: &str, csv: &str, ready: bool) -> Markup {
    html! {
        form method="post" action="/console/people/import" id="import-form" {
            input type="hidden" name="csrf" value=(csrf);
            label for="import-csv" { (ctx.t("import-csv")) }
            textarea id="import-csv" name="csv" rows="12" maxlength=(MAX_CSV) spellcheck="false"
                aria-describedby="import-csv-hint" required { (csv) }
            p class="hint" id="import-csv-hint" { (ctx.t("import-csv-hint")) }
            div class="actions" {
                button type="submit" name="step" value="check" { (ctx.t("import-check")) }
                @if ready {
                    button type="submit" name="step" value="import" class="danger" id="import-go" { (ctx.t("import-go")) }
                }
            }
        }
    }
}

fn preview(ctx: &PageCtx, p: &ImportPreview) -> Markup {
    html! {
        @if p.errors.is_empty() {
            p class="notice" role="status" id="import-preview" {
                (super::i18n::text(ctx.lang, "import-would-add", &[
                    ("people", p.people.into()),
                    ("departed", p.departed.into()),
                ]))
            }
        } @else {
            div role="alert" id="import-errors" {
                p class="error" { (super::i18n::text(ctx.lang, "import-refused-rows", &[("rows", p.errors.len().into())])) }
                table {
                    thead { tr { th scope="col" { (ctx.t("import-line")) } th scope="col" { (ctx.t("import-reason")) } } }
                    tbody {
                        @for e in p.errors.iter().take(200) {
                            tr data-line=(e.line) { td { (e.line) } td { (e.error) } }
                        }
                    }
                }
            }
        }
    }
}

/// A file checked: its digest, its name and the people it would add.
struct Checked<'a> {
    digest: &'a str,
    name: &'a str,
    people: usize,
}

fn file_form(ctx: &PageCtx, csrf: &str, checked: Option<&Checked<'_>>) -> Markup {
    html! {
        form method="post" action="/console/people/import/file" enctype="multipart/form-data"
            id="import-file-form" {
            input type="hidden" name="csrf" value=(csrf);
            @if let Some(c) = checked {
                input type="hidden" name="digest" value=(c.digest);
                p class="notice" id="import-file-again" {
                    (super::i18n::text(ctx.lang, "import-file-again", &[
                        ("file", c.name.into()),
                        ("people", c.people.into()),
                    ]))
                }
            }
            label for="import-file" { (ctx.t("import-file")) }
            input type="file" id="import-file" name="file" accept=".csv,text/csv" required;
            div class="actions" {
                button type="submit" name="step" value="check" { (ctx.t("import-check")) }
                @if checked.is_some() {
                    button type="submit" name="step" value="import" class="danger" id="import-file-go" { (ctx.t("import-go")) }
                }
            }
        }
    }
}

/// `GET /console/people/import`.
pub(super) async fn index(Auth(_by): Auth<PeopleWrite>, Shell { ctx, csrf }: Shell) -> Response {
    let body = html! {
        p { (ctx.t("import-intro")) }
        (form(&ctx, &csrf, "name,user_id,email,department,phone,status\n", false))
        h2 { (ctx.t("import-or-file")) }
        (file_form(&ctx, &csrf, None))
    };
    page(&ctx, StatusCode::OK, "import-title", body)
}

/// The page again with `text` as an error above `form`; nothing written.
fn refused(ctx: &PageCtx, text: String, form: Markup) -> Response {
    let body = html! { (notice("import-error", "error", text)) (form) };
    page(ctx, StatusCode::BAD_REQUEST, "import-title", body)
}

/// The check of `csv` (nothing written); a CSV that cannot be read at all
/// is answered with the reason above `form()`.
async fn check(
    s: &Services,
    by: &Authorized<PeopleWrite>,
    client: &ClientContext,
    ctx: &PageCtx,
    csv: &[u8],
    form: impl FnOnce() -> Markup,
) -> Result<ImportPreview, Response> {
    match s.preview_people_csv(by, client, csv).await {
        Ok(p) => Ok(p),
        Err(CoreError::BadRequest(m)) => {
            let text = super::i18n::text(ctx.lang, "import-unreadable", &[("reason", m.into())]);
            Err(refused(ctx, text, form()))
        }
        Err(e) => Err(crate::error::ApiError(e).into_response()),
    }
}

/// Imports `csv` (checked just before); on refused rows, shows them above
/// `again`.
async fn import_now(
    s: &Services,
    by: &Authorized<PeopleWrite>,
    client: &ClientContext,
    ctx: &PageCtx,
    csv: &[u8],
    again: Markup,
) -> Response {
    match s.import_people_csv(by, client, csv).await {
        Ok(n) => {
            let text = super::i18n::text(ctx.lang, "import-done", &[("people", n.into())]);
            let body = html! {
                (notice("import-done", "notice", text))
                p { a href="/console/people" { (ctx.t("nav-people")) } }
            };
            page(ctx, StatusCode::CREATED, "import-title", body)
        }
        Err(CoreError::Rows(rows)) => {
            let p = ImportPreview {
                people: 0,
                departed: 0,
                errors: rows
                    .into_iter()
                    .map(|(line, error)| RowError { line, error })
                    .collect(),
            };
            let body = html! { (preview(ctx, &p)) (again) };
            page(ctx, StatusCode::CONFLICT, "import-title", body)
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

/// `POST /console/people/import/file`: an uploaded CSV, checked; or
/// imported, when it is the file that was checked.
pub(super) async fn upload(
    State(s): State<Services>,
    Auth(by): Auth<PeopleWrite>,
    Client(client): Client,
    shell: Shell,
    uploaded: Option<Extension<crate::upload::Uploaded>>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/people/import");
    let up = match uploaded {
        Some(Extension(crate::upload::Uploaded(up))) if !up.file.is_empty() => up,
        _ => {
            let form = file_form(&ctx, &csrf, None);
            return refused(&ctx, ctx.t("import-file-missing"), form);
        }
    };
    let digest = mamori_crypto::sha256_hex(&up.file);
    let blank = || file_form(&ctx, &csrf, None);
    let p = match check(&s, &by, &client, &ctx, &up.file, blank).await {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    let ready = p.errors.is_empty() && p.people > 0;
    let checked = Checked {
        digest: &digest,
        name: &up.file_name,
        people: p.people,
    };
    let again = file_form(&ctx, &csrf, ready.then_some(&checked));
    let changed = up.step == "import" && up.digest != digest;
    if up.step == "import" && !changed && ready {
        return import_now(&s, &by, &client, &ctx, &up.file, again).await;
    }
    let status = match (changed, p.errors.is_empty()) {
        (true, _) => StatusCode::CONFLICT,
        (false, true) => StatusCode::OK,
        (false, false) => StatusCode::BAD_REQUEST,
    };
    let body = html! {
        @if changed { (notice("import-file-changed", "error", ctx.t("import-file-changed"))) }
        (preview(&ctx, &p))
        (again)
    };
    page(&ctx, status, "import-title", body)
}

/// The posted form.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ImportForm {
    #[serde(default)]
    csv: String,
    #[serde(default)]
    step: String,
}

/// `POST /console/people/import`: check, or import.
pub(super) async fn submit(
    State(s): State<Services>,
    Auth(by): Auth<PeopleWrite>,
    Client(client): Client,
    shell: Shell,
    form_data: Result<Form<ImportForm>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/people/import");
    let f = match form_data {
        Ok(Form(f)) if f.csv.len() <= MAX_CSV => f,
        _ => return refused(&ctx, ctx.t("import-too-big"), form(&ctx, &csrf, "", false)),
    };
    let again = || form(&ctx, &csrf, &f.csv, false);
    let p = match check(&s, &by, &client, &ctx, f.csv.as_bytes(), again).await {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    let ready = p.errors.is_empty() && p.people > 0;
    if f.step == "import" && ready {
        return import_now(&s, &by, &client, &ctx, f.csv.as_bytes(), again()).await;
    }
    let status = if p.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let body = html! { (preview(&ctx, &p)) (form(&ctx, &csrf, &f.csv, ready)) };
    page(&ctx, status, "import-title", body)
}
