//! First-time setup in the console: the new password, then a TOTP
//! authenticator (its key as a QR code drawn here, never fetched), then the
//! recovery codes, shown once with a download. The same use-cases as
//! `/api/v1/auth/password` and `/api/v1/auth/totp/*`; a role that must use
//! a passkey is told so (the passkey step comes with the browser script).

use super::page::{code_form, page, see_other, PageCtx, Shell};
use super::passkey;
use super::signin::outcome;
use crate::auth::set_cookie;
use crate::extract::Client;
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use base64::Engine;
use mamori_core::access::AdminActor;
use mamori_core::admin::SessionCookie;
use mamori_core::{CoreError, Services};
use maud::{html, Markup};
use serde::Deserialize;

/// What the setup still needs, first first.
async fn required(
    s: &Services,
    actor: &AdminActor,
    csrf: &str,
) -> Result<Vec<&'static str>, CoreError> {
    Ok(outcome(s, actor, csrf)
        .await?
        .map(|o| o.required)
        .unwrap_or_default())
}

fn password_form(ctx: &PageCtx, csrf: &str, error: Option<String>) -> Markup {
    html! {
        p { (ctx.t("setup-password-intro")) }
        @if let Some(e) = error {
            p class="error" role="alert" id="setup-error" { (e) }
        }
        form method="post" action="/console/setup/password" {
            input type="hidden" name="csrf" value=(csrf);
            label for="current" { (ctx.t("field-current-password")) }
            input type="password" id="current" name="current" autocomplete="current-password"
                required maxlength="1024";
            label for="new" { (ctx.t("field-new-password")) }
            input type="password" id="new" name="new" autocomplete="new-password"
                required maxlength="1024";
            label for="repeat" { (ctx.t("field-repeat-password")) }
            input type="password" id="repeat" name="repeat" autocomplete="new-password"
                required maxlength="1024";
            button type="submit" { (ctx.t("setup-password-button")) }
        }
    }
}

fn totp_form(ctx: &PageCtx, csrf: &str, secret: &str, uri: &str, error: Option<String>) -> Markup {
    html! {
        p { (ctx.t("setup-totp-intro")) }
        @if let Some(e) = error {
            p class="error" role="alert" id="setup-error" { (e) }
        }
        @if let Some(src) = super::page::qr_data_uri(uri) {
            img id="totp-qr" src=(src) alt=(ctx.t("setup-totp-qr")) width="220" height="220";
        }
        p { (ctx.t("setup-totp-key")) ": " code id="totp-key" { (secret) } }
        (code_form(ctx, csrf, "/console/setup/totp", "setup-totp-button"))
    }
}

/// The passkey form of the setup (or why passkeys cannot work here).
async fn passkey_step(
    s: &Services,
    ctx: &PageCtx,
    actor: &AdminActor,
    csrf: &str,
    headers: &HeaderMap,
) -> Result<Markup, CoreError> {
    if let Some(problem) = passkey::unusable(s, ctx, headers) {
        return Ok(html! { p class="error" id="passkey-unusable" { (problem) } });
    }
    let offer = s.webauthn_register_start(actor).await?;
    Ok(passkey::form(
        s,
        ctx,
        csrf,
        passkey::Ceremony::Register,
        &offer.options,
        "/console/setup/passkey",
        html! {},
    ))
}

