//! Enrollment profiles and their download links.

use super::json_body;
use super::{r, Route};
use crate::auth::Access;
use crate::auth::Auth;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::{Extension, Json};
use mamori_core::auth::permit::EnrollmentWrite;
use mamori_core::auth::ClientContext;
use mamori_core::enroll::{LinkRequest, ProfileRequest};
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

pub(super) async fn create_link(
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
