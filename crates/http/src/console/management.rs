//! What a device's page shows of its management: the person it is
//! assigned to (pseudonymous), its groups, the policy profiles it has or
//! is being sent, its installed apps; and one command's page (its state
//! and result: a location, say, shown only to a viewer who may read
//! personal data, the read audited as through the API).

use super::page::{page, titled, PageCtx, Shell};
use crate::auth::Auth;
use crate::extract::Client;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mamori_core::access::permit::{CommandsRead, DevicesRead};
use mamori_core::access::Authorized;
use mamori_core::{CoreError, Services};
use mamori_domain::DeviceKey;
use maud::{html, Markup};

/// The most apps a page lists (the count is always shown).
const APPS_SHOWN: usize = 200;

/// The management sections of a device's page (each left out when it
/// cannot be read).
// Length: one template of four short tables that read best in page order.
pub(super) async fn sections(
    s: &Services,
    by: &Authorized<DevicesRead>,
    ctx: &PageCtx,
    udid: &DeviceKey,
) -> Markup {
    let person = s.device_person(by, udid).await.ok().flatten();
    let groups = s.device_groups(by, udid).await.unwrap_or_default();
    let profiles = s
        .device_profiles(by, udid.as_str())
        .await
        .unwrap_or_default();
    let policies = s.policies(by).await.unwrap_or_default();
    let apps = s.device_apps(by, udid.as_str()).await.unwrap_or_default();
    let policy_name = |id: &str| {
        policies
            .iter()
            .find(|p| p.id == id)
            .map_or_else(|| id.to_owned(), |p| p.name.clone())
    };
    html! {
        section aria-labelledby="device-management" {
            h2 id="device-management" { (ctx.t("device-management")) }
            dl class="facts" id="device-belongs" {
                dt { (ctx.t("device-person")) }
                dd {
                    @match &person {
                        Some(p) => a href={ "/console/people/" (p) } id="device-person" { code { (p) } },
                        None => span class="muted" { (ctx.t("device-no-person")) },
                    }
                }
                dt { (ctx.t("device-groups")) }
                dd id="device-groups" {
                    @if groups.is_empty() { span class="muted" { (ctx.t("device-no-groups")) } }
                    @for (i, g) in groups.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href={ "/console/groups/" (g.id) } { (g.name) }
                    }
                }
            }
            h3 { (ctx.t("device-profiles")) }
            @if profiles.is_empty() {
                p { (ctx.t("device-profiles-none")) }
            } @else {
                table id="device-profiles" {
                    thead { tr {
                        th scope="col" { (ctx.t("group-policy")) }
                        th scope="col" { (ctx.t("command-state")) }
                        th scope="col" { (ctx.t("command-updated")) }
                    } }
                    tbody {
                        @for p in &profiles {
                            tr data-policy=(p.policy_id) {
                                td { a href={ "/console/policies/" (p.policy_id) } { (policy_name(&p.policy_id)) } }
                                td class="state" { (p.state.as_str()) }
                                td { (ctx.when(p.updated_at)) }
                            }
                        }
                    }
                }
            }
            h3 { (super::i18n::text(ctx.lang, "device-apps", &[("count", apps.len().into())])) }
            @if apps.is_empty() {
                p { (ctx.t("device-apps-none")) }
            } @else {
                table id="device-apps" {
                    thead { tr {
                        th scope="col" { (ctx.t("device-app-name")) }
                        th scope="col" { (ctx.t("device-app-bundle")) }
                        th scope="col" { (ctx.t("device-app-version")) }
                    } }
                    tbody {
                        @for a in apps.iter().take(APPS_SHOWN) {
                            tr {
                                td { (a.name.as_deref().unwrap_or("")) }
                                td { code { (a.bundle_id) } }
                                td { (a.version.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
                @if apps.len() > APPS_SHOWN { p class="muted" { (ctx.t("device-apps-more")) } }
            }
        }
    }
}

/// A result's values as rows: scalars as they are, the rest as JSON.
fn rows(v: Option<&serde_json::Value>) -> Vec<(String, String)> {
    let Some(serde_json::Value::Object(map)) = v else {
        return Vec::new();
    };
    map.iter()
        .map(|(k, v)| {
            let shown = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            (k.clone(), shown)
        })
        .collect()
}

/// `GET /console/devices/{udid}/commands/{uuid}`.
pub(super) async fn command(
    State(s): State<Services>,
    Auth(by): Auth<CommandsRead>,
    Client(client): Client,
    Shell { ctx, .. }: Shell,
    axum::extract::Path((udid, uuid)): axum::extract::Path<(String, String)>,
) -> Response {
    let missing = || {
        let body = html! { p { (ctx.t("command-missing")) } };
        page(&ctx, StatusCode::NOT_FOUND, "not-found-title", body)
    };
    let Ok(udid) = DeviceKey::parse(&udid) else {
        return missing();
    };
    let view = match s.command_status(&by, &client, &uuid).await {
        Ok(v) if v.record.udid == udid => v,
        Ok(_) | Err(CoreError::NotFound(_) | CoreError::BadRequest(_)) => return missing(),
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let r = &view.record;
    let result = rows(r.result.as_ref());
    let body = html! {
        p { a href={ "/console/devices/" (udid) } { (ctx.t("command-back")) } }
        dl class="facts" id="command-facts" {
            dt { (ctx.t("command-state")) } dd id="command-state" { (r.state.as_str()) }
            dt { (ctx.t("command-queued")) } dd { (ctx.when(r.queued_at)) }
            dt { (ctx.t("command-updated")) } dd { (ctx.when(r.updated_at)) }
            dt { "UUID" } dd { code { (r.command_uuid) } }
        }
        h2 { (ctx.t("command-result")) }
        @if result.is_empty() {
            p { (ctx.t("command-no-result")) }
        } @else {
            dl class="facts" id="command-result" {
                @for (k, v) in &result {
                    dt { (k) }
                    dd data-key=(k) {
                        @if view.redacted.iter().any(|p| p == &format!("result.{k}")) {
                            span class="muted" { (ctx.t("command-withheld")) }
                        } @else { (v) }
                    }
                }
            }
            @if !view.redacted.is_empty() { p class="muted" id="command-redacted" { (ctx.t("command-redacted")) } }
        }
    };
    titled(&ctx, StatusCode::OK, &r.request_type, body)
}
