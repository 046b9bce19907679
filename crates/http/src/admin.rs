//! The admin listener's REST API (described in docs/openapi.yaml).

use crate::auth::{Admin, Permission};
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use mamori_core::enroll::{LinkRequest, ProfileRequest};
use mamori_core::{CoreError, Services};
use mamori_domain::DeviceKey;
use serde::Deserialize;
use serde_json::json;

/// Largest admin request body.
pub const ADMIN_LIMIT: usize = 2 * 1024 * 1024;

/// The OpenAPI document served at /api/v1/openapi.yaml.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.yaml");

/// Every admin route: method, path, and the permission it needs (None: public).
pub const ROUTES: &[(&str, &str, Option<Permission>)] = &[
    ("GET", "/healthz", None),
    ("GET", "/api/v1/openapi.yaml", None),
    (
        "POST",
        "/api/v1/enrollment-profiles",
        Some(Permission::EnrollmentWrite),
    ),
    (
        "POST",
        "/api/v1/enrollment-links",
        Some(Permission::EnrollmentWrite),
    ),
    ("GET", "/api/v1/devices", Some(Permission::DevicesRead)),
    (
        "GET",
        "/api/v1/devices/{udid}",
        Some(Permission::DevicesRead),
    ),
    ("POST", "/api/v1/commands", Some(Permission::CommandsWrite)),
    (
        "GET",
        "/api/v1/commands/{command_uuid}",
        Some(Permission::CommandsRead),
    ),
    ("GET", "/api/v1/tokens", Some(Permission::TokensManage)),
    ("POST", "/api/v1/tokens", Some(Permission::TokensManage)),
    (
        "DELETE",
        "/api/v1/tokens/{id}",
        Some(Permission::TokensManage),
    ),
    (
        "PUT",
        "/api/v1/push-certificate",
        Some(Permission::SettingsWrite),
    ),
];

/// Routes administrators use.
pub fn router(services: Services) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/v1/openapi.yaml", get(openapi))
        .route("/api/v1/enrollment-profiles", post(create_profile))
        .route("/api/v1/enrollment-links", post(create_link))
        .route("/api/v1/devices", get(list_devices))
        .route("/api/v1/devices/{udid}", get(get_device))
        .route("/api/v1/commands", post(enqueue))
        .route("/api/v1/commands/{command_uuid}", get(command_status))
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
        .route(
            "/api/v1/push-certificate",
            axum::routing::put(put_push_cert),
        )
        .fallback(|| async { ApiError(CoreError::NotFound("no such route".into())) })
        .layer(DefaultBodyLimit::max(ADMIN_LIMIT))
        .with_state(services)
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI).into_response()
}

/// Parses a JSON body; an empty body gives the default. A Content-Type other
/// than JSON is refused.
fn json_body<T: serde::de::DeserializeOwned + Default>(
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
    admin: Admin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    admin.require(Permission::EnrollmentWrite)?;
    let req: ProfileRequest = json_body(&headers, &body)?;
    let bytes = s.create_enrollment_profile(&req).await?;
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
    admin: Admin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    admin.require(Permission::EnrollmentWrite)?;
    let req: LinkRequest = json_body(&headers, &body)?;
    let link = s.create_enrollment_link(&req).await?;
    Ok((StatusCode::CREATED, Json(link)).into_response())
}

#[derive(Debug, Deserialize)]
struct Page {
    after: Option<String>,
    limit: Option<u32>,
}

async fn list_devices(
    State(s): State<Services>,
    admin: Admin,
    Query(page): Query<Page>,
) -> Result<Response, ApiError> {
    admin.require(Permission::DevicesRead)?;
    let after = page
        .after
        .as_deref()
        .map(DeviceKey::parse)
        .transpose()
        .map_err(|e| CoreError::BadRequest(e.to_string()))?;
    let limit = page.limit.unwrap_or(100).clamp(1, 1000);
    let devices = s
        .store
        .list_devices(after.as_ref(), limit)
        .await
        .map_err(CoreError::from)?;
    let next = (devices.len() == limit as usize)
        .then(|| devices.last().map(|d| d.udid.to_string()))
        .flatten();
    Ok(Json(json!({ "devices": devices, "next_after": next })).into_response())
}

async fn get_device(
    State(s): State<Services>,
    admin: Admin,
    Path(udid): Path<String>,
) -> Result<Response, ApiError> {
    admin.require(Permission::DevicesRead)?;
    let key = DeviceKey::parse(&udid).map_err(|e| CoreError::BadRequest(e.to_string()))?;
    let device = s
        .store
        .device(&key)
        .await
        .map_err(CoreError::from)?
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
    admin: Admin,
    Query(flag): Query<PushFlag>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    admin.require(Permission::CommandsWrite)?;
    let req: EnqueueBody = json_body(&headers, &body)?;
    let queued = s
        .enqueue_command(&req.devices, &req.command, flag.push.unwrap_or(true))
        .await?;
    Ok((StatusCode::OK, Json(json!({ "commands": queued }))).into_response())
}

async fn command_status(
    State(s): State<Services>,
    admin: Admin,
    Path(uuid): Path<String>,
) -> Result<Response, ApiError> {
    admin.require(Permission::CommandsRead)?;
    let r = s.command_status(&uuid).await?;
    Ok(Json(json!({
        "command_uuid": r.command_uuid,
        "request_type": r.request_type,
        "udid": r.udid,
        "status": r.state,
        "queued_at": r.queued_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "updated_at": r.updated_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "result": r.result,
        "error_chain": r.error_chain,
        "devices": [{
            "udid": r.udid,
            "status": r.state,
            "result": r.result,
            "error_chain": r.error_chain,
        }],
    }))
    .into_response())
}

async fn list_tokens(State(s): State<Services>, admin: Admin) -> Result<Response, ApiError> {
    admin.require(Permission::TokensManage)?;
    let tokens = s.store.list_tokens().await.map_err(CoreError::from)?;
    Ok(Json(json!({ "tokens": tokens })).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    role: Option<String>,
    ttl_days: Option<u32>,
}

async fn create_token(
    State(s): State<Services>,
    admin: Admin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    admin.require(Permission::TokensManage)?;
    let req: NewToken = json_body(&headers, &body)?;
    let (token, secret) = s
        .create_token(
            &req.name,
            req.role.as_deref().unwrap_or("viewer"),
            req.ttl_days,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": token, "secret": secret })),
    )
        .into_response())
}

async fn revoke_token(
    State(s): State<Services>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    admin.require(Permission::TokensManage)?;
    s.revoke_token(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PushCertBody {
    certificate_pem: String,
    private_key_pem: String,
}

async fn put_push_cert(
    State(s): State<Services>,
    admin: Admin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    admin.require(Permission::SettingsWrite)?;
    let req: PushCertBody = json_body(&headers, &body)?;
    let topic = s
        .set_push_certificate(&req.certificate_pem, &req.private_key_pem)
        .await?;
    Ok(Json(json!({ "topic": topic })).into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{OPENAPI, ROUTES};

    /// Every admin route is described in the OpenAPI document, under its
    /// method; a route added without documentation fails here.
    #[test]
    fn every_route_is_in_the_openapi_document() {
        let doc: serde_json::Value = serde_yaml_ng::from_str(OPENAPI).unwrap();
        for (method, path, _) in ROUTES {
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
                ROUTES.iter().any(|(_, p, _)| p == path),
                "{path} is documented but not routed"
            );
        }
    }
}
