//! Offboarding a person in the console: a confirmation that lists exactly
//! what will happen (core's `offboard_plan`: accounts closed now or
//! waiting for an account manager, devices taken out of management,
//! retired or erased after a second person approves, when the data is
//! purged), then one press does it and the page shows what was done. The
//! same use-case as `POST /api/v1/people/{id}/offboard`.

use super::page::{notice, titled, PageCtx, Shell};
use crate::auth::Auth;
use crate::extract::{Client, Path};
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use mamori_core::access::permit::PeopleWrite;
use mamori_core::people::offboard::{OffboardAction, OffboardPlan, OffboardReport};
use mamori_core::{CoreError, Services};
use mamori_domain::{DeviceKey, Permission, PersonId};
use maud::{html, Markup};
use serde::Deserialize;

/// The choice of what happens to enrolled devices.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Choice {
    #[serde(default)]
    action: String,
}

impl Choice {
    fn action(&self) -> Option<OffboardAction> {
        OffboardAction::parse(&self.action)
    }
}

/// The form on a person's page that opens the confirmation.
pub(super) fn start_form(ctx: &PageCtx, id: &PersonId) -> Markup {
    html! {
        form method="get" action={ "/console/people/" (id) "/offboard" } id="offboard-start" {
            fieldset {
                legend { (ctx.t("offboard-title")) }
                p class="muted" { (ctx.t("offboard-intro")) }
                label class="inline" { input type="radio" name="action" value="remove_management" checked; " " (ctx.t("offboard-remove")) }
                label class="inline" { input type="radio" name="action" value="erase"; " " (ctx.t("offboard-erase")) }
                button type="submit" { (ctx.t("offboard-review")) }
            }
        }
    }
}

fn devices(ctx: &PageCtx, id: &str, key: &str, list: &[DeviceKey]) -> Markup {
    html! {
        @if !list.is_empty() {
            li id=(id) {
                (super::i18n::text(ctx.lang, key, &[("count", list.len().into())]))
                ul { @for d in list { li { a href={ "/console/devices/" (d) } { code { (d) } } } } }
            }
        }
    }
}

/// The accounts' names, or how many when the reader may not see whose
/// login is whose.
fn named(ctx: &PageCtx, names: &[String], count: usize) -> String {
    if names.is_empty() {
        super::i18n::text(
            ctx.lang,
            "offboard-accounts-count",
            &[("count", count.into())],
        )
    } else {
        names.join(", ")
    }
}

fn plan_list(ctx: &PageCtx, p: &OffboardPlan) -> Markup {
    html! {
        ul id="offboard-plan" {
            li { (ctx.t(if p.departed { "offboard-already" } else { "offboard-departed" })) }
            @if p.accounts_closed_count > 0 {
                li id="plan-accounts" { (super::i18n::text(ctx.lang, "offboard-accounts", &[("names", named(ctx, &p.accounts_closed, p.accounts_closed_count).into())])) }
            }
            @if p.accounts_waiting_count > 0 {
                li id="plan-waiting" { (super::i18n::text(ctx.lang, "offboard-accounts-waiting", &[("names", named(ctx, &p.accounts_waiting, p.accounts_waiting_count).into())])) }
            }
            (devices(ctx, "plan-removed", "offboard-devices-removed", &p.devices_removed))
            (devices(ctx, "plan-erased", "offboard-devices-erased", &p.devices_erased))
            (devices(ctx, "plan-retired", "offboard-devices-retired", &p.devices_retired))
            @if p.devices_removed.is_empty() && p.devices_erased.is_empty() && p.devices_retired.is_empty() {
                li { (ctx.t("offboard-no-devices")) }
            }
            li { (super::i18n::text(ctx.lang, "offboard-purge", &[("days", p.purge_after_days.into())])) }
        }
    }
}

/// `GET /console/people/{id}/offboard?action=`: the confirmation.
pub(super) async fn confirm(
    State(s): State<Services>,
    Auth(by): Auth<PeopleWrite>,
    Shell { ctx, csrf }: Shell,
    Path(id): Path<PersonId>,
    Query(choice): Query<Choice>,
) -> Response {
    let Some(action) = choice.action() else {
        return refused(&ctx, StatusCode::BAD_REQUEST, ctx.t("offboard-bad-action"));
    };
    let plan = match s.offboard_plan(&by, id.as_str(), Some(action)).await {
        Ok(p) => p,
        Err(CoreError::NotFound(_)) => {
            return refused(&ctx, StatusCode::NOT_FOUND, ctx.t("person-missing"));
        }
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let body = html! {
        p { (ctx.t("offboard-will")) }
        (plan_list(&ctx, &plan))
        form method="post" action={ "/console/people/" (id) "/offboard" } id="offboard-form" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="action" value=(choice.action);
            div class="actions" {
                button type="submit" class="danger" { (ctx.t("offboard-confirm")) }
                a href={ "/console/people/" (id) } { (ctx.t("offboard-cancel")) }
            }
        }
    };
    titled(&ctx, StatusCode::OK, &title(&ctx, &id), body)
}

