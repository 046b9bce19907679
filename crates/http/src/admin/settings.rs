//! Server settings: the APNs push certificate.

use super::json_body;
use super::{r, Route};
use crate::auth::Access;
use crate::auth::Auth;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::{Extension, Json};
use mamori_core::auth::permit::SettingsWrite;
use mamori_core::auth::ClientContext;
use mamori_core::Services;
use mamori_domain::Permission as P;
use serde::Deserialize;
use serde_json::json;

/// This area's admin routes (a part of [`super::table`]).
pub(super) fn routes() -> Vec<Route> {
    let perm = Access::Permission;
    vec![r(
        "PUT",
        "/api/v1/push-certificate",
        perm(P::SettingsWrite),
        routing::put(put_push_cert),
    )]
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PushCertBody {
    certificate_pem: String,
    private_key_pem: String,
}

pub(super) async fn put_push_cert(
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
