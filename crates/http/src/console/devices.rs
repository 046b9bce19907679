//! Devices in the console: the list (search by serial number, model, OS
//! version, app or person; pages of 50 over any number of devices) and one
//! device's page (what it reported, its security state, its commands, and
//! the actions the viewer's role allows). Device names and other personal
//! fields come through the same use-cases as the API: withheld unless the
//! viewer may read them, and every read that shows them audited.

use super::page::{page, titled, PageCtx, Shell};
use crate::auth::Auth;
use crate::extract::{Client, Path};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mamori_core::access::permit::{CommandsRead, DevicesRead};
use mamori_core::access::AdminActor;
use mamori_core::device::devices::DeviceView;
use mamori_core::device::inventory::DeviceQuery;
use mamori_core::{CoreError, Services};
use mamori_domain::{DeviceKey, Permission};
use maud::{html, Markup};
use serde::Deserialize;

/// Devices on one page of the list.
const PAGE: u32 = 50;

/// The list's search fields and where the page starts.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Filter {
    #[serde(default)]
    serial: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    app: String,
    #[serde(default)]
    person: String,
    #[serde(default)]
    platform: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    compliance: String,
    #[serde(default)]
    seen: String,
    after: Option<String>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        [
            &self.serial,
            &self.model,
            &self.os,
            &self.app,
            &self.person,
            &self.platform,
            &self.group,
            &self.compliance,
            &self.seen,
        ]
        .iter()
        .all(|f| f.trim().is_empty())
    }

    /// The query, with the group's members and the compliance state read
    /// through their own use-cases.
    async fn query(
        &self,
        s: &Services,
        by: &mamori_core::access::Authorized<DevicesRead>,
    ) -> Result<DeviceQuery, CoreError> {
        let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let (seen_within_days, unseen_for_days) = match self.seen.as_str() {
            "1d" => (Some(1), None),
            "7d" => (Some(7), None),
            "not7d" => (None, Some(7)),
            "not30d" => (None, Some(30)),
            _ => (None, None),
        };
        let mut q = DeviceQuery {
            serial: some(&self.serial),
            model: some(&self.model),
            os_version: some(&self.os),
            app: some(&self.app),
            person: some(&self.person),
            platform: some(&self.platform),
            seen_within_days,
            unseen_for_days,
            ..DeviceQuery::default()
        };
        if let Some(g) = some(&self.group) {
            q.within = Some(s.group_devices(by, &g).await?);
        }
        if matches!(
            self.compliance.as_str(),
            "compliant" | "non_compliant" | "quarantined"
        ) {
            let r = s.compliance_report(by).await?;
            let pick = |quarantined_only: bool| {
                r.non_compliant
                    .iter()
                    .filter(|d| !quarantined_only || d.quarantined)
                    .map(|d| d.udid.clone())
                    .collect::<std::collections::HashSet<_>>()
            };
            match self.compliance.as_str() {
                "compliant" => q.except = Some(pick(false)),
                "quarantined" => {
                    let mut w = pick(true);
                    if let Some(prev) = q.within.take() {
                        w.retain(|u| prev.contains(u));
                    }
                    q.within = Some(w);
                }
                _ => {
                    let mut w = pick(false);
                    if let Some(prev) = q.within.take() {
                        w.retain(|u| prev.contains(u));
                    }
                    q.within = Some(w);
                }
            }
        }
        Ok(q)
    }
}

/// What a device is called on a page: its name where the viewer may read
/// it, else its model and serial number (which name no one).
fn name_of(ctx: &PageCtx, d: &DeviceView) -> String {
    if let Some(n) = &d.device.device_name {
        return n.clone();
    }
    label_of(ctx, d)
}

/// A device's model and serial number.
fn label_of(ctx: &PageCtx, d: &DeviceView) -> String {
    let model = d
        .device
        .model_name
        .as_deref()
        .or(d.device.model.as_deref())
        .map_or_else(|| ctx.t("device-unnamed"), str::to_owned);
    match d.device.serial_number.as_deref() {
        Some(serial) => format!("{model} ({serial})"),
        None => model,
    }
}

