//! Settings in the console: the APNs push certificate (its topic and
//! expiry; installing or renewing it, a renewal keeping the topic every
//! device enrolled with) and a checklist of what a real device needs, each
//! item checked against the server's own settings and explained.

use super::page::{page, PageCtx, Shell};
use crate::auth::Auth;
use crate::extract::Client;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use mamori_core::access::permit::SettingsWrite;
use mamori_core::access::Authorized;
use mamori_core::device::push::PendingPush;
use mamori_core::device::readiness::{Check, Readiness};
use mamori_core::{CoreError, Services};
use maud::{html, Markup};
use serde::Deserialize;

fn mark(ctx: &PageCtx, c: Check) -> Markup {
    let (class, key) = match c {
        Check::Ok => ("check ok", "check-ok"),
        Check::Warn => ("check warn", "check-warn"),
        Check::Fail => ("check fail", "check-fail"),
    };
    html! { span class=(class) { (ctx.t(key)) } }
}

/// One checklist item: its mark, what it is, and what to do.
fn item(ctx: &PageCtx, id: &str, c: Check, title: String, explain: String) -> Markup {
    html! {
        li id=(id) data-check=(match c { Check::Ok => "ok", Check::Warn => "warn", Check::Fail => "fail" }) {
            (mark(ctx, c)) " " strong { (title) }
            p { (explain) }
        }
    }
}

