//! Signing in: the password, then a second factor (TOTP code or recovery
//! code), and signing out. The same use-cases as `/api/v1/auth/*`, so the
//! same throttles, the same audit records and the same session cookie.

use super::page::{code_form, page, see_other, PageCtx, Shell};
use super::passkey;
use super::Lang;
use crate::auth::{clear_cookie, set_cookie};
use crate::extract::Client;
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use mamori_core::access::{AdminActor, ClientContext, Via};
use mamori_core::admin::{LoginOutcome, SessionCookie};
use mamori_core::{CoreError, Services};
use maud::{html, Markup};
use serde::Deserialize;

/// `?lang=` on any page.
#[derive(Debug, Default, Deserialize)]
pub(super) struct LangQuery {
    lang: Option<String>,
}

/// The page context of a request to `path`.
pub(super) fn page_ctx(
    q: &LangQuery,
    headers: &HeaderMap,
    path: &str,
    csrf: Option<String>,
) -> PageCtx {
    let lang = Lang::negotiate(q.lang.as_deref(), headers);
    PageCtx {
        lang,
        chosen: q.lang.as_deref().is_some_and(|l| l == lang.tag()),
        path: path.to_owned(),
        csrf,
        zone: super::page::zone("Asia/Tokyo"),
        nav: Vec::new(),
    }
}

/// A browser's request that comes from another site: refused for the
/// sign-in form, so no other site can sign a visitor in to an account of
/// its choosing.
fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(o), Some(h)) => o != format!("https://{h}"),
        (Some(_), None) => true,
        (None, _) => false,
    }
}

fn sign_in_form(ctx: &PageCtx, error: Option<String>) -> Markup {
    html! {
        p { (ctx.t("sign-in-intro")) }
        @if let Some(e) = error {
            p class="error" role="alert" id="sign-in-error" { (e) }
        }
        form method="post" action="/console/sign-in" {
            label for="name" { (ctx.t("field-name")) }
            input type="text" id="name" name="name" autocomplete="username" required
                autocapitalize="none" spellcheck="false" maxlength="64";
            label for="password" { (ctx.t("field-password")) }
            input type="password" id="password" name="password"
                autocomplete="current-password" required maxlength="1024";
            button type="submit" { (ctx.t("sign-in-button")) }
        }
    }
}

/// `GET /console/sign-in`.
pub(super) async fn form(shell: Shell) -> Response {
    let Shell { ctx, .. } = shell.at("/console/sign-in");
    page(
        &ctx,
        StatusCode::OK,
        "sign-in-title",
        sign_in_form(&ctx, None),
    )
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub(super) struct PasswordForm {
    name: String,
    password: String,
}

/// The answer to a failed step: the same page, the reason next to the form.
pub(super) fn refusal(
    ctx: &PageCtx,
    client: &ClientContext,
    e: &CoreError,
) -> (StatusCode, String) {
    match e {
        CoreError::InvalidCredentials | CoreError::Unauthorized => {
            (StatusCode::UNAUTHORIZED, ctx.t("sign-in-failed"))
        }
        CoreError::TooManyRequests(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            super::i18n::text(
                ctx.lang,
                "sign-in-throttled",
                &[("seconds", (*secs).into())],
            ),
        ),
        other => {
            tracing::error!(error = %other, "console sign-in failed");
            let request = client.request_id.clone().unwrap_or_default();
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                super::i18n::text(ctx.lang, "sign-in-error", &[("request", request.into())]),
            )
        }
    }
}

/// Signed in (or one step further): the new session's cookie, then the
/// console, which sends each stage to its page.
pub(super) fn signed(s: &Services, cookie: &SessionCookie) -> Response {
    let mut resp = see_other("/console/");
    resp.headers_mut()
        .append(header::SET_COOKIE, set_cookie(cookie, s.clock.now()));
    resp
}

