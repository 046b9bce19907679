//! Held re-enrollments (`mamori_core::reenroll`): list, approve, deny.

use super::json_body;
use super::{r, Route};
use crate::auth::Access;
use crate::auth::Auth;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::{Extension, Json};
use mamori_core::auth::permit::{DevicesRead, EnrollmentWrite};
use mamori_core::auth::ClientContext;
use mamori_core::{CoreError, Services};
use mamori_domain::DeviceKey;
use mamori_domain::Permission as P;
use serde::Deserialize;
use serde_json::json;

/// Names the held identity when a device has several.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Decision {
    #[serde(default)]
    fingerprint: Option<String>,
}

fn device(udid: &str) -> Result<DeviceKey, ApiError> {
    DeviceKey::parse(udid).map_err(|e| CoreError::BadRequest(e.to_string()).into())
}

pub(super) async fn list(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
) -> Result<Response, ApiError> {
    let held = s.held_identities(&by, None).await?;
    Ok(Json(json!({ "reenrollments": held })).into_response())
}

pub(super) async fn approve(
    State(s): State<Services>,
    Auth(by): Auth<EnrollmentWrite>,
    Extension(ctx): Extension<ClientContext>,
    Path(udid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let d: Decision = json_body(&headers, &body)?;
    let done = s
        .approve_reenrollment(&by, &ctx, &device(&udid)?, d.fingerprint.as_deref())
        .await?;
    Ok(Json(done).into_response())
}

pub(super) async fn deny(
    State(s): State<Services>,
    Auth(by): Auth<EnrollmentWrite>,
    Extension(ctx): Extension<ClientContext>,
    Path(udid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let d: Decision = json_body(&headers, &body)?;
    s.deny_reenrollment(&by, &ctx, &device(&udid)?, d.fingerprint.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// This area's admin routes (a part of [`super::table`]).
pub(super) fn routes() -> Vec<Route> {
    let perm = Access::Permission;
    vec![
        // Re-enrollments held because the device's identity was live.
        r(
            "GET",
            "/api/v1/reenrollments",
            perm(P::DevicesRead),
            routing::get(list),
        ),
        r(
            "POST",
            "/api/v1/devices/{udid}/reenrollment/approve",
            perm(P::EnrollmentWrite),
            routing::post(approve),
        ),
        r(
            "POST",
            "/api/v1/devices/{udid}/reenrollment/deny",
            perm(P::EnrollmentWrite),
            routing::post(deny),
        ),
    ]
}
