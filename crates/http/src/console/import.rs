//! Importing people in the console: CSV pasted into the page (the form
//! is at most 32 KiB: a few hundred people; the API and `mamori people
//! import` take files of any size), checked first with nothing written —
//! how many people it adds, every refused row with its line and reason —
//! then imported with one press. The same use-cases as
//! `POST /api/v1/people/import`.

use super::page::{notice, page, PageCtx, Shell};
use crate::auth::Auth;
use crate::extract::Client;
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use mamori_core::access::permit::PeopleWrite;
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

/// `GET /console/people/import`.
pub(super) async fn index(Auth(_by): Auth<PeopleWrite>, Shell { ctx, csrf }: Shell) -> Response {
    let body = html! {
        p { (ctx.t("import-intro")) }
        (form(&ctx, &csrf, "name,user_id,email,department,phone,status\n", false))
    };
    page(&ctx, StatusCode::OK, "import-title", body)
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
        _ => {
            let body = html! {
                (notice("import-error", "error", ctx.t("import-too-big")))
                (form(&ctx, &csrf, "", false))
            };
            return page(&ctx, StatusCode::BAD_REQUEST, "import-title", body);
        }
    };
    let checked = s.preview_people_csv(&by, &client, f.csv.as_bytes()).await;
    let p = match checked {
        Ok(p) => p,
        Err(CoreError::BadRequest(m)) => {
            let text = super::i18n::text(ctx.lang, "import-unreadable", &[("reason", m.into())]);
            let body = html! {
                (notice("import-error", "error", text))
                (form(&ctx, &csrf, &f.csv, false))
            };
            return page(&ctx, StatusCode::BAD_REQUEST, "import-title", body);
        }
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let ready = p.errors.is_empty() && p.people > 0;
    if f.step == "import" && ready {
        return match s.import_people_csv(&by, &client, f.csv.as_bytes()).await {
            Ok(n) => {
                let text = super::i18n::text(ctx.lang, "import-done", &[("people", n.into())]);
                let body = html! {
                    (notice("import-done", "notice", text))
                    p { a href="/console/people" { (ctx.t("nav-people")) } }
                };
                page(&ctx, StatusCode::CREATED, "import-title", body)
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
                let body = html! { (preview(&ctx, &p)) (form(&ctx, &csrf, &f.csv, false)) };
                page(&ctx, StatusCode::CONFLICT, "import-title", body)
            }
            Err(e) => crate::error::ApiError(e).into_response(),
        };
    }
    let status = if p.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let body = html! { (preview(&ctx, &p)) (form(&ctx, &csrf, &f.csv, ready)) };
    page(&ctx, status, "import-title", body)
}
