//! Requests waiting for a second administrator, in the console: what is
//! asked, by whom, why and until when, each with its approve and reject
//! buttons. Deciding needs a fresh proof of identity, asked on the page;
//! the same use-cases as `/api/v1/approvals*` decide (who may decide what,
//! never one's own request nor one by another account of the same person)
//! and carry the action out. An account's one-time password that an
//! approval created is shown to the approver once.

use super::page::{notice, page, PageCtx, Shell};
use super::step_up::{self, Proof};
use crate::auth::SessionSecret;
use crate::extract::{Client, Path};
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use mamori_core::access::{AdminActor, ClientContext};
use mamori_core::{CoreError, Services};
use mamori_domain::{Approval, ApprovalId};
use maud::{html, Markup};
use serde::Deserialize;

/// What a request asks, in the page's language.
fn what(ctx: &PageCtx, a: &Approval) -> String {
    let key = format!("approval-{}", a.action.replace('_', "-"));
    let text = ctx.t(&key);
    if text == key {
        a.action.clone()
    } else {
        text
    }
}

fn list(ctx: &PageCtx, csrf: &str, approvals: &[Approval]) -> Markup {
    html! {
        @if approvals.is_empty() {
            p id="approvals-none" { (ctx.t("approvals-none")) }
        } @else {
            table id="approvals" {
                thead { tr {
                    th scope="col" { (ctx.t("approval-what")) }
                    th scope="col" { (ctx.t("approval-by")) }
                    th scope="col" { (ctx.t("approval-reason")) }
                    th scope="col" { (ctx.t("approval-expires")) }
                    th scope="col" { (ctx.t("approval-decide")) }
                } }
                tbody {
                    @for a in approvals {
                        tr data-approval=(a.id) {
                            td {
                                (what(ctx, a))
                                @if !a.devices.is_empty() {
                                    ul class="devices" {
                                        @for d in &a.devices {
                                            li { a href={ "/console/devices/" (d) } { code { (d) } } }
                                        }
                                    }
                                }
                            }
                            td { (a.requested_by) br; span class="muted" { (ctx.when(a.requested_at)) } }
                            td { (a.reason) }
                            td { (ctx.when(a.expires_at)) }
                            td class="decide" {
                                form method="post" action={ "/console/approvals/" (a.id) "/approve" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" class="approve" { (ctx.t("approval-approve")) }
                                }
                                form method="post" action={ "/console/approvals/" (a.id) "/reject" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" class="danger reject" { (ctx.t("approval-reject")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The page: `notice` on top, then what waits.
async fn approvals_page(
    s: &Services,
    ctx: &PageCtx,
    csrf: &str,
    actor: &AdminActor,
    status: StatusCode,
    notice: Option<Markup>,
) -> Response {
    let pending = match s.pending_approvals(actor).await {
        Ok(p) => p,
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let body = html! {
        @if let Some(n) = notice { (n) }
        p { (ctx.t("approvals-intro")) }
        (list(ctx, csrf, &pending))
    };
    page(ctx, status, "approvals-title", body)
}

/// `?done=` after a decision.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Done {
    done: Option<String>,
}

/// `GET /console/approvals`.
pub(super) async fn index(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Shell { ctx, csrf }: Shell,
    Query(done): Query<Done>,
) -> Response {
    let notice = match done.done.as_deref() {
        Some("approved") => Some(ctx.t("approval-approved")),
        Some("rejected") => Some(ctx.t("approval-rejected")),
        _ => None,
    }
    .map(|t| html! { p class="notice" role="status" id="approval-done" { (t) } });
    approvals_page(&s, &ctx, &csrf, &actor, StatusCode::OK, notice).await
}

/// Approve or reject.
#[derive(Debug, Clone, Copy)]
enum Decision {
    Approve,
    Reject,
}

impl Decision {
    fn path(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
        }
    }
}

/// `POST /console/approvals/{id}/approve`.
pub(super) async fn approve(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(client): Client,
    shell: Shell,
    secret: Option<Extension<SessionSecret>>,
    Path(id): Path<ApprovalId>,
    form: Result<Form<Proof>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/approvals");
    let secret = secret.map(|Extension(x)| x);
    decide(
        &s,
        actor,
        &client,
        &ctx,
        &csrf,
        secret.as_ref(),
        &id,
        form,
        Decision::Approve,
    )
    .await
}

/// `POST /console/approvals/{id}/reject`.
pub(super) async fn reject(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(client): Client,
    shell: Shell,
    secret: Option<Extension<SessionSecret>>,
    Path(id): Path<ApprovalId>,
    form: Result<Form<Proof>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/approvals");
    let secret = secret.map(|Extension(x)| x);
    decide(
        &s,
        actor,
        &client,
        &ctx,
        &csrf,
        secret.as_ref(),
        &id,
        form,
        Decision::Reject,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn decide(
    s: &Services,
    actor: AdminActor,
    client: &ClientContext,
    ctx: &PageCtx,
    csrf: &str,
    secret: Option<&SessionSecret>,
    id: &ApprovalId,
    form: Result<Form<Proof>, FormRejection>,
    decision: Decision,
) -> Response {
    let proof = form.map(|Form(p)| p).unwrap_or_default();
    let actor = match step_up::perform(s, &actor, secret, client, &proof).await {
        Ok(Some(fresh)) => fresh,
        Ok(None) => actor,
        Err(e) => {
            let n = notice("approval-error", "error", step_up::failure(ctx, &e));
            return approvals_page(s, ctx, csrf, &actor, StatusCode::UNAUTHORIZED, Some(n)).await;
        }
    };
    let result = match decision {
        Decision::Approve => s.approve(&actor, client, id.as_str()).await.map(Some),
        Decision::Reject => s.reject(&actor, client, id.as_str()).await.map(|_| None),
    };
    match result {
        Ok(Some(approved)) if approved.one_time_password.is_some() => {
            let password = approved.one_time_password.unwrap_or_default();
            let text = super::i18n::text(
                ctx.lang,
                "approval-password",
                &[("password", password.into())],
            );
            let n = notice("approval-password", "notice", text);
            approvals_page(s, ctx, csrf, &actor, StatusCode::OK, Some(n)).await
        }
        Ok(_) => {
            let done = match decision {
                Decision::Approve => "/console/approvals?done=approved",
                Decision::Reject => "/console/approvals?done=rejected",
            };
            let mut resp = StatusCode::SEE_OTHER.into_response();
            resp.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static(done));
            resp
        }
        Err(CoreError::StepUpRequired) => {
            let action = format!("/console/approvals/{}/{}", id.as_str(), decision.path());
            let form = step_up::form(s, ctx, csrf, &actor, &action, html! {}).await;
            approvals_page(s, ctx, csrf, &actor, StatusCode::FORBIDDEN, Some(form)).await
        }
        Err(
            CoreError::Forbidden(reason)
            | CoreError::Conflict(reason)
            | CoreError::NotFound(reason),
        ) => {
            let text =
                super::i18n::text(ctx.lang, "approval-refused", &[("reason", reason.into())]);
            let n = notice("approval-error", "error", text);
            approvals_page(s, ctx, csrf, &actor, StatusCode::CONFLICT, Some(n)).await
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}
