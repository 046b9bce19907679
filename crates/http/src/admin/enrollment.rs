//! Enrollment profiles and their download links.

use super::{r, Route};
use crate::auth::Access;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::{Body, Client};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::Json;
use mamori_core::access::permit::EnrollmentWrite;
use mamori_core::device::enroll::{LinkRequest, ProfileRequest};
use mamori_core::Services;
use mamori_domain::Permission as P;

/// This area's admin routes (a part of [`super::table`]).
pub(super) fn routes() -> Vec<Route> {
    let perm = Access::Permission;
    vec![
        // Devices.
        r(
            "POST",
            "/api/v1/enrollment-profiles",
            perm(P::EnrollmentWrite),
            routing::post(create_profile),
        ),
        r(
            "POST",
            "/api/v1/enrollment-links",
            perm(P::EnrollmentWrite),
            routing::post(create_link),
        ),
    ]
}

pub(super) async fn create_profile(
    State(s): State<Services>,
    Auth(by): Auth<EnrollmentWrite>,
    Client(ctx): Client,
    Body(req): Body<ProfileRequest>,
) -> Result<Response, ApiError> {
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

pub(super) async fn create_link(
    State(s): State<Services>,
    Auth(by): Auth<EnrollmentWrite>,
    Client(ctx): Client,
    Body(req): Body<LinkRequest>,
) -> Result<Response, ApiError> {
    let link = s.create_enrollment_link(&by, &ctx, &req).await?;
    Ok((StatusCode::CREATED, Json(link)).into_response())
}
