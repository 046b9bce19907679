//! Held re-enrollments (`mamori_core::device::reenroll`): list, approve, deny.

use super::{r, Route};
use crate::auth::Access;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::{Body, Client, Path};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::Json;
use mamori_core::access::permit::{DevicesRead, EnrollmentWrite};
use mamori_core::device::reenroll::HeldIdentity;
use mamori_core::Services;
use mamori_domain::DeviceKey;
use mamori_domain::Permission as P;
use serde::{Deserialize, Serialize};

/// Re-enrollments held because the device's identity was live.
#[derive(Debug, Serialize)]
struct HeldList {
    reenrollments: Vec<HeldIdentity>,
}

/// Names the held identity when a device has several.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Decision {
    #[serde(default)]
    fingerprint: Option<String>,
}

pub(super) async fn list(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
) -> Result<Response, ApiError> {
    let held = s.held_identities(&by, None).await?;
    Ok(Json(HeldList {
        reenrollments: held,
    })
    .into_response())
}

pub(super) async fn approve(
    State(s): State<Services>,
    Auth(by): Auth<EnrollmentWrite>,
    Client(ctx): Client,
    Path(udid): Path<DeviceKey>,
    Body(d): Body<Decision>,
) -> Result<Response, ApiError> {
    let done = s
        .approve_reenrollment(&by, &ctx, &udid, d.fingerprint.as_deref())
        .await?;
    Ok(Json(done).into_response())
}

pub(super) async fn deny(
    State(s): State<Services>,
    Auth(by): Auth<EnrollmentWrite>,
    Client(ctx): Client,
    Path(udid): Path<DeviceKey>,
    Body(d): Body<Decision>,
) -> Result<Response, ApiError> {
    s.deny_reenrollment(&by, &ctx, &udid, d.fingerprint.as_deref())
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
