//! My account in the console: my second factors (passkeys, TOTP, recovery
//! codes left), adding a passkey and removing a passkey or the TOTP app
//! (each after a fresh step-up, never the last factor), and my live
//! sessions (where and when each began, which one is this) with a way to
//! end any of them. The same use-cases as `/api/v1/auth/factors`,
//! `/api/v1/auth/webauthn*`, `/api/v1/auth/totp` and `/api/v1/auth/sessions`.

use super::page::{notice, page, see_other, PageCtx, Shell};
use super::step_up::{self, Proof};
use crate::auth::SessionSecret;
use crate::extract::Client;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use mamori_core::access::{AdminActor, ClientContext, Via};
use mamori_core::{CoreError, Services};
use maud::{html, Markup};
use serde::Deserialize;

/// `?ended=1` after a session was ended, `?factor=added|removed` after a
/// factor changed.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Ended {
    ended: Option<String>,
    factor: Option<String>,
}

/// Adding a passkey: a button; once pressed (with a fresh step-up, asked
/// for when missing), the passkey's form.
async fn add_passkey(
    s: &Services,
    ctx: &PageCtx,
    csrf: &str,
    actor: &AdminActor,
    headers: &HeaderMap,
    start: bool,
) -> Markup {
    if let Some(problem) = super::passkey::unusable(s, ctx, headers) {
        return html! { p class="muted" id="passkey-unusable" { (problem) } };
    }
    // A ceremony starts only on a press (never on a GET: it would replace
    // one open in another tab).
    if !start || s.require_step_up(actor).is_err() {
        return html! {
            form method="post" action="/console/account/step-up" id="add-passkey-start" {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { (ctx.t("account-add-passkey")) }
            }
        };
    }
    match s.webauthn_register_start(actor).await {
        Ok(offer) => html! {
            div id="add-passkey" {
                h3 { (ctx.t("account-add-passkey")) }
                (super::passkey::form(s, ctx, csrf, super::passkey::Ceremony::Register,
                    &offer.options, "/console/account/passkeys", html! {}))
            }
        },
        Err(_) => html! {},
    }
}

async fn factors(m: &Mine<'_>) -> Result<Markup, CoreError> {
    let Mine {
        s,
        ctx,
        csrf,
        actor,
        headers,
        start_passkey,
    } = *m;
    let f = s.own_factors(actor).await?;
    Ok(html! {
        section aria-labelledby="my-factors" {
            h2 id="my-factors" { (ctx.t("account-factors")) }
            dl class="facts" {
                dt { (ctx.t("account-totp")) }
                dd id="my-totp" {
                    (ctx.t(if f.totp { "account-yes" } else { "account-no" }))
                    @if f.totp {
                        form method="post" action="/console/account/totp/remove" class="inline" id="remove-totp" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" class="link" { (ctx.t("account-remove")) }
                        }
                    }
                }
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
                                " "
                                form method="post" action={ "/console/account/passkeys/" (urlencoding::encode(&k.id)) "/remove" } class="inline" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" class="link" aria-label={ (ctx.t("account-remove")) " " (k.name) } { (ctx.t("account-remove")) }
                                }
                            }
                        }
                    }
                }
            }
            (add_passkey(s, ctx, csrf, actor, headers, start_passkey).await)
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

/// What a page of my account is made from.
struct Mine<'a> {
    s: &'a Services,
    ctx: &'a PageCtx,
    csrf: &'a str,
    actor: &'a AdminActor,
    headers: &'a HeaderMap,
    /// Start adding a passkey (after a press).
    start_passkey: bool,
}

