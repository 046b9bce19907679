//! My account in the console: my second factors (passkeys, TOTP, recovery
//! codes left) with a way to add a passkey, and my live sessions (where
//! and when each began, which one is this) with a way to end any of them.
//! The same use-cases as `/api/v1/auth/factors` and `/api/v1/auth/sessions`.

use super::page::{page, PageCtx, Shell};
use crate::extract::Client;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use mamori_core::access::{AdminActor, Via};
use mamori_core::{CoreError, Services};
use maud::{html, Markup};
use serde::Deserialize;

/// `?ended=1` after a session was ended.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Ended {
    ended: Option<String>,
}

async fn factors(s: &Services, ctx: &PageCtx, actor: &AdminActor) -> Result<Markup, CoreError> {
    let f = s.own_factors(actor).await?;
    Ok(html! {
        section aria-labelledby="my-factors" {
            h2 id="my-factors" { (ctx.t("account-factors")) }
            dl class="facts" {
                dt { (ctx.t("account-totp")) }
                dd id="my-totp" { (ctx.t(if f.totp { "account-yes" } else { "account-no" })) }
                dt { (ctx.t("account-codes")) } dd id="my-codes" { (f.recovery_codes_left) }
                dt { (ctx.t("account-passkeys")) }
                dd {
                    @if f.webauthn.is_empty() { (ctx.t("account-no")) }
                    ul id="my-passkeys" {
                        @for k in &f.webauthn {
                            li {
                                (k.name) " — " (ctx.when(k.created_at))
                                @if let Some(at) = k.last_used_at {
                                    " · " (super::i18n::text(ctx.lang, "account-last-used", &[("at", ctx.when(at).into())]))
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

async fn sessions(
    s: &Services,
    ctx: &PageCtx,
    csrf: &str,
    actor: &AdminActor,
) -> Result<Markup, CoreError> {
    let mine = s.own_sessions(actor).await?;
    let current = match &actor.via {
        Via::Session(session) => Some(session.id.clone()),
        Via::Token(_) => None,
    };
    Ok(html! {
        section aria-labelledby="my-sessions" {
            h2 id="my-sessions" { (ctx.t("account-sessions")) }
            table id="sessions" {
                thead { tr {
                    th scope="col" { (ctx.t("account-session-from")) }
                    th scope="col" { (ctx.t("account-session-began")) }
                    th scope="col" { (ctx.t("account-session-seen")) }
                    th scope="col" { (ctx.t("account-session-end")) }
                } }
                tbody {
                    @for x in &mine {
                        tr data-session=(x.id) {
                            td { (x.source) @if current.as_ref() == Some(&x.id) { " " strong { (ctx.t("account-this-session")) } } }
                            td { (ctx.when(x.created_at)) }
                            td { (ctx.when(x.last_seen_at)) }
                            td {
                                form method="post" action={ "/console/account/sessions/" (x.id) "/end" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" class="danger" { (ctx.t("account-end")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

async fn account_page(
    s: &Services,
    ctx: &PageCtx,
    csrf: &str,
    actor: &AdminActor,
    status: StatusCode,
    top: Option<Markup>,
) -> Response {
    let parts = match (
        factors(s, ctx, actor).await,
        sessions(s, ctx, csrf, actor).await,
    ) {
        (Ok(f), Ok(x)) => (f, x),
        (Err(e), _) | (_, Err(e)) => return crate::error::ApiError(e).into_response(),
    };
    let body = html! {
        @if let Some(t) = top { (t) }
        p id="account-who" {
            (super::i18n::text(ctx.lang, "home-signed-in", &[
                ("name", actor.admin.name.as_str().into()),
                ("role", actor.admin.role.as_str().into()),
            ]))
        }
        (parts.0)
        (parts.1)
    };
    page(ctx, status, "account-title", body)
}

/// `GET /console/account`.
pub(super) async fn index(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Shell { ctx, csrf }: Shell,
    Query(q): Query<Ended>,
) -> Response {
    let top = q.ended.map(|_| {
        html! { p class="notice" role="status" id="session-ended" { (ctx.t("account-ended")) } }
    });
    account_page(&s, &ctx, &csrf, &actor, StatusCode::OK, top).await
}

/// `POST /console/account/sessions/{id}/end`: ends one of my sessions
/// (this one too: then to the sign-in page).
pub(super) async fn end_session(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(client): Client,
    shell: Shell,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/account");
    let this = matches!(&actor.via, Via::Session(x) if x.id.as_str() == id);
    match s.revoke_own_session(&actor, &id, &client).await {
        Ok(()) if this => {
            let mut resp = super::page::see_other("/console/sign-in");
            resp.headers_mut()
                .append(header::SET_COOKIE, crate::auth::clear_cookie());
            resp
        }
        Ok(()) => super::page::see_other("/console/account?ended=1"),
        Err(CoreError::NotFound(_) | CoreError::BadRequest(_)) => {
            let n = html! { p class="error" role="alert" id="account-error" { (ctx.t("account-session-gone")) } };
            account_page(&s, &ctx, &csrf, &actor, StatusCode::NOT_FOUND, Some(n)).await
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}