fn title(ctx: &PageCtx, id: &PersonId) -> String {
    super::i18n::text(
        ctx.lang,
        "offboard-page-title",
        &[("id", id.as_str().into())],
    )
}

fn refused(ctx: &PageCtx, status: StatusCode, text: String) -> Response {
    let body = notice("offboard-error", "error", text);
    super::page::page(ctx, status, "offboard-title", body)
}

fn done(ctx: &PageCtx, r: &OffboardReport, may_name: bool) -> Markup {
    let hidden = ctx.t("offboard-an-account");
    let name = |n: &str| {
        if may_name {
            n.to_owned()
        } else {
            hidden.clone()
        }
    };
    html! {
        (notice("offboard-done", "notice", ctx.t("offboard-done")))
        ul id="offboard-report" {
            @for a in &r.accounts {
                li { (super::i18n::text(ctx.lang, "offboard-closed", &[
                    ("name", name(&a.name).into()),
                    ("sessions", a.sessions_revoked.into()),
                    ("tokens", a.tokens_revoked.into()),
                ])) }
            }
            @for a in &r.accounts_waiting {
                li { (super::i18n::text(ctx.lang, "offboard-waiting", &[
                    ("name", name(&a.name).into()),
                    ("approval", a.approval.as_str().into()),
                ])) }
            }
            @for owner in &r.last_owner_kept {
                li class="error" { (super::i18n::text(ctx.lang, "offboard-last-owner", &[("name", name(owner).into())])) }
            }
            @for d in &r.devices {
                li data-device=(d.udid) {
                    a href={ "/console/devices/" (d.udid) } { code { (d.udid) } } " — "
                    @match (&d.command_uuid, d.revoke_deadline) {
                        (Some(_), Some(t)) => (super::i18n::text(ctx.lang, "offboard-device-removing", &[("deadline", ctx.when(t).into())])),
                        (None, _) if r.erase_approval.is_some() && d.certificates_revoked == 0 => (ctx.t("offboard-device-erase")),
                        _ => (ctx.t("offboard-device-retired")),
                    }
                }
            }
            @if let Some(a) = &r.erase_approval {
                li id="offboard-erase-approval" { (super::i18n::text(ctx.lang, "offboard-erase-waiting", &[("approval", a.as_str().into())])) }
            }
        }
    }
}

/// `POST /console/people/{id}/offboard`: does it.
pub(super) async fn offboard(
    State(s): State<Services>,
    Auth(by): Auth<PeopleWrite>,
    Client(client): Client,
    shell: Shell,
    Path(id): Path<PersonId>,
    form: Result<Form<Choice>, FormRejection>,
) -> Response {
    let Shell { ctx, .. } = shell.at(&format!("/console/people/{id}"));
    let Some(action) = form.ok().and_then(|Form(c)| c.action()) else {
        return refused(&ctx, StatusCode::BAD_REQUEST, ctx.t("offboard-bad-action"));
    };
    match s
        .offboard_person(&by, &client, id.as_str(), Some(action))
        .await
    {
        Ok(report) => {
            // Whose login is whose: for account managers and readers of
            // personal data only.
            let may_name = by.actor().admin().is_none_or(|a| {
                a.allows(Permission::AccountsManage) || a.allows(Permission::PersonalDataRead)
            });
            titled(
                &ctx,
                StatusCode::OK,
                &title(&ctx, &id),
                done(&ctx, &report, may_name),
            )
        }
        Err(CoreError::NotFound(_)) => {
            refused(&ctx, StatusCode::NOT_FOUND, ctx.t("person-missing"))
        }
        Err(CoreError::Conflict(m) | CoreError::BadRequest(m)) => {
            let text = super::i18n::text(ctx.lang, "account-refused", &[("reason", m.into())]);
            refused(&ctx, StatusCode::CONFLICT, text)
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}
