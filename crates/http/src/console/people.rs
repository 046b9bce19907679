//! People in the console: the pseudonymous directory (IDs, status,
//! devices; never a name in a list), one person's page, and revealing a
//! person's personal data with a stated reason. A reveal goes through the
//! same use-case as the API: recorded before anything is read (with the
//! reason), counted against the bulk-read limit, and recorded again as the
//! data leaves.

use super::page::{page, titled, PageCtx, Shell};
use crate::auth::Auth;
use crate::extract::{Client, Path};
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use mamori_core::access::permit::{DevicesRead, PersonalDataRead};
use mamori_core::people::PersonPlain;
use mamori_core::{CoreError, Services};
use mamori_domain::{Permission, PersonId, PersonView};
use maud::{html, Markup};
use serde::Deserialize;

/// People on one page of the list.
const PAGE: u32 = 50;

/// Where the list starts.
#[derive(Debug, Default, Deserialize)]
pub(super) struct After {
    after: Option<String>,
}

fn status_text(ctx: &PageCtx, p: &PersonView) -> String {
    ctx.t(&format!(
        "person-status-{}",
        p.status.as_str().replace('_', "-")
    ))
}

/// `GET /console/people`.
pub(super) async fn list(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Shell { ctx, .. }: Shell,
    Query(q): Query<After>,
) -> Response {
    let after = q.after.as_deref().filter(|a| PersonId::parse(a).is_ok());
    let people = match s.list_people(&by, after, PAGE).await {
        Ok(p) => p,
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let next = (people.len() == PAGE as usize)
        .then(|| people.last().map(|p| p.id.to_string()))
        .flatten();
    let may_import = by
        .actor()
        .admin()
        .is_some_and(|a| a.allows(Permission::PeopleWrite));
    let body = html! {
        p { (ctx.t("people-intro")) }
        @if may_import { p { a href="/console/people/import" id="import-link" { (ctx.t("import-title")) } } }
        @if by.actor().admin().is_some_and(|a| a.allows(Permission::PersonalDataRead)) {
            p { a href="/console/people/exports" id="export-link" { (ctx.t("export-title")) } }
        }
        @if people.is_empty() {
            p id="people-none" { (ctx.t("people-none")) }
        } @else {
            table id="people" {
                thead { tr {
                    th scope="col" { (ctx.t("person-id")) }
                    th scope="col" { (ctx.t("person-status")) }
                    th scope="col" { (ctx.t("person-devices")) }
                    th scope="col" { (ctx.t("person-updated")) }
                } }
                tbody {
                    @for p in &people {
                        tr {
                            td { a href={ "/console/people/" (p.id) } { code { (p.id) } } }
                            td { (status_text(&ctx, p)) }
                            td { (p.devices.len()) }
                            td { (ctx.when(p.updated_at)) }
                        }
                    }
                }
            }
        }
        @if let Some(after) = next {
            p { a rel="next" href={ "/console/people?after=" (after) } { (ctx.t("devices-next")) } }
        }
    };
    page(&ctx, StatusCode::OK, "people-title", body)
}

/// The person's facts; a departed person's with the day their personal
/// data is purged (`retention_days` after the departure).
fn summary(ctx: &PageCtx, p: &PersonView, retention_days: u32) -> Markup {
    html! {
        dl class="facts" {
            dt { (ctx.t("person-id")) } dd { code { (p.id) } }
            dt { (ctx.t("person-status")) } dd { (status_text(ctx, p)) }
            @if let Some(at) = p.departed_at {
                dt { (ctx.t("person-departed")) } dd { (ctx.when(at)) }
                dt { (ctx.t("person-purge")) }
                dd id="person-purge" {
                    (ctx.when(at + time::Duration::days(i64::from(retention_days))))
                }
            }
            dt { (ctx.t("person-updated")) } dd { (ctx.when(p.updated_at)) }
            dt { (ctx.t("person-devices")) }
            dd {
                @if p.devices.is_empty() { (ctx.t("person-no-devices")) }
                @for d in &p.devices {
                    a href={ "/console/devices/" (d) } { code { (d) } } " "
                }
            }
        }
    }
}

fn reveal_form(ctx: &PageCtx, csrf: &str, id: &PersonId, error: Option<String>) -> Markup {
    html! {
        form method="post" action={ "/console/people/" (id) "/reveal" } id="reveal-form" {
            fieldset {
                legend { (ctx.t("reveal-title")) }
                p class="muted" { (ctx.t("reveal-intro")) }
                @if let Some(e) = error {
                    p class="error" role="alert" id="reveal-error" { (e) }
                }
                input type="hidden" name="csrf" value=(csrf);
                label for="reveal-reason" { (ctx.t("reveal-reason")) }
                input type="text" id="reveal-reason" name="reason" required maxlength="200"
                    autocomplete="off";
                button type="submit" { (ctx.t("reveal-button")) }
            }
        }
    }
}

/// The person's page: `top` above it (what a reveal showed), `error` in
/// the reveal form.
#[allow(clippy::too_many_arguments)]
async fn person_page(
    s: &Services,
    by: &mamori_core::access::Authorized<DevicesRead>,
    ctx: &PageCtx,
    csrf: &str,
    id: &PersonId,
    status: StatusCode,
    top: Option<Markup>,
    error: Option<String>,
) -> Response {
    let p = match s.person(by, id.as_str()).await {
        Ok(p) => p,
        Err(CoreError::NotFound(_)) => {
            let body = html! { p { (ctx.t("person-missing")) } };
            return page(ctx, StatusCode::NOT_FOUND, "not-found-title", body);
        }
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let may_reveal = by
        .actor()
        .admin()
        .is_some_and(|a| a.allows(Permission::PersonalDataRead));
    let may_offboard = by
        .actor()
        .admin()
        .is_some_and(|a| a.allows(Permission::PeopleWrite));
    let body = html! {
        @if let Some(t) = top { (t) }
        (summary(ctx, &p, s.config.people_retention_days))
        @if may_reveal { (reveal_form(ctx, csrf, id, error)) }
        @if may_offboard { (super::offboard::start_form(ctx, id)) }
    };
    let title = super::i18n::text(ctx.lang, "person-title", &[("id", p.id.as_str().into())]);
    titled(ctx, status, &title, body)
}

/// `GET /console/people/{id}`.
pub(super) async fn person(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Shell { ctx, csrf }: Shell,
    Path(id): Path<PersonId>,
) -> Response {
    person_page(&s, &by, &ctx, &csrf, &id, StatusCode::OK, None, None).await
}

/// The reveal form's field.
#[derive(Debug, Deserialize)]
pub(super) struct Reveal {
    #[serde(default)]
    reason: String,
}

fn revealed(ctx: &PageCtx, p: &PersonPlain, reason: &str) -> Markup {
    let none = || ctx.t("person-not-given");
    html! {
        section aria-labelledby="revealed" class="notice" id="revealed-data" {
            h2 id="revealed" { (ctx.t("revealed-title")) }
            p role="status" {
                (super::i18n::text(ctx.lang, "revealed-recorded", &[("reason", reason.into())]))
            }
            dl class="facts" {
                dt { (ctx.t("person-name")) } dd id="person-name" { (p.name) }
                dt { (ctx.t("person-user-id")) } dd { (p.user_id) }
                dt { (ctx.t("person-email")) } dd { (p.email) }
                dt { (ctx.t("person-department")) } dd { (p.department.clone().unwrap_or_else(none)) }
                dt { (ctx.t("person-phone")) } dd { (p.phone.clone().unwrap_or_else(none)) }
            }
        }
    }
}

/// `POST /console/people/{id}/reveal`.
pub(super) async fn reveal(
    State(s): State<Services>,
    Auth(proof): Auth<PersonalDataRead>,
    Client(client): Client,
    shell: Shell,
    Path(id): Path<PersonId>,
    form: Result<Form<Reveal>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at(&format!("/console/people/{id}"));
    let Ok(reader) = proof.actor().clone().authorize::<DevicesRead>() else {
        return crate::error::ApiError(CoreError::Forbidden("devices_read needed".into()))
            .into_response();
    };
    let reason = form.map(|Form(f)| f.reason).unwrap_or_default();
    let reason = reason.trim();
    if reason.is_empty() {
        let e = ctx.t("reveal-needs-reason");
        return person_page(
            &s,
            &reader,
            &ctx,
            &csrf,
            &id,
            StatusCode::BAD_REQUEST,
            None,
            Some(e),
        )
        .await;
    }
    match s
        .reveal_person(&proof, &client, id.as_str(), Some(reason))
        .await
    {
        Ok(plain) => {
            let top = revealed(&ctx, &plain, reason);
            person_page(
                &s,
                &reader,
                &ctx,
                &csrf,
                &id,
                StatusCode::OK,
                Some(top),
                None,
            )
            .await
        }
        Err(CoreError::BadRequest(m)) => {
            let e = super::i18n::text(ctx.lang, "reveal-refused", &[("reason", m.into())]);
            person_page(
                &s,
                &reader,
                &ctx,
                &csrf,
                &id,
                StatusCode::BAD_REQUEST,
                None,
                Some(e),
            )
            .await
        }
        Err(CoreError::TooManyRequests(_) | CoreError::Forbidden(_)) => {
            let e = ctx.t("reveal-limited");
            person_page(
                &s,
                &reader,
                &ctx,
                &csrf,
                &id,
                StatusCode::TOO_MANY_REQUESTS,
                None,
                Some(e),
            )
            .await
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}
