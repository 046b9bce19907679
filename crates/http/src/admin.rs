//! The admin listener's REST API (described in docs/openapi.yaml).

use crate::auth::{Access, Auth, Guard};
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Extension;
use axum::{Json, Router};
use mamori_core::auth::permit::{
    CommandsRead, DeviceActions, DevicesRead, EnrollmentWrite, SettingsWrite,
};
use mamori_core::auth::ClientContext;
use mamori_core::enroll::{LinkRequest, ProfileRequest};
use mamori_core::{CoreError, Services};
use mamori_domain::DeviceKey;
use mamori_domain::Permission;
use serde::Deserialize;
use serde_json::json;

/// Largest admin request body.
pub const ADMIN_LIMIT: usize = 2 * 1024 * 1024;

/// Who may see and decide requests of the two-person rule (each request
/// further needs the permission of its action).
const DECIDERS: Access = Access::AnyPermission(&[
    Permission::CommandsWrite,
    Permission::AccountsManage,
    Permission::PersonalDataRead,
]);

/// The OpenAPI document served at /api/v1/openapi.yaml.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.yaml");

/// One admin route: method, path, who may call it, and its handler.
pub struct Route {
    /// HTTP method.
    pub method: &'static str,
    /// Path pattern (axum syntax).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    handler: MethodRouter<Services>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

fn r(
    method: &'static str,
    path: &'static str,
    access: Access,
    handler: MethodRouter<Services>,
) -> Route {
    Route {
        method,
        path,
        access,
        handler,
    }
}

/// Every admin route. The router is built from this table only, so a route
/// cannot exist without a declared access rule.
pub fn table() -> Vec<Route> {
    use Access::{AnySession, FullSession, Public, SecondFactor};
    use Permission as P;
    let perm = Access::Permission;
    vec![
        r("GET", "/healthz", Public, get(|| async { "ok" })),
        r("GET", "/api/v1/openapi.yaml", Public, get(openapi)),
        // Login and sessions.
        r("POST", "/api/v1/auth/login", Public, post(session::login)),
        r(
            "POST",
            "/api/v1/auth/totp",
            SecondFactor,
            post(session::login_totp),
        ),
        r(
            "POST",
            "/api/v1/auth/recovery",
            SecondFactor,
            post(session::login_recovery),
        ),
        r(
            "POST",
            "/api/v1/auth/webauthn/login/start",
            SecondFactor,
            post(session::webauthn_login_start),
        ),
        r(
            "POST",
            "/api/v1/auth/webauthn/login/finish",
            SecondFactor,
            post(session::webauthn_login_finish),
        ),
        r(
            "GET",
            "/api/v1/auth/session",
            AnySession,
            get(session::whoami),
        ),
        r(
            "POST",
            "/api/v1/auth/logout",
            AnySession,
            post(session::logout),
        ),
        r(
            "POST",
            "/api/v1/auth/password",
            AnySession,
            post(session::change_password),
        ),
        r(
            "POST",
            "/api/v1/auth/totp/enroll",
            AnySession,
            post(session::totp_enroll),
        ),
        r(
            "POST",
            "/api/v1/auth/totp/confirm",
            AnySession,
            post(session::totp_confirm),
        ),
        r(
            "POST",
            "/api/v1/auth/webauthn/register/start",
            AnySession,
            post(session::webauthn_register_start),
        ),
        r(
            "POST",
            "/api/v1/auth/webauthn/register/finish",
            AnySession,
            post(session::webauthn_register_finish),
        ),
        r(
            "POST",
            "/api/v1/auth/step-up",
            FullSession,
            post(session::step_up),
        ),
        r(
            "POST",
            "/api/v1/auth/step-up/webauthn/start",
            FullSession,
            post(session::step_up_webauthn_start),
        ),
        r(
            "POST",
            "/api/v1/auth/step-up/webauthn/finish",
            FullSession,
            post(session::step_up_webauthn_finish),
        ),
        r(
            "GET",
            "/api/v1/auth/sessions",
            FullSession,
            get(session::list_sessions),
        ),
        r(
            "DELETE",
            "/api/v1/auth/sessions/{id}",
            FullSession,
            delete(session::revoke_session),
        ),
        r(
            "POST",
            "/api/v1/auth/sessions/revoke-all",
            FullSession,
            post(session::revoke_all_sessions),
        ),
        r(
            "GET",
            "/api/v1/auth/factors",
            FullSession,
            get(session::factors),
        ),
        r(
            "DELETE",
            "/api/v1/auth/totp",
            FullSession,
            delete(session::remove_totp),
        ),
        r(
            "DELETE",
            "/api/v1/auth/webauthn/{id}",
            FullSession,
            delete(session::remove_webauthn),
        ),
        r(
            "POST",
            "/api/v1/auth/recovery-codes",
            FullSession,
            post(session::recovery_codes),
        ),
        // Accounts.
        r(
            "GET",
            "/api/v1/admins",
            perm(P::AccountsManage),
            get(accounts::list),
        ),
        r(
            "POST",
            "/api/v1/admins",
            perm(P::AccountsManage),
            post(accounts::create),
        ),
        r(
            "PUT",
            "/api/v1/admins/{name}/role",
            perm(P::AccountsManage),
            put(accounts::set_role),
        ),
        r(
            "POST",
            "/api/v1/admins/{name}/disable",
            perm(P::AccountsManage),
            post(accounts::disable),
        ),
        r(
            "POST",
            "/api/v1/admins/{name}/enable",
            perm(P::AccountsManage),
            post(accounts::enable),
        ),
        r(
            "POST",
            "/api/v1/admins/{name}/reset",
            perm(P::AccountsManage),
            post(accounts::reset),
        ),
        r(
            "POST",
            "/api/v1/admins/{name}/unlock",
            perm(P::AccountsManage),
            post(accounts::unlock),
        ),
        r(
            "POST",
            "/api/v1/admins/{name}/reinstate",
            perm(P::AccountsManage),
            post(suspension::reinstate),
        ),
        r(
            "GET",
            "/api/v1/tokens",
            perm(P::TokensOwn),
            get(accounts::list_tokens),
        ),
        r(
            "POST",
            "/api/v1/tokens",
            perm(P::TokensOwn),
            post(accounts::create_token),
        ),
        r(
            "DELETE",
            "/api/v1/tokens/{id}",
            perm(P::TokensOwn),
            delete(accounts::revoke_token),
        ),
        r(
            "GET",
            "/api/v1/audit",
            perm(P::AuditRead),
            get(accounts::audit),
        ),
        r(
            "GET",
            "/api/v1/groups",
            perm(P::DevicesRead),
            get(groups::list),
        ),
        r(
            "POST",
            "/api/v1/groups",
            perm(P::CommandsWrite),
            post(groups::create),
        ),
        r(
            "GET",
            "/api/v1/groups/{id}",
            perm(P::DevicesRead),
            get(groups::get_one),
        ),
        r(
            "DELETE",
            "/api/v1/groups/{id}",
            perm(P::CommandsWrite),
            delete(groups::delete_one),
        ),
        r(
            "POST",
            "/api/v1/groups/{id}/devices",
            perm(P::CommandsWrite),
            post(groups::members),
        ),
        r(
            "PUT",
            "/api/v1/groups/{id}/policies",
            perm(P::CommandsWrite),
            put(groups::policies),
        ),
        r(
            "GET",
            "/api/v1/devices/{udid}/commands",
            perm(P::CommandsRead),
            get(device_commands),
        ),
        r(
            "PUT",
            "/api/v1/groups/{id}/compliance",
            perm(P::CommandsWrite),
            put(groups::compliance),
        ),
        r(
            "GET",
            "/api/v1/reports/compliance",
            perm(P::DevicesRead),
            get(groups::compliance_report),
        ),
        r(
            "GET",
            "/api/v1/devices/search",
            perm(P::DevicesRead),
            get(groups::search_devices),
        ),
        r(
            "GET",
            "/api/v1/devices/{udid}/apps",
            perm(P::DevicesRead),
            get(groups::device_apps),
        ),
        r(
            "GET",
            "/api/v1/devices/{udid}/profiles",
            perm(P::DevicesRead),
            get(groups::device_profiles),
        ),
        r(
            "POST",
            "/api/v1/reconcile",
            perm(P::CommandsWrite),
            post(groups::reconcile),
        ),
        r(
            "GET",
            "/api/v1/policies",
            perm(P::DevicesRead),
            get(policies::list),
        ),
        r(
            "POST",
            "/api/v1/policies",
            perm(P::CommandsWrite),
            post(policies::create),
        ),
        r(
            "GET",
            "/api/v1/policies/{id}",
            perm(P::DevicesRead),
            get(policies::get_one),
        ),
        r(
            "PATCH",
            "/api/v1/policies/{id}",
            perm(P::CommandsWrite),
            axum::routing::patch(policies::update),
        ),
        r(
            "DELETE",
            "/api/v1/policies/{id}",
            perm(P::CommandsWrite),
            delete(policies::delete_one),
        ),
        r(
            "GET",
            "/api/v1/incidents",
            perm(P::AuditRead),
            get(incidents::list),
        ),
        r(
            "POST",
            "/api/v1/incidents",
            perm(P::IncidentsManage),
            post(incidents::open),
        ),
        r(
            "GET",
            "/api/v1/incidents/{id}",
            perm(P::AuditRead),
            get(incidents::get_one),
        ),
        r(
            "PATCH",
            "/api/v1/incidents/{id}",
            perm(P::IncidentsManage),
            axum::routing::patch(incidents::update),
        ),
        r(
            "POST",
            "/api/v1/incidents/{id}/scope",
            perm(P::IncidentsManage),
            post(incidents::refresh_scope),
        ),
        r(
            "GET",
            "/api/v1/incidents/{id}/people",
            perm(P::AuditRead),
            get(incidents::people),
        ),
        r(
            "POST",
            "/api/v1/incidents/{id}/notifications",
            perm(P::IncidentsManage),
            post(incidents::notify),
        ),
        r(
            "GET",
            "/api/v1/incidents/{id}/evidence",
            perm(P::AuditRead),
            get(incidents::evidence),
        ),
        r(
            "GET",
            "/api/v1/audit/sinks",
            perm(P::AuditRead),
            get(accounts::audit_sinks),
        ),
        r(
            "GET",
            "/api/v1/reports/breach-scope",
            perm(P::AuditRead),
            get(accounts::breach_scope),
        ),
        // Devices.
        r(
            "POST",
            "/api/v1/enrollment-profiles",
            perm(P::EnrollmentWrite),
            post(create_profile),
        ),
        r(
            "POST",
            "/api/v1/enrollment-links",
            perm(P::EnrollmentWrite),
            post(create_link),
        ),
        r(
            "GET",
            "/api/v1/devices",
            perm(P::DevicesRead),
            get(list_devices),
        ),
        r(
            "GET",
            "/api/v1/devices/{udid}",
            perm(P::DevicesRead),
            get(get_device),
        ),
        // Helpdesk actions need device_actions; anything else commands_write
        // (checked by the service, per command).
        r(
            "POST",
            "/api/v1/commands",
            perm(P::DeviceActions),
            post(enqueue),
        ),
        r(
            "GET",
            "/api/v1/commands/{command_uuid}",
            perm(P::CommandsRead),
            get(command_status),
        ),
        // People (personal fields only ever sealed; plaintext is its own
        // permission and every read is recorded).
        r(
            "GET",
            "/api/v1/people",
            perm(P::DevicesRead),
            get(people::list),
        ),
        r(
            "POST",
            "/api/v1/people",
            perm(P::PeopleWrite),
            post(people::create),
        ),
        r(
            "POST",
            "/api/v1/people/import",
            perm(P::PeopleWrite),
            post(people::import).layer(DefaultBodyLimit::max(people::IMPORT_LIMIT)),
        ),
        r(
            "GET",
            "/api/v1/people/lookup",
            perm(P::PeopleWrite),
            get(people::lookup),
        ),
        r(
            "GET",
            "/api/v1/people/personal-data",
            perm(P::PersonalDataRead),
            get(people::list_plain),
        ),
        r(
            "GET",
            "/api/v1/people/{id}",
            perm(P::DevicesRead),
            get(people::get),
        ),
        r(
            "PATCH",
            "/api/v1/people/{id}",
            perm(P::PeopleWrite),
            axum::routing::patch(people::update),
        ),
        r(
            "POST",
            "/api/v1/people/exports",
            perm(P::PersonalDataRead),
            post(people::request_export),
        ),
        r(
            "GET",
            "/api/v1/people/exports/{id}",
            perm(P::PersonalDataRead),
            get(people::download_export),
        ),
        r(
            "GET",
            "/api/v1/people/{id}/personal-data",
            perm(P::PersonalDataRead),
            get(people::get_plain),
        ),
        r(
            "POST",
            "/api/v1/people/{id}/offboard",
            perm(P::PeopleWrite),
            post(people::offboard),
        ),
        r("GET", "/api/v1/approvals", DECIDERS, get(people::approvals)),
        r(
            "POST",
            "/api/v1/approvals/{id}/approve",
            DECIDERS,
            post(people::approve),
        ),
        r(
            "POST",
            "/api/v1/approvals/{id}/reject",
            DECIDERS,
            post(people::reject),
        ),
        r(
            "PUT",
            "/api/v1/admins/{name}/person",
            perm(P::AccountsManage),
            put(people::link_admin),
        ),
        r(
            "POST",
            "/api/v1/people/{id}/purge",
            perm(P::PeopleWrite),
            post(people::purge),
        ),
        // Re-enrollments held because the device's identity was live.
        r(
            "GET",
            "/api/v1/reenrollments",
            perm(P::DevicesRead),
            get(reenroll::list),
        ),
        r(
            "POST",
            "/api/v1/devices/{udid}/reenrollment/approve",
            perm(P::EnrollmentWrite),
            post(reenroll::approve),
        ),
        r(
            "POST",
            "/api/v1/devices/{udid}/reenrollment/deny",
            perm(P::EnrollmentWrite),
            post(reenroll::deny),
        ),
        // Offboarding a person queues RemoveProfile (or an erase) for the
        // devices assigned to them: assigning is a decision about devices.
        r(
            "PUT",
            "/api/v1/devices/{udid}/person",
            perm(P::CommandsWrite),
            put(people::assign),
        ),
        r(
            "PUT",
            "/api/v1/push-certificate",
            perm(P::SettingsWrite),
            put(put_push_cert),
        ),
    ]
}

/// Every admin route's method, path and access (for tests and docs).
pub fn routes() -> Vec<(&'static str, &'static str, Access)> {
    table()
        .into_iter()
        .map(|r| (r.method, r.path, r.access))
        .collect()
}

mod accounts;
mod groups;
mod incidents;
mod people;
mod policies;
mod reenroll;
mod session;
mod suspension;

/// Routes administrators use.
pub fn router(services: Services) -> Router {
    let mut router = Router::new();
    for route in table() {
        let guard = Guard {
            services: services.clone(),
            access: route.access,
        };
        router = router.route(
            route.path,
            route.handler.layer(axum::middleware::from_fn_with_state(
                guard,
                crate::auth::guard,
            )),
        );
    }
    router
        .fallback(|| async { ApiError(CoreError::NotFound("no such route".into())) })
        .layer(DefaultBodyLimit::max(ADMIN_LIMIT))
        .with_state(services)
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI).into_response()
}

