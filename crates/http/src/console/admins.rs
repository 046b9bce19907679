//! Administrators in the console: every account with its role, factors,
//! last sign-in, tokens and state (disabled, locked, suspended, unused for
//! too long), new accounts (a one-time password shown once; a security
//! officer only with a second administrator's approval), and disabling,
//! enabling, unlocking or resetting one. The same use-cases as
//! `/api/v1/admins*`: the same step-up (asked on the page), approvals and
//! audit records; nobody disables their own account.

use super::page::{notice, page, PageCtx, Shell};
use super::step_up::{self, Proof};
use crate::auth::{Auth, SessionSecret};
use crate::extract::Client;
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use mamori_core::access::permit::AccountsManage;
use mamori_core::access::{Actor, Authorized, ClientContext};
use mamori_core::admin::{AdminSummary, Created, Enabled, Reset};
use mamori_core::{CoreError, Services};
use mamori_domain::AdminAccount;
use maud::{html, Markup};
use serde::Deserialize;

const ROLES: &[&str] = &["viewer", "helpdesk", "device_admin", "security_officer"];

fn state(ctx: &PageCtx, a: &AdminSummary) -> String {
    let acc: &AdminAccount = &a.admin;
    let key = if acc.disabled_at.is_some() {
        "admin-state-disabled"
    } else if acc.suspended.is_some() {
        "admin-state-suspended"
    } else if acc.locked_at.is_some() {
        "admin-state-locked"
    } else if a.stale {
        "admin-state-stale"
    } else if acc.must_change_password {
        "admin-state-setup"
    } else {
        "admin-state-active"
    };
    ctx.t(key)
}

fn row_actions(ctx: &PageCtx, csrf: &str, a: &AdminSummary) -> Markup {
    let name = &a.admin.name;
    let button = |action: &str, key: &str, class: &str| {
        html! {
            form method="post" action={ "/console/admins/" (urlencoding::encode(name)) "/" (action) } class="action" {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" class=(class) { (ctx.t(key)) }
            }
        }
    };
    html! {
        div class="actions" {
            @if a.admin.disabled_at.is_some() {
                (button("enable", "admin-enable", ""))
            } @else {
                (button("disable", "admin-disable", "danger"))
            }
            @if a.admin.locked_at.is_some() { (button("unlock", "admin-unlock", "")) }
            (button("reset", "admin-reset", "danger"))
        }
    }
}

fn create_form(ctx: &PageCtx, csrf: &str) -> Markup {
    html! {
        form method="post" action="/console/admins" id="admin-form" {
            fieldset {
                legend { (ctx.t("admin-create-title")) }
                input type="hidden" name="csrf" value=(csrf);
                label for="admin-name" { (ctx.t("field-name")) }
                input type="text" id="admin-name" name="name" required maxlength="64"
                    autocapitalize="none" spellcheck="false";
                label for="admin-role" { (ctx.t("admin-role")) }
                select id="admin-role" name="role" {
                    @for r in ROLES { option value=(r) { (ctx.t(&format!("role-{}", r.replace('_', "-")))) } }
                }
                p class="muted" { (ctx.t("admin-create-intro")) }
                button type="submit" { (ctx.t("admin-create-button")) }
            }
        }
    }
}