/// The page for the next step, with `error` next to its form.
pub(super) async fn step_page(
    s: &Services,
    ctx: &PageCtx,
    actor: &AdminActor,
    csrf: &str,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    match step_body(s, ctx, actor, csrf, headers, error).await {
        Ok(Some(body)) => page(ctx, status, "setup-title", body),
        Ok(None) => see_other("/console/"),
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

async fn step_body(
    s: &Services,
    ctx: &PageCtx,
    actor: &AdminActor,
    csrf: &str,
    headers: &HeaderMap,
    error: Option<String>,
) -> Result<Option<Markup>, CoreError> {
    let needs = required(s, actor, csrf).await?;
    if needs.contains(&"change_password") {
        return Ok(Some(password_form(ctx, csrf, error)));
    }
    if needs.contains(&"enroll_webauthn") {
        let form = passkey_step(s, ctx, actor, csrf, headers).await?;
        return Ok(Some(html! {
            p { (ctx.t("setup-passkey")) }
            @if let Some(e) = error {
                p class="error" role="alert" id="setup-error" { (e) }
            }
            (form)
        }));
    }
    if needs.contains(&"enroll_second_factor") {
        let offer = s.totp_enroll_start(actor).await?;
        let passkey = if s.auth.ceremonies.enabled() {
            Some(passkey_step(s, ctx, actor, csrf, headers).await?)
        } else {
            None
        };
        return Ok(Some(html! {
            (totp_form(ctx, csrf, &offer.secret, &offer.uri, error))
            @if let Some(p) = passkey {
                h2 { (ctx.t("setup-or-passkey")) }
                (p)
            }
        }));
    }
    Ok(None)
}

/// `GET /console/setup`.
pub(super) async fn setup(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    shell: Shell,
    headers: HeaderMap,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/setup");
    step_page(&s, &ctx, &actor, &csrf, &headers, StatusCode::OK, None).await
}

/// The password form's fields.
#[derive(Debug, Deserialize)]
pub(super) struct PasswordForm {
    current: String,
    new: String,
    repeat: String,
}

/// The session a step handed back (setup finished), or the same one.
fn next_step(s: &Services, cookie: Option<&SessionCookie>) -> Response {
    let mut resp = see_other("/console/setup");
    if let Some(c) = cookie {
        resp.headers_mut()
            .append(header::SET_COOKIE, set_cookie(c, s.clock.now()));
    }
    resp
}

/// `POST /console/setup/password`.
pub(super) async fn password(
    State(s): State<Services>,
    Client(client): Client,
    Extension(actor): Extension<AdminActor>,
    shell: Shell,
    headers: HeaderMap,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/setup");
    let refused = |status: StatusCode, e: String| {
        let (s, ctx, actor, csrf, headers) = (&s, &ctx, &actor, &csrf, &headers);
        async move { step_page(s, ctx, actor, csrf, headers, status, Some(e)).await }
    };
    let f = match form {
        Ok(Form(f)) if f.new == f.repeat => f,
        _ => return refused(StatusCode::BAD_REQUEST, ctx.t("setup-password-mismatch")).await,
    };
    match s.change_password(&actor, &f.current, &f.new, &client).await {
        Ok(done) => next_step(&s, done.as_ref().map(|(_, c)| c)),
        Err(CoreError::BadRequest(reason)) => {
            let e = super::i18n::text(
                ctx.lang,
                "setup-password-refused",
                &[("reason", reason.as_str().into())],
            );
            refused(StatusCode::BAD_REQUEST, e).await
        }
        Err(CoreError::InvalidCredentials) => {
            refused(StatusCode::UNAUTHORIZED, ctx.t("sign-in-failed")).await
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

/// The TOTP form's field.
#[derive(Debug, Deserialize)]
pub(super) struct TotpForm {
    code: String,
}

/// `POST /console/setup/totp`: the code confirms the authenticator; the
/// recovery codes are shown once, and the full session begins.
pub(super) async fn totp(
    State(s): State<Services>,
    Client(client): Client,
    Extension(actor): Extension<AdminActor>,
    shell: Shell,
    headers: HeaderMap,
    form: Result<Form<TotpForm>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/setup");
    let code = form.map(|Form(f)| f.code).unwrap_or_default();
    match s.totp_enroll_confirm(&actor, &code, &client).await {
        Ok(enrolled) => recovery_codes_page(
            &s,
            &ctx,
            &enrolled.recovery_codes,
            enrolled.session.as_ref().map(|(_, c)| c),
        ),
        Err(CoreError::InvalidCredentials | CoreError::BadRequest(_)) => {
            let e = ctx.t("second-factor-failed");
            step_page(
                &s,
                &ctx,
                &actor,
                &csrf,
                &headers,
                StatusCode::UNAUTHORIZED,
                Some(e),
            )
            .await
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

/// The recovery codes, shown once with a download, and the full session
/// that begins with them (when setup finished).
pub(super) fn recovery_codes_page(
    s: &Services,
    ctx: &PageCtx,
    codes: &[String],
    session: Option<&SessionCookie>,
) -> Response {
    let text = codes.join("\n") + "\n";
    let download = format!(
        "data:text/plain;charset=utf-8;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&text)
    );
    let mut resp = page(
        ctx,
        StatusCode::OK,
        "recovery-title",
        html! {
            p { (ctx.t("recovery-intro")) }
            ul id="recovery-codes" {
                @for c in codes { li { code { (c) } } }
            }
            p { a href=(download) download="mamori-recovery-codes.txt" { (ctx.t("recovery-download")) } }
            p { a href="/console/" { (ctx.t("recovery-continue")) } }
        },
    );
    if let Some(cookie) = session {
        resp.headers_mut()
            .append(header::SET_COOKIE, set_cookie(cookie, s.clock.now()));
    }
    resp
}