/// Parses a JSON body; an empty body gives the default. A Content-Type other
/// than JSON is refused.
pub(crate) fn json_body<T: serde::de::DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        if !ct.starts_with("application/json") {
            tracing::warn!(content_type = %ct, "admin request body is not JSON");
            return Err(CoreError::UnsupportedMediaType(
                "Content-Type must be application/json".into(),
            )
            .into());
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| CoreError::BadRequest(format!("invalid JSON body: {e}")).into())
}

async fn create_profile(
    State(s): State<Services>,
    Auth(by): Auth<EnrollmentWrite>,
    Extension(ctx): Extension<ClientContext>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: ProfileRequest = json_body(&headers, &body)?;
    let bytes = s.create_enrollment_profile(&by, &ctx, &req).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-apple-aspen-config"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"mamori-enroll.mobileconfig\"",
            ),
        ],
        bytes,
    )
        .into_response())
}

async fn create_link(
    State(s): State<Services>,
    Auth(by): Auth<EnrollmentWrite>,
    Extension(ctx): Extension<ClientContext>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: LinkRequest = json_body(&headers, &body)?;
    let link = s.create_enrollment_link(&by, &ctx, &req).await?;
    Ok((StatusCode::CREATED, Json(link)).into_response())
}

#[derive(Debug, Deserialize)]
struct Page {
    after: Option<String>,
    limit: Option<u32>,
}