/// `POST /console/sign-in`: the password step.
pub(super) async fn password(
    State(s): State<Services>,
    Client(client): Client,
    shell: Shell,
    headers: HeaderMap,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Response {
    let Shell { ctx, .. } = shell.at("/console/sign-in");
    if cross_site(&headers) {
        tracing::warn!(source = %client.source, "cross-site sign-in refused");
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let result = match form {
        Ok(Form(f)) => s.login(&f.name, &f.password, &client).await,
        Err(_) => Err(CoreError::InvalidCredentials),
    };
    match result {
        Ok((_, cookie)) => signed(&s, &cookie),
        Err(e) => {
            let (status, message) = refusal(&ctx, &client, &e);
            page(
                &ctx,
                status,
                "sign-in-title",
                sign_in_form(&ctx, Some(message)),
            )
        }
    }
}

/// The second-factor page: a passkey first where the account has one, then
/// the TOTP code, then a recovery code; `error` above the forms.
pub(super) async fn second_factor_page(
    s: &Services,
    ctx: &PageCtx,
    actor: &AdminActor,
    csrf: &str,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let methods = match methods(s, actor, csrf).await {
        Ok(m) => m,
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let passkey = if methods.contains(&"webauthn") {
        match passkey::unusable(s, ctx, headers) {
            Some(problem) => Some(html! { p class="error" id="passkey-unusable" { (problem) } }),
            None => match s.webauthn_login_start(actor).await {
                Ok(options) => Some(passkey::form(
                    s,
                    ctx,
                    csrf,
                    passkey::Ceremony::SignIn,
                    &options,
                    "/console/second-factor/passkey",
                    html! {},
                )),
                Err(e) => return crate::error::ApiError(e).into_response(),
            },
        }
    } else {
        None
    };
    let body = html! {
        p { (ctx.t("second-factor-intro")) }
        @if let Some(e) = error {
            p class="error" role="alert" id="second-factor-error" { (e) }
        }
        @if let Some(p) = passkey {
            h2 { (ctx.t("second-factor-passkey")) }
            (p)
        }
        @if methods.contains(&"totp") {
            h2 { (ctx.t("second-factor-totp-title")) }
            (code_form(ctx, csrf, "/console/second-factor", "second-factor-totp"))
        }
        @if methods.contains(&"recovery_code") {
            h2 { (ctx.t("second-factor-recovery-title")) }
            form method="post" action="/console/second-factor" {
                input type="hidden" name="csrf" value=(csrf);
                label for="recovery" { (ctx.t("field-recovery")) }
                input type="text" id="recovery" name="recovery" autocomplete="off"
                    autocapitalize="none" spellcheck="false" maxlength="64" required;
                button type="submit" { (ctx.t("second-factor-recovery")) }
            }
        }
    };
    page(ctx, status, "second-factor-title", body)
}

/// Where the session's login stands: the second factors it may use now,
/// what its setup still needs (nothing for a token).
pub(super) async fn outcome(
    s: &Services,
    actor: &AdminActor,
    csrf: &str,
) -> Result<Option<LoginOutcome>, CoreError> {
    let Via::Session(session) = &actor.via else {
        return Ok(None);
    };
    Ok(Some(s.login_outcome(&actor.admin, session, csrf).await?))
}

/// The second factors the session's account may use now.
async fn methods(
    s: &Services,
    actor: &AdminActor,
    csrf: &str,
) -> Result<Vec<&'static str>, CoreError> {
    Ok(outcome(s, actor, csrf)
        .await?
        .map(|o| o.methods)
        .unwrap_or_default())
}

/// `GET /console/second-factor`.
pub(super) async fn second_factor_form(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    shell: Shell,
    headers: HeaderMap,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/second-factor");
    second_factor_page(&s, &ctx, &actor, &csrf, &headers, StatusCode::OK, None).await
}

/// The second-factor forms' fields (the CSRF token is the guard's).
#[derive(Debug, Deserialize)]
pub(super) struct SecondFactorForm {
    code: Option<String>,
    recovery: Option<String>,
}

/// `POST /console/second-factor`: a TOTP code or a recovery code.
pub(super) async fn second_factor(
    State(s): State<Services>,
    Client(client): Client,
    Extension(actor): Extension<AdminActor>,
    shell: Shell,
    headers: HeaderMap,
    form: Result<Form<SecondFactorForm>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/second-factor");
    let result = match form {
        Ok(Form(SecondFactorForm { code: Some(c), .. })) => s.login_totp(&actor, &c, &client).await,
        Ok(Form(SecondFactorForm {
            recovery: Some(r), ..
        })) => s.login_recovery(&actor, &r, &client).await,
        _ => Err(CoreError::InvalidCredentials),
    };
    match result {
        Ok((_, cookie)) => signed(&s, &cookie),
        Err(e) => {
            let (status, message) = match e {
                CoreError::InvalidCredentials => {
                    (StatusCode::UNAUTHORIZED, ctx.t("second-factor-failed"))
                }
                other => refusal(&ctx, &client, &other),
            };
            second_factor_page(&s, &ctx, &actor, &csrf, &headers, status, Some(message)).await
        }
    }
}

/// `POST /console/sign-out`: the session ends (the guard checked the form's
/// CSRF token).
pub(super) async fn sign_out(
    State(s): State<Services>,
    Client(client): Client,
    Extension(actor): Extension<AdminActor>,
) -> Response {
    if let Err(e) = s.logout(&actor, &client).await {
        tracing::error!(error = %e, "console sign-out failed");
        return crate::error::ApiError(e).into_response();
    }
    let mut resp = see_other("/console/sign-in");
    resp.headers_mut()
        .append(header::SET_COOKIE, clear_cookie());
    // Whoever signs in next on this browser starts at the overview.
    super::page::forget_next(&mut resp);
    resp
}