/// A filter's `<select>`: (value, catalogue key or literal label).
fn choice(ctx: &PageCtx, id: &str, key: &str, value: &str, options: &[(String, String)]) -> Markup {
    html! {
        div class="field" {
            label for=(id) { (ctx.t(key)) }
            select id=(id) name=(id) {
                option value="" selected[value.is_empty()] { (ctx.t("devices-any")) }
                @for (v, label) in options {
                    option value=(v) selected[value == v] { (label) }
                }
            }
        }
    }
}

fn search_form(ctx: &PageCtx, f: &Filter, groups: &[(String, String)]) -> Markup {
    let keyed = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(v, k)| ((*v).to_owned(), ctx.t(k)))
            .collect()
    };
    let platforms = vec![
        ("iOS".to_owned(), "iOS / iPadOS".to_owned()),
        ("macOS".to_owned(), "macOS".to_owned()),
    ];
    let compliance = keyed(&[
        ("compliant", "compliance-compliant"),
        ("non_compliant", "devices-non-compliant"),
        ("quarantined", "compliance-quarantined"),
    ]);
    let seen = keyed(&[
        ("1d", "devices-seen-1d"),
        ("7d", "devices-seen-7d"),
        ("not7d", "devices-unseen-7d"),
        ("not30d", "devices-unseen-30d"),
    ]);
    html! {
        form method="get" action="/console/devices" class="search" role="search" {
            @for (id, key, value) in [("serial", "devices-serial", &f.serial), ("model", "devices-model", &f.model),
                ("os", "devices-os", &f.os), ("app", "devices-app", &f.app), ("person", "devices-person", &f.person)] {
                div class="field" {
                    label for=(id) { (ctx.t(key)) }
                    input type="text" id=(id) name=(id) value=(value) maxlength="128";
                }
            }
            (choice(ctx, "platform", "devices-platform", &f.platform, &platforms))
            (choice(ctx, "group", "devices-group", &f.group, groups))
            (choice(ctx, "compliance", "devices-compliance", &f.compliance, &compliance))
            (choice(ctx, "seen", "devices-seen", &f.seen, &seen))
            button type="submit" { (ctx.t("devices-search")) }
        }
    }
}

fn table(ctx: &PageCtx, devices: &[DeviceView]) -> Markup {
    html! {
        table id="devices" {
            caption class="visually-hidden" { (ctx.t("devices-title")) }
            thead { tr {
                th scope="col" { (ctx.t("devices-model")) }
                th scope="col" { (ctx.t("devices-os")) }
                th scope="col" { (ctx.t("devices-serial")) }
                th scope="col" { (ctx.t("device-last-seen")) }
                th scope="col" { (ctx.t("device-status")) }
            } }
            tbody {
                @for d in devices {
                    tr {
                        td { a href={ "/console/devices/" (d.device.udid) } {
                            (d.device.model_name.as_deref().or(d.device.model.as_deref()).unwrap_or("—"))
                        } }
                        td { (d.device.os_version.as_deref().unwrap_or("—")) }
                        td { code { (d.device.serial_number.as_deref().unwrap_or("—")) } }
                        td { (ctx.when(d.device.last_seen_at)) }
                        td { (d.device.status.as_str()) }
                    }
                }
            }
        }
    }
}