async fn account_page(m: &Mine<'_>, status: StatusCode, top: Option<Markup>) -> Response {
    let Mine {
        s,
        ctx,
        csrf,
        actor,
        ..
    } = *m;
    let parts = match (factors(m).await, sessions(s, ctx, csrf, actor).await) {
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
    headers: HeaderMap,
    Query(q): Query<Ended>,
) -> Response {
    let top = match (q.ended, q.factor.as_deref()) {
        (Some(_), _) => Some(notice("session-ended", "notice", ctx.t("account-ended"))),
        (_, Some("added")) => Some(notice(
            "factor-changed",
            "notice",
            ctx.t("account-factor-added"),
        )),
        (_, Some("removed")) => Some(notice(
            "factor-changed",
            "notice",
            ctx.t("account-factor-removed"),
        )),
        _ => None,
    };
    let m = Mine {
        s: &s,
        ctx: &ctx,
        csrf: &csrf,
        actor: &actor,
        headers: &headers,
        start_passkey: false,
    };
    account_page(&m, StatusCode::OK, top).await
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
            let mut resp = see_other("/console/sign-in");
            resp.headers_mut()
                .append(header::SET_COOKIE, crate::auth::clear_cookie());
            resp
        }
        Ok(()) => see_other("/console/account?ended=1"),
        Err(CoreError::NotFound(_) | CoreError::BadRequest(_)) => {
            let n = html! { p class="error" role="alert" id="account-error" { (ctx.t("account-session-gone")) } };
            let m = Mine {
                s: &s,
                ctx: &ctx,
                csrf: &csrf,
                actor: &actor,
                headers: &HeaderMap::new(),
                start_passkey: false,
            };
            account_page(&m, StatusCode::NOT_FOUND, Some(n)).await
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

/// A form of my account: the step-up it may carry.
#[derive(Debug, Default, Deserialize)]
pub(super) struct StepUpForm {
    #[serde(flatten)]
    proof: Proof,
}

/// Which factor change a form asks for.
enum Change {
    /// A fresh step-up, to add a passkey next (the request's headers: the
    /// passkey form checks the address it was opened at).
    StepUp(HeaderMap),
    /// Remove this passkey.
    RemovePasskey(String),
    /// Remove the TOTP app.
    RemoveTotp,
}

impl Change {
    fn action(&self) -> String {
        match self {
            Self::StepUp(_) => "/console/account/step-up".into(),
            Self::RemovePasskey(id) => format!(
                "/console/account/passkeys/{}/remove",
                urlencoding::encode(id)
            ),
            Self::RemoveTotp => "/console/account/totp/remove".into(),
        }
    }
}

/// Carries out a factor change after the step-up the form brings; asks
/// for one on the page when it is missing.
async fn change(
    s: &Services,
    actor: AdminActor,
    client: &ClientContext,
    shell: Shell,
    secret: Option<&SessionSecret>,
    form: Result<Form<StepUpForm>, FormRejection>,
    what: Change,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/account");
    let proof = form.map(|Form(f)| f.proof).unwrap_or_default();
    let headers = HeaderMap::new();
    let page_with = |actor: AdminActor, status: StatusCode, top: Markup| {
        let (ctx, csrf, headers) = (&ctx, &csrf, &headers);
        async move {
            let m = Mine {
                s,
                ctx,
                csrf,
                actor: &actor,
                headers,
                start_passkey: false,
            };
            account_page(&m, status, Some(top)).await
        }
    };
    let actor = match step_up::perform(s, &actor, secret, client, &proof).await {
        Ok(Some(fresh)) => fresh,
        Ok(None) => actor,
        Err(e) => {
            let n = notice("account-error", "error", step_up::failure(&ctx, &e));
            return page_with(actor, StatusCode::UNAUTHORIZED, n).await;
        }
    };
    let result = match &what {
        Change::StepUp(_) => s.require_step_up(&actor),
        Change::RemovePasskey(id) => s.remove_webauthn(&actor, client, id).await,
        Change::RemoveTotp => s.remove_totp(&actor, client).await,
    };
    match result {
        Ok(()) if matches!(what, Change::StepUp(_)) => {
            let empty = HeaderMap::new();
            let headers = match &what {
                Change::StepUp(h) => h,
                _ => &empty,
            };
            let m = Mine {
                s,
                ctx: &ctx,
                csrf: &csrf,
                actor: &actor,
                headers,
                start_passkey: true,
            };
            account_page(&m, StatusCode::OK, None).await
        }
        Ok(()) => see_other("/console/account?factor=removed"),
        Err(CoreError::StepUpRequired) => {
            let form = step_up::form(s, &ctx, &csrf, &actor, &what.action(), html! {}).await;
            page_with(actor, StatusCode::FORBIDDEN, form).await
        }
        Err(CoreError::Conflict(m) | CoreError::NotFound(m) | CoreError::Forbidden(m)) => {
            let text = super::i18n::text(ctx.lang, "account-refused", &[("reason", m.into())]);
            page_with(
                actor,
                StatusCode::CONFLICT,
                notice("account-error", "error", text),
            )
            .await
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

/// `POST /console/account/step-up`: a fresh step-up, then the page with
/// the passkey form.
pub(super) async fn fresh_step_up(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(client): Client,
    shell: Shell,
    headers: HeaderMap,
    secret: Option<Extension<SessionSecret>>,
    form: Result<Form<StepUpForm>, FormRejection>,
) -> Response {
    let secret = secret.map(|Extension(x)| x);
    change(
        &s,
        actor,
        &client,
        shell,
        secret.as_ref(),
        form,
        Change::StepUp(headers),
    )
    .await
}

/// `POST /console/account/passkeys/{id}/remove`.
pub(super) async fn remove_passkey(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(client): Client,
    shell: Shell,
    secret: Option<Extension<SessionSecret>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    form: Result<Form<StepUpForm>, FormRejection>,
) -> Response {
    let secret = secret.map(|Extension(x)| x);
    let what = Change::RemovePasskey(id);
    change(&s, actor, &client, shell, secret.as_ref(), form, what).await
}

/// `POST /console/account/totp/remove`.
pub(super) async fn remove_totp(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(client): Client,
    shell: Shell,
    secret: Option<Extension<SessionSecret>>,
    form: Result<Form<StepUpForm>, FormRejection>,
) -> Response {
    let secret = secret.map(|Extension(x)| x);
    change(
        &s,
        actor,
        &client,
        shell,
        secret.as_ref(),
        form,
        Change::RemoveTotp,
    )
    .await
}

/// `POST /console/account/passkeys`: the browser's new key.
pub(super) async fn register_passkey(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(client): Client,
    shell: Shell,
    headers: HeaderMap,
    form: Result<Form<super::passkey::PasskeyForm>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/account");
    let result = match super::passkey::credential(form) {
        Ok((value, name)) => {
            let name = name.unwrap_or_else(|| ctx.t("passkey-default-name"));
            s.webauthn_register_finish(&actor, &name, &value, &client)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        // A new key after the last recovery code was used comes with ten
        // new codes: shown once, now.
        Ok((_, enrolled)) if !enrolled.recovery_codes.is_empty() => {
            let session = enrolled.session.as_ref().map(|(_, c)| c);
            super::setup::recovery_codes_page(&s, &ctx, &enrolled.recovery_codes, session)
        }
        Ok(_) => see_other("/console/account?factor=added"),
        Err(e) => match super::passkey::refusal(&s, &ctx, &e) {
            Some((status, message)) => {
                let m = Mine {
                    s: &s,
                    ctx: &ctx,
                    csrf: &csrf,
                    actor: &actor,
                    headers: &headers,
                    start_passkey: false,
                };
                account_page(&m, status, Some(notice("account-error", "error", message))).await
            }
            None if matches!(e, CoreError::StepUpRequired) => see_other("/console/account"),
            None => crate::error::ApiError(e).into_response(),
        },
    }
}