/// The page: `top` (what an action did, or a step-up) above the accounts.
async fn admins_page(
    s: &Services,
    by: &Authorized<AccountsManage>,
    ctx: &PageCtx,
    csrf: &str,
    status: StatusCode,
    top: Option<Markup>,
) -> Response {
    let admins = match s.admin_inventory(by).await {
        Ok(a) => a,
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let body = html! {
        @if let Some(t) = top { (t) }
        table id="admins" {
            thead { tr {
                th scope="col" { (ctx.t("field-name")) }
                th scope="col" { (ctx.t("admin-role")) }
                th scope="col" { (ctx.t("admin-factors")) }
                th scope="col" { (ctx.t("admin-last-login")) }
                th scope="col" { (ctx.t("admin-tokens")) }
                th scope="col" { (ctx.t("admin-state")) }
                th scope="col" { (ctx.t("admin-actions")) }
            } }
            tbody {
                @for a in &admins {
                    tr data-admin=(a.admin.name) {
                        td { (a.admin.name) }
                        td { (ctx.t(&format!("role-{}", a.admin.role.as_str().replace('_', "-")))) }
                        td { (a.factors.join(", ")) " · " (super::i18n::text(ctx.lang, "admin-codes-left", &[("count", a.recovery_codes_left.into())])) }
                        td {
                            @match a.admin.last_login_at {
                                Some(t) => { (ctx.when(t)) br; span class="muted" { (a.admin.last_login_source.clone().unwrap_or_default()) } },
                                None => { "—" },
                            }
                        }
                        td { (a.token_count) }
                        td class="state" { (state(ctx, a)) }
                        td { (row_actions(ctx, csrf, a)) }
                    }
                }
            }
        }
        (create_form(ctx, csrf))
    };
    page(ctx, status, "admins-title", body)
}

/// `GET /console/admins`.
pub(super) async fn index(
    State(s): State<Services>,
    Auth(by): Auth<AccountsManage>,
    Shell { ctx, csrf }: Shell,
) -> Response {
    admins_page(&s, &by, &ctx, &csrf, StatusCode::OK, None).await
}

/// A form of this page: its own fields and the step-up it may carry.
#[derive(Debug, Default, Deserialize)]
pub(super) struct AdminForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(flatten)]
    proof: Proof,
}