/// `GET /console/devices`.
pub(super) async fn list(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Shell { ctx, .. }: Shell,
    Query(f): Query<Filter>,
) -> Response {
    let searching = !f.is_empty();
    let groups: Vec<(String, String)> = s
        .groups(&by)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect();
    // Lists name no one (names are withheld whoever reads), so paging
    // through them reveals nothing and trips no bulk-read rule.
    let result = if searching {
        match f.query(&s, &by).await {
            Ok(q) => s.find_devices(&by, &q, PAGE as usize).await,
            Err(e) => Err(e),
        }
    } else {
        // A cursor that is no device key starts from the first page.
        let after: Option<DeviceKey> = f
            .after
            .as_deref()
            .map(DeviceKey::parse)
            .transpose()
            .unwrap_or_default();
        s.device_list(&by, after.as_ref(), PAGE)
            .await
            .map(|d| (d.len(), d))
    };
    let (total, devices) = match result {
        Ok(d) => d,
        Err(
            CoreError::BadRequest(reason)
            | CoreError::NotFound(reason)
            | CoreError::Forbidden(reason),
        ) => {
            let body = html! {
                (search_form(&ctx, &f, &groups))
                p class="error" role="alert" id="devices-error" { (reason) }
            };
            return page(&ctx, StatusCode::BAD_REQUEST, "devices-title", body);
        }
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let shown = &devices[..];
    let next = (!searching && devices.len() == PAGE as usize)
        .then(|| devices.last().map(|d| d.device.udid.to_string()))
        .flatten();
    let body = html! {
        (search_form(&ctx, &f, &groups))
        @if shown.is_empty() {
            p id="devices-none" { (ctx.t("devices-none")) }
        } @else {
            @if searching {
                p id="devices-found" {
                    (super::i18n::text(ctx.lang, "devices-found", &[
                        ("count", total.into()),
                        ("shown", shown.len().into()),
                    ]))
                }
            }
            (table(&ctx, shown))
        }
        @if let Some(after) = next {
            p { a rel="next" href={ "/console/devices?after=" (after) } { (ctx.t("devices-next")) } }
        }
    };
    page(&ctx, StatusCode::OK, "devices-title", body)
}

/// The top-level values of a reported dictionary, as (key, value) rows.
fn facts(v: Option<&serde_json::Value>) -> Vec<(String, String)> {
    let Some(serde_json::Value::Object(map)) = v else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(k, v)| {
            let shown = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((k.clone(), shown))
        })
        .collect()
}

fn facts_list(rows: &[(String, String)]) -> Markup {
    html! {
        dl class="facts" {
            @for (k, v) in rows { dt { (k) } dd { (v) } }
        }
    }
}

/// The SecurityInfo values a page shows: an allow-list of the state an
/// administrator acts on (never a key or a secret, whatever a device sends).
const SECURITY_SHOWN: &[&str] = &[
    "PasscodePresent",
    "PasscodeCompliant",
    "PasscodeCompliantWithProfiles",
    "PasscodeLockGracePeriodEnforced",
    "FDE_Enabled",
    "FDE_HasPersonalRecoveryKey",
    "FDE_HasInstitutionalRecoveryKey",
    "SystemIntegrityProtectionEnabled",
    "IsRecoveryLockEnabled",
    "IsUserEnrollment",
    "EnrolledViaDEP",
    "UserApprovedEnrollment",
    "IsActivationLockManageable",
    "BootstrapTokenAllowedForAuthentication",
    "BootstrapTokenRequiredForSoftwareUpdate",
    "BootstrapTokenRequiredForKernelExtensionApproval",
    "AuthenticatedRootVolumeEnabled",
    "RemoteDesktopEnabled",
];

fn security_facts(v: Option<&serde_json::Value>) -> Vec<(String, String)> {
    facts(v)
        .into_iter()
        .filter(|(k, _)| SECURITY_SHOWN.contains(&k.as_str()))
        .collect()
}

fn summary(ctx: &PageCtx, d: &mamori_domain::Device) -> Markup {
    let rows = vec![
        (
            ctx.t("devices-serial"),
            d.serial_number.clone().unwrap_or_default(),
        ),
        (
            ctx.t("devices-model"),
            d.model_name.clone().or(d.model.clone()).unwrap_or_default(),
        ),
        (
            ctx.t("devices-os"),
            format!(
                "{} {}",
                d.os_version.as_deref().unwrap_or("—"),
                d.build_version.as_deref().unwrap_or("")
            ),
        ),
        (ctx.t("device-status"), d.status.as_str().to_owned()),
        (ctx.t("device-enrolled"), ctx.when(d.enrolled_at)),
        (ctx.t("device-last-seen"), ctx.when(d.last_seen_at)),
    ];
    html! {
        section aria-labelledby="device-summary" {
            h2 id="device-summary" { (ctx.t("device-summary")) }
            (facts_list(&rows))
        }
    }
}

