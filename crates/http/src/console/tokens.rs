//! API tokens in the console: my tokens (every account's for whoever
//! manages accounts), a new one (for my own account, with a role no higher
//! than mine, after a step-up asked on the page; its secret shown once),
//! and revoking one. The same use-cases as `/api/v1/tokens*`.

use super::page::{notice, page, PageCtx, Shell};
use super::step_up::{self, Proof};
use crate::auth::{Auth, SessionSecret};
use crate::extract::{Client, Path};
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use mamori_core::access::permit::TokensOwn;
use mamori_core::access::{Actor, Authorized, ClientContext};
use mamori_core::admin::tokens::TokenRequest;
use mamori_core::{CoreError, Services};
use mamori_domain::{Permission, TokenId};
use maud::{html, Markup};
use serde::Deserialize;

const ROLES: &[&str] = &[
    "viewer",
    "helpdesk",
    "device_admin",
    "security_officer",
    "owner",
];

/// `?all=1`: every account's tokens (accounts_manage).
#[derive(Debug, Default, Deserialize)]
pub(super) struct All {
    all: Option<String>,
    revoked: Option<String>,
}

fn create_form(ctx: &PageCtx, csrf: &str) -> Markup {
    html! {
        form method="post" action="/console/tokens" id="token-form" {
            fieldset {
                legend { (ctx.t("token-create-title")) }
                input type="hidden" name="csrf" value=(csrf);
                label for="token-name" { (ctx.t("token-name")) }
                input type="text" id="token-name" name="name" required maxlength="64";
                label for="token-role" { (ctx.t("admin-role")) }
                select id="token-role" name="role" {
                    @for r in ROLES { option value=(r) { (ctx.t(&format!("role-{}", r.replace('_', "-")))) } }
                }
                label for="token-days" { (ctx.t("token-days")) }
                input type="number" id="token-days" name="days" value="90" min="1" max="3650" required;
                p class="muted" { (ctx.t("token-create-intro")) }
                button type="submit" { (ctx.t("token-create-button")) }
            }
        }
    }
}

