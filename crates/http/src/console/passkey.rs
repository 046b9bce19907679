//! Passkeys in the console: registering one during setup and signing in
//! with one. The page carries the server's challenge (`data-options`); the
//! one script (`assets/passkey.js`) opens the browser's dialog and posts
//! its answer back in an ordinary form, so the guard checks the form's
//! CSRF token and the server answers with a page. Every refusal says what
//! an honest user can do about it: the address to open the console at, an
//! authenticator that verifies its user, a challenge that expired.

use super::page::{page, PageCtx, Shell};
use super::setup::recovery_codes_page;
use super::signin::signed;
use crate::auth::{clear_cookie, set_cookie};
use crate::extract::Client;
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use mamori_core::access::AdminActor;
use mamori_core::{CoreError, PasskeyProblem, Services};
use maud::{html, Markup};
use serde::Deserialize;

/// The script, embedded in the binary.
pub(super) const SCRIPT: &str = include_str!("../../console/assets/passkey.js");

/// Which ceremony a form runs.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ceremony {
    /// Registering a new key (`navigator.credentials.create`).
    Register,
    /// Proving a registered key (`navigator.credentials.get`).
    SignIn,
}

/// Why passkeys cannot work for this request before anything is tried:
/// WebAuthn is off (the admin URL is an IP address), or the browser is at
/// another address than the admin URL (the browser would refuse).
pub(super) fn unusable(s: &Services, ctx: &PageCtx, headers: &HeaderMap) -> Option<String> {
    let url = s.config.auth.admin_url.as_str();
    if !s.auth.ceremonies.enabled() {
        return Some(super::i18n::text(
            ctx.lang,
            "passkey-off",
            &[("url", url.into())],
        ));
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok())?;
    (!same_authority(url, host))
        .then(|| super::i18n::text(ctx.lang, "passkey-wrong-host", &[("url", url.into())]))
}

/// Whether `host` (a Host header) names the host and port of `url`.
fn same_authority(url: &str, host: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    let (Some(want_host), want_port) = (uri.host(), uri.port_u16().unwrap_or(443)) else {
        return false;
    };
    let (got_host, got_port) = match host.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || host.starts_with('[') => {
            (h, p.parse::<u16>().unwrap_or(0))
        }
        _ => (host, 443),
    };
    got_host.eq_ignore_ascii_case(want_host) && got_port == want_port
}

/// The form that runs `ceremony` with `options` (the server's challenge),
/// posted to `action` with the fields in `extra`.
pub(super) fn form(
    s: &Services,
    ctx: &PageCtx,
    csrf: &str,
    ceremony: Ceremony,
    options: &serde_json::Value,
    action: &str,
    extra: Markup,
) -> Markup {
    let url = s.config.auth.admin_url.as_str();
    let (mode, button) = match ceremony {
        Ceremony::Register => ("create", "passkey-register-button"),
        Ceremony::SignIn => ("get", "passkey-sign-in-button"),
    };
    html! {
        form method="post" action=(action) data-passkey=(mode) data-options=(options.to_string())
            data-msg-waiting=(ctx.t("passkey-waiting"))
            data-msg-cancelled=(ctx.t("passkey-cancelled"))
            data-msg-wrong-host=(super::i18n::text(ctx.lang, "passkey-wrong-host", &[("url", url.into())]))
            data-msg-exists=(ctx.t("passkey-exists"))
            data-msg-unsupported=(ctx.t("passkey-unsupported"))
            data-msg-failed=(ctx.t("passkey-failed")) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="credential" value="" autocomplete="off";
            (extra)
            @if matches!(ceremony, Ceremony::Register) {
                label for="key-name" { (ctx.t("field-key-name")) }
                input type="text" id="key-name" name="name" value=(ctx.t("passkey-default-name"))
                    maxlength="64" required;
            }
            button type="submit" { (ctx.t(button)) }
            p class="passkey-status" role="status" aria-live="polite" {}
        }
        noscript { p class="muted" { (ctx.t("passkey-needs-script")) } }
        script src="/console/assets/passkey.js" defer {}
    }
}

