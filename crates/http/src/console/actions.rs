//! A device's actions in the console: lock (a Mac's PIN shown once), Lost
//! Mode with a message and phone number, its sound and location, restart,
//! clearing the passcode, erasing. Each is a small form posted to one
//! route; the server builds the command from an allow-list, checks the
//! fields, and queues it through the same use-case as the API (the same
//! permissions, step-up, two-person rule and audit records). A destructive
//! action that needs a fresh proof of identity asks for it on the page.

use super::devices::device_page;
use super::page::{notice, PageCtx, Shell};
use super::step_up::{self, Proof};
use crate::auth::Auth;
use crate::auth::SessionSecret;
use crate::extract::{Client, Path};
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Form;
use mamori_core::access::permit::{CommandsWrite, DeviceActions, DevicesRead};
use mamori_core::access::{Actor, Authorized, ClientContext};
use mamori_core::device::commands::Enqueued;
use mamori_core::{CoreError, Services};
use mamori_domain::{Device, DeviceKey};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;

/// The actions a viewer with `helpdesk` (device actions) and `admin`
/// (any command) may take on `d`.
pub(super) fn forms(ctx: &PageCtx, csrf: &str, d: &Device, helpdesk: bool, admin: bool) -> Markup {
    if !helpdesk && !admin {
        return html! {};
    }
    let action = format!("/console/devices/{}/actions", d.udid);
    let button = |kind: &str, key: &str, class: &str| {
        html! {
            form method="post" action=(action) class="action" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="kind" value=(kind);
                button type="submit" class=(class) { (ctx.t(key)) }
            }
        }
    };
    html! {
        section aria-labelledby="device-actions" {
            h2 id="device-actions" { (ctx.t("device-actions")) }
            @if helpdesk {
                form method="post" action=(action) class="action" id="lock-form" {
                    fieldset {
                    legend { (ctx.t("action-lock")) }
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="kind" value="lock";
                    label for="lock-message" { (ctx.t("action-message")) }
                    input type="text" id="lock-message" name="message" maxlength="200";
                    label for="lock-phone" { (ctx.t("action-phone")) }
                    input type="tel" id="lock-phone" name="phone" maxlength="40";
                    button type="submit" { (ctx.t("action-lock")) }
                    }
                }
                form method="post" action=(action) class="action" id="lost-form" {
                    fieldset {
                    legend { (ctx.t("action-lost-mode")) }
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="kind" value="lost-on";
                    label for="lost-message" { (ctx.t("action-message")) }
                    input type="text" id="lost-message" name="message" maxlength="200";
                    label for="lost-phone" { (ctx.t("action-phone")) }
                    input type="tel" id="lost-phone" name="phone" maxlength="40";
                    button type="submit" { (ctx.t("action-lost-on")) }
                    }
                }
                div class="actions" {
                    (button("lost-off", "action-lost-off", ""))
                    (button("sound", "action-sound", ""))
                    (button("locate", "action-locate", ""))
                }
            }
            @if admin {
                div class="actions" {
                    (button("restart", "action-restart", ""))
                }
                (destructive(ctx, csrf, &action, d, "clear-passcode", "action-clear-passcode"))
                (destructive(ctx, csrf, &action, d, "erase", "action-erase"))
                (destructive(ctx, csrf, &action, d, "unenroll", "action-unenroll"))
                p class="hint" { (ctx.t("action-unenroll-hint")) }
            }
        }
    }
}

/// What a destructive action needs typed to confirm it: the device's
/// serial number (its identifier when it reported none).
fn confirmation_of(d: &Device) -> String {
    d.serial_number
        .clone()
        .unwrap_or_else(|| d.udid.to_string())
}

/// A destructive action's form: the serial number typed to confirm.
fn destructive(
    ctx: &PageCtx,
    csrf: &str,
    action: &str,
    d: &Device,
    kind: &str,
    key: &str,
) -> Markup {
    let id = format!("{kind}-form");
    let field = format!("{kind}-confirm");
    html! {
        form method="post" action=(action) class="action" id=(id) {
            fieldset {
                legend { (ctx.t(key)) }
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="kind" value=(kind);
                label for=(field) {
                    (super::i18n::text(ctx.lang, "action-type-to-confirm", &[("serial", confirmation_of(d).into())]))
                }
                input type="text" id=(field) name="confirm" autocomplete="off" required maxlength="64";
                button type="submit" class="danger" { (ctx.t(key)) }
            }
        }
    }
}

/// Whether an action destroys data or removes a protection.
fn is_destructive(kind: &str) -> bool {
    matches!(kind, "erase" | "clear-passcode" | "unenroll")
}

/// A posted action.
#[derive(Debug, Deserialize)]
pub(super) struct ActionForm {
    kind: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    confirm: String,
    #[serde(flatten)]
    proof: Proof,
}

/// Why a field was refused: (catalogue key of the field, of the reason).
type FieldError = (&'static str, &'static str);