async fn tokens_page(
    s: &Services,
    by: &Authorized<TokensOwn>,
    ctx: &PageCtx,
    csrf: &str,
    all: bool,
    status: StatusCode,
    top: Option<Markup>,
) -> Response {
    let manages = by
        .actor()
        .admin()
        .is_some_and(|a| a.allows(Permission::AccountsManage));
    let tokens = match s.list_tokens(by, all && manages).await {
        Ok(t) => t,
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let now = s.clock.now();
    let live: Vec<_> = tokens
        .iter()
        .filter(|t| t.revoked_at.is_none() && t.expires_at > now)
        .collect();
    let body = html! {
        @if let Some(t) = top { (t) }
        @if manages {
            p { a href=(if all { "/console/tokens" } else { "/console/tokens?all=1" }) {
                (ctx.t(if all { "tokens-mine" } else { "tokens-all" }))
            } }
        }
        @if live.is_empty() {
            p id="tokens-none" { (ctx.t("tokens-none")) }
        } @else {
            table id="tokens" {
                thead { tr {
                    th scope="col" { (ctx.t("token-name")) }
                    th scope="col" { (ctx.t("admin-role")) }
                    th scope="col" { (ctx.t("token-expires")) }
                    th scope="col" { (ctx.t("token-last-used")) }
                    th scope="col" { (ctx.t("enroll-link-revoke")) }
                } }
                tbody {
                    @for t in &live {
                        tr data-token=(t.id) {
                            td { (t.name) }
                            td { (ctx.t(&format!("role-{}", t.role.as_str().replace('_', "-")))) }
                            td { (ctx.when(t.expires_at)) }
                            td { @match t.last_used_at { Some(at) => (ctx.when(at)), None => "—" } }
                            td {
                                form method="post" action={ "/console/tokens/" (t.id) "/revoke" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" class="danger" { (ctx.t("enroll-link-revoke")) }
                                }
                            }
                        }
                    }
                }
            }
        }
        (create_form(ctx, csrf))
    };
    page(ctx, status, "tokens-title", body)
}

/// `GET /console/tokens`.
pub(super) async fn index(
    State(s): State<Services>,
    Auth(by): Auth<TokensOwn>,
    Shell { ctx, csrf }: Shell,
    Query(q): Query<All>,
) -> Response {
    let top = q.revoked.map(|_| {
        html! { p class="notice" role="status" id="token-revoked" { (ctx.t("token-revoked")) } }
    });
    tokens_page(&s, &by, &ctx, &csrf, q.all.is_some(), StatusCode::OK, top).await
}

/// The new token's form.
#[derive(Debug, Default, Deserialize)]
pub(super) struct NewToken {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    days: String,
    #[serde(flatten)]
    proof: Proof,
}

/// The step-up the form carries, done: the proof read again with it.
async fn stepped_up(
    s: &Services,
    by: Authorized<TokensOwn>,
    secret: Option<&SessionSecret>,
    client: &ClientContext,
    proof: &Proof,
) -> Result<Authorized<TokensOwn>, CoreError> {
    let Some(admin) = by.actor().admin() else {
        return Ok(by);
    };
    match step_up::perform(s, admin, secret, client, proof).await? {
        Some(fresh) => Ok(Actor::from(fresh).authorize::<TokensOwn>()?),
        None => Ok(by),
    }
}

/// A new token's secret, shown once.
fn new_token(ctx: &PageCtx, secret: &str) -> Markup {
    html! {
        section class="notice" id="new-token" aria-labelledby="new-token-title" {
            h2 id="new-token-title" { (ctx.t("token-new")) }
            p { (ctx.t("token-new-once")) }
            p { code id="new-token-secret" { (secret) } }
        }
    }
}

/// `POST /console/tokens`: a new token for my account, its secret shown once.
pub(super) async fn create(
    State(s): State<Services>,
    Auth(by): Auth<TokensOwn>,
    Client(client): Client,
    Shell { ctx, csrf }: Shell,
    secret: Option<Extension<SessionSecret>>,
    form: Result<Form<NewToken>, FormRejection>,
) -> Response {
    let f = form.map(|Form(f)| f).unwrap_or_default();
    let secret = secret.map(|Extension(x)| x);
    let Ok(days) = f.days.trim().parse::<u32>() else {
        let n = notice("token-error", "error", ctx.t("token-bad-days"));
        return tokens_page(
            &s,
            &by,
            &ctx,
            &csrf,
            false,
            StatusCode::BAD_REQUEST,
            Some(n),
        )
        .await;
    };
    let reader = match by.actor().clone().authorize::<TokensOwn>() {
        Ok(p) => p,
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let by = match stepped_up(&s, by, secret.as_ref(), &client, &f.proof).await {
        Ok(b) => b,
        Err(e) => {
            let n = notice("token-error", "error", step_up::failure(&ctx, &e));
            return tokens_page(
                &s,
                &reader,
                &ctx,
                &csrf,
                false,
                StatusCode::UNAUTHORIZED,
                Some(n),
            )
            .await;
        }
    };
    let Some(owner) = by.actor().account().cloned() else {
        return crate::error::ApiError(CoreError::Unauthorized).into_response();
    };
    let req = TokenRequest {
        name: f.name.clone(),
        role: Some(f.role.clone()).filter(|r| !r.is_empty()),
        scope: None,
        ttl_days: Some(days),
    };
    let (status, top) = match s.create_token(&by, &client, &owner, &req).await {
        Ok((_, secret)) => (StatusCode::CREATED, new_token(&ctx, &secret)),
        Err(CoreError::StepUpRequired) => {
            let Some(admin) = by.actor().admin() else {
                return crate::error::ApiError(CoreError::StepUpRequired).into_response();
            };
            let carried = html! {
                input type="hidden" name="name" value=(f.name);
                input type="hidden" name="role" value=(f.role);
                input type="hidden" name="days" value=(f.days);
            };
            (
                StatusCode::FORBIDDEN,
                step_up::form(&s, &ctx, &csrf, admin, "/console/tokens", carried).await,
            )
        }
        Err(CoreError::BadRequest(m) | CoreError::Forbidden(m) | CoreError::Conflict(m)) => {
            let text = super::i18n::text(ctx.lang, "token-refused", &[("reason", m.into())]);
            (
                StatusCode::BAD_REQUEST,
                notice("token-error", "error", text),
            )
        }
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    tokens_page(&s, &reader, &ctx, &csrf, false, status, Some(top)).await
}

/// `POST /console/tokens/{id}/revoke`.
pub(super) async fn revoke(
    State(s): State<Services>,
    Auth(by): Auth<TokensOwn>,
    Client(client): Client,
    shell: Shell,
    Path(id): Path<TokenId>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/tokens");
    match s.revoke_token(&by, &client, id.as_str()).await {
        Ok(()) => super::page::see_other("/console/tokens?revoked=1"),
        Err(CoreError::NotFound(_)) => {
            let n = notice("token-error", "error", ctx.t("token-gone"));
            tokens_page(&s, &by, &ctx, &csrf, false, StatusCode::NOT_FOUND, Some(n)).await
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}
