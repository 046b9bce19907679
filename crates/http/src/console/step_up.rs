//! Step-up on the page: where an action needs a fresh proof of identity,
//! the page that refused it carries the proof's form (a passkey where the
//! account has one; a password and a fresh TOTP code where its role may
//! use TOTP) with the action's own fields, so one press proves who it is
//! and sends the action again. The same use-cases as
//! `/api/v1/auth/step-up*`: the same throttles, failures and records.

use super::page::PageCtx;
use crate::auth::SessionSecret;
use mamori_core::access::{AdminActor, ClientContext};
use mamori_core::{CoreError, Services};
use maud::{html, Markup};
use serde::Deserialize;

/// The proof a form may carry (each field empty when absent).
#[derive(Debug, Default, Deserialize)]
pub(super) struct Proof {
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub credential: String,
}

/// The step-up form for `actor`, posting `carried` (the action's fields)
/// back to `action`.
pub(super) async fn form(
    s: &Services,
    ctx: &PageCtx,
    csrf: &str,
    actor: &AdminActor,
    action: &str,
    carried: Markup,
) -> Markup {
    let Ok(factors) = s.own_factors(actor).await else {
        return html! { p class="error" role="alert" id="step-up-unavailable" { (ctx.t("step-up-unavailable")) } };
    };
    let passkey = if factors.webauthn.is_empty() {
        None
    } else {
        s.step_up_webauthn_start(actor).await.ok()
    };
    let totp = factors.totp && !factors.webauthn_required;
    html! {
        div id="step-up" class="notice" {
            p role="alert" { (ctx.t("step-up-needed")) }
            @if let Some(options) = passkey {
                (super::passkey::form(s, ctx, csrf, super::passkey::Ceremony::SignIn, &options, action, carried.clone()))
            }
            @if totp {
                form method="post" action=(action) id="step-up-form" {
                    input type="hidden" name="csrf" value=(csrf);
                    (carried)
                    label for="step-up-password" { (ctx.t("field-password")) }
                    input type="password" id="step-up-password" name="password"
                        autocomplete="current-password" required maxlength="1024";
                    label for="step-up-code" { (ctx.t("field-code")) }
                    input type="text" id="step-up-code" name="code" inputmode="numeric"
                        autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required;
                    button type="submit" class="danger" { (ctx.t("step-up-confirm")) }
                }
            }
            @if !totp && factors.webauthn.is_empty() {
                p class="error" id="step-up-unavailable" { (ctx.t("step-up-unavailable")) }
            }
        }
    }
}

/// Carries out the step-up a form brings (a passkey answer, or a password
/// and code) and reads the session again, so the action that follows sees
/// it: the fresh actor, or `None` when the form brings no proof (or the
/// caller has no session to step up).
pub(super) async fn perform(
    s: &Services,
    actor: &AdminActor,
    secret: Option<&SessionSecret>,
    client: &ClientContext,
    proof: &Proof,
) -> Result<Option<AdminActor>, CoreError> {
    let Some(secret) = secret else {
        return Ok(None);
    };
    if !proof.credential.is_empty() {
        let answer = serde_json::from_str(&proof.credential)
            .map_err(|_| CoreError::BadRequest("no passkey answer".into()))?;
        s.step_up_webauthn_finish(actor, &answer, client).await?;
    } else if !proof.password.is_empty() || !proof.code.is_empty() {
        s.step_up_totp(actor, &proof.password, &proof.code, client)
            .await?;
    } else {
        return Ok(None);
    }
    Ok(Some(s.authenticate_session(&secret.0, client).await?))
}

/// The words for a failed step-up.
pub(super) fn failure(ctx: &PageCtx, e: &CoreError) -> String {
    match e {
        CoreError::TooManyRequests(secs) => super::i18n::text(
            ctx.lang,
            "sign-in-throttled",
            &[("seconds", (*secs).into())],
        ),
        CoreError::Passkey(_) => ctx.t("passkey-refused"),
        _ => ctx.t("step-up-failed"),
    }
}