/// What an action did, for the page.
enum Done {
    Text(&'static str, String),
    Password(String, String),
    Awaiting(String),
}

/// Runs `act` after the step-up the form may carry; answers with the page.
#[allow(clippy::too_many_arguments)]
async fn run<F, Fut>(
    s: &Services,
    by: Authorized<AccountsManage>,
    client: &ClientContext,
    ctx: &PageCtx,
    csrf: &str,
    secret: Option<&SessionSecret>,
    f: &AdminForm,
    action: String,
    act: F,
) -> Response
where
    F: FnOnce(Authorized<AccountsManage>) -> Fut,
    Fut: std::future::Future<Output = Result<Done, CoreError>>,
{
    let by = match by.actor().admin() {
        Some(admin) => match step_up::perform(s, admin, secret, client, &f.proof).await {
            Ok(Some(fresh)) => match Actor::from(fresh).authorize::<AccountsManage>() {
                Ok(p) => p,
                Err(e) => return crate::error::ApiError(e).into_response(),
            },
            Ok(None) => by,
            Err(e) => {
                let n = notice("admin-error", "error", step_up::failure(ctx, &e));
                return admins_page(s, &by, ctx, csrf, StatusCode::UNAUTHORIZED, Some(n)).await;
            }
        },
        None => by,
    };
    let reader = match by.actor().clone().authorize::<AccountsManage>() {
        Ok(p) => p,
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let admin = by.actor().admin().cloned();
    let (status, top) = match act(by).await {
        Ok(Done::Text(id, text)) => (StatusCode::OK, notice(id, "notice", text)),
        Ok(Done::Password(name, password)) => {
            let text = super::i18n::text(
                ctx.lang,
                "admin-password",
                &[("name", name.into()), ("password", password.into())],
            );
            (StatusCode::OK, notice("admin-password", "notice", text))
        }
        Ok(Done::Awaiting(id)) => {
            let text = super::i18n::text(ctx.lang, "action-awaiting", &[("approval", id.into())]);
            (
                StatusCode::ACCEPTED,
                notice("admin-awaiting", "notice", text),
            )
        }
        Err(CoreError::StepUpRequired) => {
            let Some(admin) = admin else {
                return crate::error::ApiError(CoreError::StepUpRequired).into_response();
            };
            let carried = html! {
                input type="hidden" name="name" value=(f.name);
                input type="hidden" name="role" value=(f.role);
            };
            (
                StatusCode::FORBIDDEN,
                step_up::form(s, ctx, csrf, &admin, &action, carried).await,
            )
        }
        Err(
            CoreError::BadRequest(m)
            | CoreError::Conflict(m)
            | CoreError::Forbidden(m)
            | CoreError::NotFound(m),
        ) => {
            let text = super::i18n::text(ctx.lang, "admin-refused", &[("reason", m.into())]);
            (
                StatusCode::BAD_REQUEST,
                notice("admin-error", "error", text),
            )
        }
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    admins_page(s, &reader, ctx, csrf, status, Some(top)).await
}

/// `POST /console/admins`: a new account.
pub(super) async fn create(
    State(s): State<Services>,
    Auth(by): Auth<AccountsManage>,
    Client(client): Client,
    Shell { ctx, csrf }: Shell,
    secret: Option<Extension<SessionSecret>>,
    form: Result<Form<AdminForm>, FormRejection>,
) -> Response {
    let f = form.map(|Form(f)| f).unwrap_or_default();
    let secret = secret.map(|Extension(x)| x);
    let (name, role) = (f.name.clone(), f.role.clone());
    let action = "/console/admins".to_owned();
    let (s2, client2) = (s.clone(), client.clone());
    run(
        &s,
        by,
        &client,
        &ctx,
        &csrf,
        secret.as_ref(),
        &f,
        action,
        |by| async move {
            match s2.create_admin(&by, &client2, &name, &role).await? {
                Created::Now(created) => Ok(Done::Password(
                    created.admin.name,
                    created.one_time_password,
                )),
                Created::AwaitingApproval(a) => Ok(Done::Awaiting(a.id)),
            }
        },
    )
    .await
}

/// The account actions: `POST /console/admins/{name}/{action}`.
pub(super) async fn act(
    State(s): State<Services>,
    Auth(by): Auth<AccountsManage>,
    Client(client): Client,
    shell: Shell,
    secret: Option<Extension<SessionSecret>>,
    axum::extract::Path((name, action)): axum::extract::Path<(String, String)>,
    form: Result<Form<AdminForm>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/admins");
    let f = form.map(|Form(f)| f).unwrap_or_default();
    let secret = secret.map(|Extension(x)| x);
    let url = format!(
        "/console/admins/{}/{}",
        urlencoding::encode(&name),
        urlencoding::encode(&action)
    );
    let done_text =
        |key: &'static str| super::i18n::text(ctx.lang, key, &[("name", name.clone().into())]);
    let texts = (
        done_text("admin-disabled"),
        done_text("admin-enabled"),
        done_text("admin-unlocked"),
    );
    let (name2, client2, s2) = (name.clone(), client.clone(), s.clone());
    run(
        &s,
        by,
        &client,
        &ctx,
        &csrf,
        secret.as_ref(),
        &f,
        url,
        |by| async move {
            let s = s2;
            match action.as_str() {
                "disable" => {
                    let reason = "disabled in the console";
                    s.disable_admin(&by, &client2, &name2, reason).await?;
                    Ok(Done::Text("admin-done", texts.0))
                }
                "enable" => match s.enable_admin(&by, &client2, &name2).await? {
                    Enabled::Now => Ok(Done::Text("admin-done", texts.1)),
                    Enabled::AwaitingApproval(a) => Ok(Done::Awaiting(a.id)),
                },
                "unlock" => {
                    s.unlock_admin(&by, &client2, &name2).await?;
                    Ok(Done::Text("admin-done", texts.2))
                }
                "reset" => match s.reset_admin(&by, &client2, &name2).await? {
                    Reset::Now(created, _) => Ok(Done::Password(
                        created.admin.name,
                        created.one_time_password,
                    )),
                    Reset::AwaitingApproval(a) => Ok(Done::Awaiting(a.id)),
                },
                _ => Err(CoreError::NotFound("no such action".into())),
            }
        },
    )
    .await
}