/// The words for a refused passkey answer.
pub(super) fn refusal(s: &Services, ctx: &PageCtx, e: &CoreError) -> Option<(StatusCode, String)> {
    let url = s.config.auth.admin_url.as_str();
    Some(match e {
        CoreError::Passkey(PasskeyProblem::WrongOrigin) => (
            StatusCode::BAD_REQUEST,
            super::i18n::text(ctx.lang, "passkey-wrong-host", &[("url", url.into())]),
        ),
        CoreError::Passkey(PasskeyProblem::NotVerified) => {
            (StatusCode::BAD_REQUEST, ctx.t("passkey-not-verified"))
        }
        CoreError::Passkey(PasskeyProblem::Expired) => {
            (StatusCode::CONFLICT, ctx.t("passkey-expired"))
        }
        CoreError::Passkey(PasskeyProblem::Refused) => {
            (StatusCode::UNAUTHORIZED, ctx.t("passkey-refused"))
        }
        CoreError::BadRequest(reason) if reason == NO_ANSWER => {
            (StatusCode::BAD_REQUEST, ctx.t("passkey-needs-script"))
        }
        CoreError::BadRequest(reason) => (
            StatusCode::BAD_REQUEST,
            super::i18n::text(
                ctx.lang,
                "passkey-bad",
                &[("reason", reason.as_str().into())],
            ),
        ),
        CoreError::Conflict(_) => (StatusCode::CONFLICT, ctx.t("passkey-exists")),
        _ => return None,
    })
}

/// Why a posted form carries no passkey answer (no JavaScript).
const NO_ANSWER: &str = "no passkey answer";

/// A posted passkey form.
#[derive(Debug, Deserialize)]
pub(super) struct PasskeyForm {
    #[serde(default)]
    credential: String,
    name: Option<String>,
}

/// The credential a form carries (JSON), or the reason there is none.
pub(super) fn credential(
    form: Result<Form<PasskeyForm>, FormRejection>,
) -> Result<(serde_json::Value, Option<String>), CoreError> {
    let Ok(Form(f)) = form else {
        return Err(CoreError::BadRequest(NO_ANSWER.into()));
    };
    let value =
        serde_json::from_str(&f.credential).map_err(|_| CoreError::BadRequest(NO_ANSWER.into()))?;
    Ok((value, f.name))
}

/// `POST /console/setup/passkey`: the browser's new key. Setup goes on
/// (recovery codes the first time, then the console); a key registered in
/// a recovery session waits for another owner, and that session ends.
pub(super) async fn register(
    State(s): State<Services>,
    Client(client): Client,
    Extension(actor): Extension<AdminActor>,
    shell: Shell,
    headers: HeaderMap,
    form: Result<Form<PasskeyForm>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/setup");
    let result = match credential(form) {
        Ok((value, name)) => {
            let name = name.unwrap_or_else(|| ctx.t("passkey-default-name"));
            s.webauthn_register_finish(&actor, &name, &value, &client)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok((_, enrolled)) => {
            if let Some(activation) = enrolled.activation {
                let mut resp = page(
                    &ctx,
                    StatusCode::ACCEPTED,
                    "passkey-waiting-title",
                    html! {
                        p id="passkey-pending" {
                            (super::i18n::text(ctx.lang, "passkey-pending", &[
                                ("approval", activation.approval.as_str().into()),
                            ]))
                        }
                    },
                );
                resp.headers_mut()
                    .append(header::SET_COOKIE, clear_cookie());
                return resp;
            }
            let session = enrolled.session.as_ref().map(|(_, c)| c);
            if enrolled.recovery_codes.is_empty() {
                let mut resp = super::page::see_other("/console/");
                if let Some(c) = session {
                    resp.headers_mut()
                        .append(header::SET_COOKIE, set_cookie(c, s.clock.now()));
                }
                return resp;
            }
            recovery_codes_page(&s, &ctx, &enrolled.recovery_codes, session)
        }
        Err(e) => match refusal(&s, &ctx, &e) {
            Some((status, message)) => {
                super::setup::step_page(&s, &ctx, &actor, &csrf, &headers, status, Some(message))
                    .await
            }
            None => crate::error::ApiError(e).into_response(),
        },
    }
}

/// `POST /console/second-factor/passkey`: signing in with a key.
pub(super) async fn sign_in(
    State(s): State<Services>,
    Client(client): Client,
    Extension(actor): Extension<AdminActor>,
    shell: Shell,
    headers: HeaderMap,
    form: Result<Form<PasskeyForm>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/second-factor");
    let result = match credential(form) {
        Ok((value, _)) => s.webauthn_login_finish(&actor, &value, &client).await,
        Err(e) => Err(e),
    };
    match result {
        Ok((_, cookie)) => signed(&s, &cookie),
        Err(e) => {
            let (status, message) = match refusal(&s, &ctx, &e) {
                Some(r) => r,
                None => super::signin::refusal(&ctx, &client, &e),
            };
            super::signin::second_factor_page(
                &s,
                &ctx,
                &actor,
                &csrf,
                &headers,
                status,
                Some(message),
            )
            .await
        }
    }
}