fn checked_text(
    value: &str,
    max: usize,
    field: &'static str,
) -> Result<Option<String>, FieldError> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if v.chars().count() > max || v.chars().any(char::is_control) {
        return Err((field, "action-field-too-long"));
    }
    Ok(Some(v.to_owned()))
}

fn checked_phone(value: &str) -> Result<Option<String>, FieldError> {
    let v = checked_text(value, 40, "action-phone")?;
    if v.as_deref().is_some_and(|p| {
        !p.chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
    }) {
        return Err(("action-phone", "action-phone-invalid"));
    }
    Ok(v)
}

/// The command for a form, from the allow-list.
fn command(f: &ActionForm) -> Result<serde_json::Value, FieldError> {
    let message = checked_text(&f.message, 200, "action-message")?;
    let phone = checked_phone(&f.phone)?;
    let with_text = |mut cmd: serde_json::Value| {
        if let Some(m) = &message {
            cmd["Message"] = json!(m);
        }
        if let Some(p) = &phone {
            cmd["PhoneNumber"] = json!(p);
        }
        cmd
    };
    Ok(match f.kind.as_str() {
        "lock" => with_text(json!({"RequestType": "DeviceLock"})),
        "lost-on" => {
            if message.is_none() && phone.is_none() {
                return Err(("action-message", "action-lost-needs-text"));
            }
            with_text(json!({"RequestType": "EnableLostMode"}))
        }
        "lost-off" => json!({"RequestType": "DisableLostMode"}),
        "sound" => json!({"RequestType": "PlayLostModeSound"}),
        "locate" => json!({"RequestType": "DeviceLocation"}),
        "restart" => json!({"RequestType": "RestartDevice"}),
        "clear-passcode" => json!({"RequestType": "ClearPasscode"}),
        "erase" => json!({"RequestType": "EraseDevice"}),
        // Not one command: core's unenroll (see `unenroll`).
        "unenroll" => serde_json::Value::Null,
        _ => return Err(("device-actions", "action-unknown")),
    })
}

/// The fields an action carries again after its step-up.
fn carried(f: &ActionForm) -> Markup {
    html! {
        input type="hidden" name="kind" value=(f.kind);
        input type="hidden" name="confirm" value=(f.confirm);
        input type="hidden" name="message" value=(f.message);
        input type="hidden" name="phone" value=(f.phone);
    }
}

/// The step-up a form carries, done: the caller's proof read again with
/// it (`Ok(None)` when the form carries none).
async fn step_up(
    s: &Services,
    by: &Authorized<DeviceActions>,
    secret: Option<&SessionSecret>,
    client: &ClientContext,
    f: &ActionForm,
) -> Result<Option<Authorized<DeviceActions>>, CoreError> {
    let Some(admin) = by.actor().admin() else {
        return Ok(None);
    };
    match step_up::perform(s, admin, secret, client, &f.proof).await? {
        Some(fresh) => Ok(Some(Actor::from(fresh).authorize::<DeviceActions>()?)),
        None => Ok(None),
    }
}

/// The device's page again, with what became of an action on top.
struct Answer<'a> {
    s: &'a Services,
    reader: &'a Authorized<DevicesRead>,
    client: &'a ClientContext,
    ctx: &'a PageCtx,
    csrf: &'a str,
    udid: &'a DeviceKey,
}

impl Answer<'_> {
    async fn show(&self, status: StatusCode, n: Markup) -> Response {
        device_page(
            self.s,
            self.reader,
            self.client,
            self.ctx,
            self.csrf,
            self.udid,
            status,
            Some(n),
        )
        .await
    }

    async fn refused(&self, status: StatusCode, text: String) -> Response {
        self.show(status, notice("action-error", "error", text))
            .await
    }
}

/// Whether the typed confirmation matches the device.
async fn confirmed(
    s: &Services,
    reader: &Authorized<DevicesRead>,
    udid: &DeviceKey,
    typed: &str,
) -> bool {
    match s.device_withheld(reader, udid).await {
        Ok(Some(view)) => {
            let want = confirmation_of(&view.device);
            mamori_crypto::constant_time_eq(typed.trim().as_bytes(), want.as_bytes())
        }
        _ => false,
    }
}

