//! Exporting personal data in the console: ask for the fields (a step-up
//! on the page), wait for a second administrator, then download the CSV
//! once within 24 hours, each person's read recorded before the file
//! leaves. The same use-cases as `/api/v1/people/exports*`.

use super::page::{notice, page, redirect, PageCtx, Shell};
use super::step_up::{self, Proof};
use crate::auth::{Auth, SessionSecret};
use crate::extract::Client;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use mamori_core::access::permit::PersonalDataRead;
use mamori_core::access::{Actor, Authorized};
use mamori_core::people::export::EXPORT_FIELDS;
use mamori_core::{CoreError, Services};
use maud::{html, Markup};
use serde::Deserialize;

/// `?id=` of a request to show.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Shown {
    id: Option<String>,
}

fn request_form(ctx: &PageCtx, csrf: &str, chosen: &[String]) -> Markup {
    html! {
        form method="post" action="/console/people/exports" id="export-form" {
            fieldset {
                legend { (ctx.t("export-request")) }
                p class="muted" { (ctx.t("export-intro")) }
                input type="hidden" name="csrf" value=(csrf);
                @for f in EXPORT_FIELDS {
                    label class="inline" {
                        input type="checkbox" name="field" value=(f) checked[chosen.is_empty() || chosen.iter().any(|c| c == f)];
                        " " (ctx.t(&format!("export-field-{}", f.replace('_', "-"))))
                    }
                }
                button type="submit" { (ctx.t("export-ask")) }
            }
        }
    }
}

async fn state_of(
    s: &Services,
    by: &Authorized<PersonalDataRead>,
    ctx: &PageCtx,
    csrf: &str,
    id: &str,
) -> Markup {
    let a = match s.export_request(by, id).await {
        Ok(a) => a,
        Err(_) => return notice("export-error", "error", ctx.t("export-missing")),
    };
    let status = a.status.as_str();
    html! {
        section aria-labelledby="export-state" class="notice" id="export-request" {
            h2 id="export-state" { (ctx.t("export-state")) " " code { (a.id) } }
            p id="export-status" data-status=(status) {
                @match (status, a.used_at) {
                    (_, Some(_)) => (ctx.t("export-used")),
                    ("approved", None) => (ctx.t("export-approved")),
                    ("pending", _) => (ctx.t("export-pending")),
                    _ => (ctx.t("export-closed")),
                }
            }
            @if status == "approved" && a.used_at.is_none() {
                form method="post" action="/console/people/exports/download" id="export-download" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="id" value=(a.id);
                    button type="submit" { (ctx.t("export-download")) }
                }
            }
        }
    }
}

/// `GET /console/people/exports[?id=]`.
pub(super) async fn index(
    State(s): State<Services>,
    Auth(by): Auth<PersonalDataRead>,
    Shell { ctx, csrf }: Shell,
    Query(q): Query<Shown>,
) -> Response {
    let shown = match q.id.as_deref().filter(|i| !i.is_empty()) {
        Some(id) => Some(state_of(&s, &by, &ctx, &csrf, id).await),
        None => None,
    };
    let body = html! {
        @if let Some(m) = shown { (m) }
        (request_form(&ctx, &csrf, &[]))
    };
    page(&ctx, StatusCode::OK, "export-title", body)
}

/// The request form as posted (its fields repeat).
fn fields_of(pairs: &[(String, String)]) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == "field")
        .map(|(_, v)| v.clone())
        .collect()
}

fn proof_of(pairs: &[(String, String)]) -> Proof {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    Proof {
        password: get("password"),
        code: get("code"),
        credential: get("credential"),
    }
}

/// `POST /console/people/exports`: asks (after the step-up the page asks
/// for, when it is missing).
pub(super) async fn request(
    State(s): State<Services>,
    Auth(by): Auth<PersonalDataRead>,
    Client(client): Client,
    shell: Shell,
    secret: Option<Extension<SessionSecret>>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/people/exports");
    let pairs = form.map(|Form(f)| f).unwrap_or_default();
    let fields = fields_of(&pairs);
    let refused = |status: StatusCode, top: Markup| {
        let body = html! { (top) (request_form(&ctx, &csrf, &fields)) };
        page(&ctx, status, "export-title", body)
    };
    let mut by = by;
    if let Some(admin) = by.actor().admin() {
        let secret = secret.as_ref().map(|Extension(x)| x);
        match step_up::perform(&s, admin, secret, &client, &proof_of(&pairs)).await {
            Ok(Some(fresh)) => match Actor::from(fresh).authorize::<PersonalDataRead>() {
                Ok(p) => by = p,
                Err(e) => return crate::error::ApiError(e).into_response(),
            },
            Ok(None) => {}
            Err(e) => {
                let n = notice("export-error", "error", step_up::failure(&ctx, &e));
                return refused(StatusCode::UNAUTHORIZED, n);
            }
        }
    }
    match s.request_export(&by, &client, Some(&fields)).await {
        Ok(a) => redirect(&format!("/console/people/exports?id={}", a.id)),
        Err(CoreError::StepUpRequired) => {
            let Some(admin) = by.actor().admin() else {
                return refused(StatusCode::FORBIDDEN, html! {});
            };
            let carried = html! {
                @for f in &fields { input type="hidden" name="field" value=(f); }
            };
            let form =
                step_up::form(&s, &ctx, &csrf, admin, "/console/people/exports", carried).await;
            refused(StatusCode::FORBIDDEN, form)
        }
        Err(CoreError::BadRequest(m)) => {
            let text = super::i18n::text(ctx.lang, "account-refused", &[("reason", m.into())]);
            refused(
                StatusCode::BAD_REQUEST,
                notice("export-error", "error", text),
            )
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

/// The download form.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Download {
    #[serde(default)]
    id: String,
}

/// `POST /console/people/exports/download`: the CSV, once.
pub(super) async fn download(
    State(s): State<Services>,
    Auth(by): Auth<PersonalDataRead>,
    Client(client): Client,
    shell: Shell,
    form: Result<Form<Download>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/people/exports");
    let id = form.map(|Form(f)| f.id).unwrap_or_default();
    match s.download_export(&by, &client, &id).await {
        Ok(csv) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"mamori-people.csv\"",
                ),
            ],
            csv.to_vec(),
        )
            .into_response(),
        Err(CoreError::NotFound(_) | CoreError::Conflict(_)) => {
            let body = html! {
                (notice("export-error", "error", ctx.t("export-gone")))
                (request_form(&ctx, &csrf, &[]))
            };
            page(&ctx, StatusCode::CONFLICT, "export-title", body)
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}