async fn list_devices(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Extension(ctx): Extension<ClientContext>,
    Query(page): Query<Page>,
) -> Result<Response, ApiError> {
    let after = page
        .after
        .as_deref()
        .map(DeviceKey::parse)
        .transpose()
        .map_err(|e| CoreError::BadRequest(e.to_string()))?;
    let limit = page.limit.unwrap_or(100).clamp(1, 1000);
    let devices = s.devices_page(&by, &ctx, after.as_ref(), limit).await?;
    let next = (devices.len() == limit as usize)
        .then(|| devices.last().map(|d| d.device.udid.to_string()))
        .flatten();
    Ok(Json(json!({ "devices": devices, "next_after": next })).into_response())
}

async fn get_device(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Extension(ctx): Extension<ClientContext>,
    Path(udid): Path<String>,
) -> Result<Response, ApiError> {
    let key = DeviceKey::parse(&udid).map_err(|e| CoreError::BadRequest(e.to_string()))?;
    let device = s
        .device_view(&by, &ctx, &key)
        .await?
        .ok_or_else(|| CoreError::NotFound("no such device".into()))?;
    Ok(Json(device).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnqueueBody {
    #[serde(default)]
    devices: Vec<String>,
    #[serde(default)]
    command: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct PushFlag {
    push: Option<bool>,
}

async fn enqueue(
    State(s): State<Services>,
    Auth(by): Auth<DeviceActions>,
    Extension(ctx): Extension<ClientContext>,
    Query(flag): Query<PushFlag>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: EnqueueBody = json_body(&headers, &body)?;
    let queued = s
        .enqueue_command(
            &by,
            &ctx,
            &req.devices,
            &req.command,
            flag.push.unwrap_or(true),
        )
        .await?;
    Ok(match queued {
        mamori_core::commands::Enqueued::Queued(q) => {
            (StatusCode::OK, Json(json!({ "commands": q }))).into_response()
        }
        mamori_core::commands::Enqueued::AwaitingApproval(a) => {
            (StatusCode::ACCEPTED, Json(json!({ "approval": a }))).into_response()
        }
    })
}

async fn device_commands(
    State(s): State<Services>,
    Auth(by): Auth<CommandsRead>,
    Path(udid): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(json!({ "commands": s.device_commands(&by, &udid).await? })).into_response())
}

async fn command_status(
    State(s): State<Services>,
    Auth(by): Auth<CommandsRead>,
    Extension(ctx): Extension<ClientContext>,
    Path(uuid): Path<String>,
) -> Result<Response, ApiError> {
    let view = s.command_status(&by, &ctx, &uuid).await?;
    let r = view.record;
    Ok(Json(json!({
        "command_uuid": r.command_uuid,
        "request_type": r.request_type,
        "udid": r.udid,
        "status": r.state,
        "queued_at": r.queued_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "updated_at": r.updated_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "result": r.result,
        "error_chain": r.error_chain,
        "redacted": view.redacted,
        "devices": [{
            "udid": r.udid,
            "status": r.state,
            "result": r.result,
            "error_chain": r.error_chain,
            "redacted": view.redacted,
        }],
    }))
    .into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PushCertBody {
    certificate_pem: String,
    private_key_pem: String,
}

async fn put_push_cert(
    State(s): State<Services>,
    Auth(by): Auth<SettingsWrite>,
    Extension(ctx): Extension<ClientContext>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: PushCertBody = json_body(&headers, &body)?;
    let topic = s
        .set_push_certificate(&by, &ctx, &req.certificate_pem, &req.private_key_pem)
        .await?;
    Ok(Json(json!({ "topic": topic })).into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{routes, OPENAPI};

    /// Every admin route is described in the OpenAPI document, under its
    /// method; a route added without documentation fails here.
    #[test]
    fn every_route_is_in_the_openapi_document() {
        let doc: serde_json::Value = serde_yaml_ng::from_str(OPENAPI).unwrap();
        let routes = routes();
        for (method, path, _) in &routes {
            let ops = &doc["paths"][path];
            assert!(ops.is_object(), "{path} missing from docs/openapi.yaml");
            assert!(
                ops[method.to_lowercase()].is_object(),
                "{method} {path} missing from docs/openapi.yaml"
            );
        }
        let documented = doc["paths"].as_object().unwrap();
        for path in documented.keys() {
            assert!(
                routes.iter().any(|(_, p, _)| p == path),
                "{path} is documented but not routed"
            );
        }
    }
}