/// `POST /console/devices/{udid}/actions`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn act(
    State(s): State<Services>,
    Auth(by): Auth<DeviceActions>,
    Client(client): Client,
    shell: Shell,
    secret: Option<Extension<SessionSecret>>,
    Path(udid): Path<DeviceKey>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at(&format!("/console/devices/{udid}"));
    let Ok(reader) = by.actor().clone().authorize::<DevicesRead>() else {
        return crate::error::ApiError(CoreError::Forbidden("devices_read needed".into()))
            .into_response();
    };
    let answer = Answer {
        s: &s,
        reader: &reader,
        client: &client,
        ctx: &ctx,
        csrf: &csrf,
        udid: &udid,
    };
    let Ok(Form(f)) = form else {
        return answer
            .refused(StatusCode::BAD_REQUEST, ctx.t("action-unknown"))
            .await;
    };
    let cmd = match command(&f) {
        Ok(c) => c,
        Err((field, reason)) => {
            let text = format!("{}: {}", ctx.t(field), ctx.t(reason));
            return answer.refused(StatusCode::BAD_REQUEST, text).await;
        }
    };
    if is_destructive(&f.kind)
        && !by
            .actor()
            .admin()
            .is_some_and(|a| a.allows(mamori_domain::Permission::CommandsWrite))
    {
        return answer
            .refused(StatusCode::FORBIDDEN, ctx.t("action-forbidden"))
            .await;
    }
    if is_destructive(&f.kind) && !confirmed(&s, &reader, &udid, &f.confirm).await {
        return answer
            .refused(StatusCode::BAD_REQUEST, ctx.t("action-not-confirmed"))
            .await;
    }
    let by = match step_up(&s, &by, secret.as_ref().map(|Extension(x)| x), &client, &f).await {
        Ok(Some(fresh)) => fresh,
        Ok(None) => by,
        Err(e) => {
            let text = step_up::failure(&ctx, &e);
            return answer.refused(StatusCode::UNAUTHORIZED, text).await;
        }
    };
    if f.kind == "unenroll" {
        return unenroll(&answer, &by, &f).await;
    }
    queue(&answer, &by, &f, &cmd).await
}

/// Takes the device out of management (core's `unenroll_device`).
async fn unenroll(answer: &Answer<'_>, by: &Authorized<DeviceActions>, f: &ActionForm) -> Response {
    let Answer {
        s,
        client,
        ctx,
        udid,
        ..
    } = *answer;
    let Ok(proof) = by.actor().clone().authorize::<CommandsWrite>() else {
        return answer
            .refused(StatusCode::FORBIDDEN, ctx.t("action-forbidden"))
            .await;
    };
    match s.unenroll_device(&proof, client, udid).await {
        Ok(done) => {
            let text = match done.revoke_deadline {
                Some(t) => super::i18n::text(
                    ctx.lang,
                    "action-unenrolling",
                    &[("deadline", ctx.when(t).into())],
                ),
                None => ctx.t("action-unenrolled"),
            };
            answer
                .show(StatusCode::OK, notice("action-unenrolled", "notice", text))
                .await
        }
        Err(CoreError::StepUpRequired) => ask_step_up(answer, by, f).await,
        Err(CoreError::Conflict(reason) | CoreError::NotFound(reason)) => {
            let text = super::i18n::text(ctx.lang, "action-refused", &[("reason", reason.into())]);
            answer.refused(StatusCode::CONFLICT, text).await
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

/// The device's page asking for a step-up that carries the action again.
async fn ask_step_up(
    answer: &Answer<'_>,
    by: &Authorized<DeviceActions>,
    f: &ActionForm,
) -> Response {
    let Some(admin) = by.actor().admin() else {
        return answer
            .refused(StatusCode::FORBIDDEN, answer.ctx.t("action-forbidden"))
            .await;
    };
    let action = format!("/console/devices/{}/actions", answer.udid);
    let form = step_up::form(
        answer.s,
        answer.ctx,
        answer.csrf,
        admin,
        &action,
        carried(f),
    )
    .await;
    answer.show(StatusCode::FORBIDDEN, form).await
}

/// Queues the command and answers with what became of it.
async fn queue(
    answer: &Answer<'_>,
    by: &Authorized<DeviceActions>,
    f: &ActionForm,
    cmd: &serde_json::Value,
) -> Response {
    let Answer {
        s,
        client,
        ctx,
        udid,
        ..
    } = *answer;
    let targets = [udid.to_string()];
    match s.enqueue_command(by, client, &targets, cmd, true).await {
        Ok(Enqueued::Queued(queued)) => {
            if let Some(pin) = queued.first().and_then(|q| q.pin.clone()) {
                let text = super::i18n::text(ctx.lang, "action-pin", &[("pin", pin.into())]);
                return answer
                    .show(StatusCode::OK, notice("action-pin", "notice", text))
                    .await;
            }
            super::page::redirect(&format!("/console/devices/{udid}?sent=1"))
        }
        Ok(Enqueued::AwaitingApproval(a)) => {
            let text = super::i18n::text(
                ctx.lang,
                "action-awaiting",
                &[("approval", a.id.as_str().into())],
            );
            answer
                .show(
                    StatusCode::ACCEPTED,
                    notice("action-awaiting", "notice", text),
                )
                .await
        }
        Err(CoreError::StepUpRequired) => ask_step_up(answer, by, f).await,
        Err(CoreError::Forbidden(_)) => {
            answer
                .refused(StatusCode::FORBIDDEN, ctx.t("action-forbidden"))
                .await
        }
        Err(CoreError::BadRequest(reason) | CoreError::Conflict(reason)) => {
            let text = super::i18n::text(ctx.lang, "action-refused", &[("reason", reason.into())]);
            answer.refused(StatusCode::BAD_REQUEST, text).await
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}