fn command_table(
    ctx: &PageCtx,
    d: &mamori_domain::Device,
    commands: &[mamori_domain::CommandRecord],
) -> Markup {
    html! {
        section aria-labelledby="device-commands" {
            h2 id="device-commands" { (ctx.t("device-commands")) }
            @if commands.is_empty() {
                p { (ctx.t("device-commands-none")) }
            } @else {
                table id="commands" {
                    thead { tr {
                        th scope="col" { (ctx.t("command-type")) }
                        th scope="col" { (ctx.t("command-state")) }
                        th scope="col" { (ctx.t("command-queued")) }
                        th scope="col" { (ctx.t("command-updated")) }
                    } }
                    tbody {
                        @for c in commands {
                            tr data-command=(c.command_uuid) {
                                td { a href={ "/console/devices/" (d.udid) "/commands/" (c.command_uuid) } { (c.request_type) } }
                                td class="state" { (c.state.as_str()) }
                                td { (ctx.when(c.queued_at)) }
                                td { (ctx.when(c.updated_at)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Whether the viewer may do `permission`.
fn allows(actor: Option<&AdminActor>, permission: Permission) -> bool {
    actor.is_some_and(|a| a.allows(permission))
}

/// `?sent=1` after an action was queued.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Sent {
    sent: Option<String>,
}

/// `GET /console/devices/{udid}`.
pub(super) async fn device(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Client(client): Client,
    Shell { ctx, csrf }: Shell,
    Path(udid): Path<DeviceKey>,
    Query(sent): Query<Sent>,
) -> Response {
    let notice = sent.sent.is_some().then(
        || html! { p class="notice" role="status" id="action-sent" { (ctx.t("action-sent")) } },
    );
    device_page(&s, &by, &client, &ctx, &csrf, &udid, StatusCode::OK, notice).await
}

/// The device's page with `notice` (what an action did, or why not) on top.
#[allow(clippy::too_many_arguments)]
pub(super) async fn device_page(
    s: &Services,
    by: &mamori_core::access::Authorized<DevicesRead>,
    client: &mamori_core::access::ClientContext,
    ctx: &PageCtx,
    csrf: &str,
    udid: &DeviceKey,
    status: StatusCode,
    notice: Option<Markup>,
) -> Response {
    let view = match s.device_view(by, client, udid).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            let body = html! { p { (ctx.t("device-missing")) } };
            return page(ctx, StatusCode::NOT_FOUND, "not-found-title", body);
        }
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let actor = by.actor().admin();
    let commands = match by.actor().clone().authorize::<CommandsRead>() {
        Ok(proof) => s.device_commands(&proof, udid.as_str()).await.ok(),
        Err(_) => None,
    };
    let d = &view.device;
    let body = html! {
        @if let Some(n) = notice { (n) }
        (summary(ctx, d))
        (super::actions::forms(ctx, csrf, d, allows(actor, Permission::DeviceActions), allows(actor, Permission::CommandsWrite)))
        @if let Some(commands) = commands { (command_table(ctx, d, &commands)) }
        (super::management::sections(s, by, ctx, udid).await)
        section aria-labelledby="device-security" {
            h2 id="device-security" { (ctx.t("device-security")) }
            @let rows = security_facts(d.security_info.as_ref());
            @if rows.is_empty() { p { (ctx.t("device-not-reported")) } } @else { (facts_list(&rows)) }
        }
        section aria-labelledby="device-information" {
            h2 id="device-information" { (ctx.t("device-information")) }
            @let rows = facts(d.device_information.as_ref());
            @if rows.is_empty() { p { (ctx.t("device-not-reported")) } } @else { (facts_list(&rows)) }
        }
    };
    titled(ctx, status, &name_of(ctx, &view), body)
}