fn checklist(ctx: &PageCtx, r: &Readiness) -> Markup {
    let t = |key: &str, args: &[(&str, String)]| {
        let args: Vec<(&str, fluent_bundle::FluentValue<'_>)> =
            args.iter().map(|(k, v)| (*k, v.clone().into())).collect();
        super::i18n::text(ctx.lang, key, &args)
    };
    let push_explain = match (r.push, r.push_expires_at) {
        (Check::Fail, _) | (_, None) => ctx.t("ready-push-none"),
        (Check::Warn, Some(end)) => t("ready-push-renew", &[("end", ctx.when(end))]),
        (_, Some(end)) => t("ready-push-ok", &[("end", ctx.when(end))]),
    };
    let url = r.public_url.clone();
    html! {
        ol class="checklist" {
            (item(ctx, "ready-public-url", r.public_url_check, t("ready-public-url", &[("url", url.clone())]),
                ctx.t(match r.public_url_check {
                    Check::Ok => "ready-public-url-ok",
                    Check::Warn => "ready-public-url-warn",
                    Check::Fail => "ready-public-url-fail",
                })))
            (item(ctx, "ready-tls", r.tls, ctx.t("ready-tls"),
                ctx.t(if r.tls == Check::Ok { "ready-tls-ok" } else { "ready-tls-generated" })))
            (item(ctx, "ready-push", r.push, ctx.t("ready-push"), push_explain))
            (item(ctx, "ready-passkeys", r.passkeys, t("ready-passkeys", &[("url", r.admin_url.clone())]),
                ctx.t(if r.passkeys == Check::Ok { "ready-passkeys-ok" } else { "ready-passkeys-off" })))
        }
    }
}

/// The request waiting for its certificate, to copy or download (open
/// when it was just made).
fn pending_request(ctx: &PageCtx, pending: &PendingPush, fresh: bool) -> Markup {
    let csr = match pending {
        PendingPush::Request(csr) => csr,
        PendingPush::KeyOnly => {
            return html! { p class="notice" id="push-pending" { (ctx.t("push-pending")) (" ") (ctx.t("push-pending-old")) } }
        }
        PendingPush::Unreadable => {
            return html! { p class="error" id="push-pending" { (ctx.t("push-pending-unreadable")) } }
        }
    };
    let href = format!(
        "data:application/pkcs10;base64,{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, csr.as_bytes())
    );
    html! {
        div class="notice" id="push-pending" {
            p { (ctx.t("push-pending")) }
            details open[fresh] id="push-pending-request" {
                summary { (ctx.t("push-request-again")) }
                label for="push-csr" { (ctx.t("push-request-csr")) }
                textarea id="push-csr" rows="8" readonly spellcheck="false" { (csr) }
                p { a href=(href) download="mamori-push.csr" id="push-csr-download" { (ctx.t("push-request-download")) } }
            }
        }
    }
}

fn push_section(
    ctx: &PageCtx,
    csrf: &str,
    r: &Readiness,
    pending: Option<PendingPush>,
    fresh: bool,
    error: Option<String>,
) -> Markup {
    let waiting = pending.is_some();
    html! {
        section aria-labelledby="push-title" {
            h2 id="push-title" { (ctx.t("push-title")) }
            @match (&r.push_topic, r.push_expires_at) {
                (Some(topic), Some(end)) => dl class="facts" id="push-installed" {
                    dt { (ctx.t("push-topic")) } dd { code { (topic) } }
                    dt { (ctx.t("push-expires")) } dd { (ctx.when(end)) }
                },
                _ => p id="push-none" { (ctx.t("ready-push-none")) },
            }
            p class="muted" { (ctx.t("push-how")) }
            @if let Some(e) = error {
                p class="error" role="alert" id="push-error" { (e) }
            }
            form method="post" action="/console/settings/push-request" id="push-request-form" {
                input type="hidden" name="csrf" value=(csrf);
                p { (ctx.t("push-request-intro")) }
                button type="submit" { (ctx.t("push-request-button")) }
            }
            @if let Some(p) = &pending { (pending_request(ctx, p, fresh)) }
            form method="post" action="/console/settings/push-certificate" id="push-form" {
                input type="hidden" name="csrf" value=(csrf);
                label for="push-cert" { (ctx.t("push-cert")) }
                textarea id="push-cert" name="certificate" rows="6" required maxlength="12000"
                    spellcheck="false" {}
                label for="push-key" { (ctx.t(if waiting { "push-key-optional" } else { "push-key" })) }
                textarea id="push-key" name="key" rows="6" required[!waiting] maxlength="4000"
                    spellcheck="false" autocomplete="off" {}
                button type="submit" { (ctx.t("push-install")) }
            }
        }
    }
}

/// What the settings page shows beside its sections.
#[derive(Default)]
struct Shown {
    /// A notice above the sections.
    top: Option<Markup>,
    /// The push form's error.
    error: Option<String>,
    /// A request was just made: its CSR shown open.
    fresh: bool,
}

async fn settings_page(
    s: &Services,
    by: &Authorized<SettingsWrite>,
    ctx: &PageCtx,
    csrf: &str,
    status: StatusCode,
    shown: Shown,
) -> Response {
    let Shown { top, error, fresh } = shown;
    let r = s.readiness();
    let pending = match s.push_request_pending(by).await {
        Ok(p) => p,
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let body = html! {
        @if let Some(t) = top { (t) }
        section aria-labelledby="ready-title" {
            h2 id="ready-title" { (ctx.t("ready-title")) }
            p { (ctx.t("ready-intro")) }
            (checklist(ctx, &r))
        }
        (push_section(ctx, csrf, &r, pending, fresh, error))
    };
    page(ctx, status, "settings-title", body)
}

/// `?installed=1` after a certificate was installed.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Installed {
    installed: Option<String>,
}

/// `GET /console/settings`.
pub(super) async fn index(
    State(s): State<Services>,
    Auth(by): Auth<SettingsWrite>,
    Shell { ctx, csrf }: Shell,
    Query(q): Query<Installed>,
) -> Response {
    let top = q.installed.map(|_| {
        html! { p class="notice" role="status" id="push-done" { (ctx.t("push-installed")) } }
    });
    let shown = Shown {
        top,
        ..Shown::default()
    };
    settings_page(&s, &by, &ctx, &csrf, StatusCode::OK, shown).await
}

/// The push certificate form.
#[derive(Debug, Deserialize)]
pub(super) struct PushForm {
    #[serde(default)]
    certificate: String,
    #[serde(default)]
    key: String,
}

/// `POST /console/settings/push-certificate`.
pub(super) async fn push_certificate(
    State(s): State<Services>,
    Auth(by): Auth<SettingsWrite>,
    Client(client): Client,
    shell: Shell,
    form: Result<Form<PushForm>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/settings");
    let Ok(Form(f)) = form else {
        let e = ctx.t("push-missing");
        return refused(&s, &by, &ctx, &csrf, e).await;
    };
    let key = zeroize::Zeroizing::new(f.key);
    // Without a key: the one kept for the request made here.
    let installed = if key.trim().is_empty() {
        s.install_requested_push_certificate(&by, &client, &f.certificate)
            .await
    } else {
        s.set_push_certificate(&by, &client, &f.certificate, &key)
            .await
    };
    match installed {
        Ok(_) => super::page::see_other("/console/settings?installed=1"),
        Err(CoreError::BadRequest(m) | CoreError::Conflict(m)) => {
            let e = super::i18n::text(ctx.lang, "push-refused", &[("reason", m.into())]);
            refused(&s, &by, &ctx, &csrf, e).await
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

/// The settings page again with the push form's error.
async fn refused(
    s: &Services,
    by: &Authorized<SettingsWrite>,
    ctx: &PageCtx,
    csrf: &str,
    error: String,
) -> Response {
    let shown = Shown {
        error: Some(error),
        ..Shown::default()
    };
    settings_page(s, by, ctx, csrf, StatusCode::BAD_REQUEST, shown).await
}

/// The request form: `replace=1` confirms replacing a pending request.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Replace {
    replace: Option<String>,
}

/// `POST /console/settings/push-request`: a key made and kept here, and
/// its certificate signing request shown to copy or download.
pub(super) async fn push_request(
    State(s): State<Services>,
    Auth(by): Auth<SettingsWrite>,
    Client(client): Client,
    shell: Shell,
    form: Result<Form<Replace>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/settings");
    let replace = form.is_ok_and(|Form(f)| f.replace.as_deref() == Some("1"));
    // A second press must not silently replace the key of a request
    // already on its way to Apple.
    match s.push_request_pending(&by).await {
        Ok(Some(_)) if !replace => {
            let top = html! {
                div class="notice" id="push-replace" role="alert" {
                    p { (ctx.t("push-request-replace")) }
                    form method="post" action="/console/settings/push-request" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="replace" value="1";
                        button type="submit" class="danger" { (ctx.t("push-request-replace-button")) }
                    }
                }
            };
            let shown = Shown {
                top: Some(top),
                ..Shown::default()
            };
            return settings_page(&s, &by, &ctx, &csrf, StatusCode::CONFLICT, shown).await;
        }
        Ok(_) => {}
        Err(e) => return crate::error::ApiError(e).into_response(),
    }
    if let Err(e) = s.push_certificate_request(&by, &client).await {
        return crate::error::ApiError(e).into_response();
    }
    let top = html! {
        section class="notice" id="push-request" aria-labelledby="push-request-title" {
            h2 id="push-request-title" { (ctx.t("push-request-made")) }
            ol {
                li { (ctx.t("push-request-step-sign")) }
                li { (ctx.t("push-request-step-portal")) }
                li { (ctx.t("push-request-step-upload")) }
            }
            p { a href="#push-pending-request" { (ctx.t("push-request-below")) } }
        }
    };
    let shown = Shown {
        top: Some(top),
        fresh: true,
        ..Shown::default()
    };
    settings_page(&s, &by, &ctx, &csrf, StatusCode::CREATED, shown).await
}
