//! Server settings: the APNs push certificate.

use super::{r, Route};
use crate::auth::Access;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::{Body, Client};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::Json;
use mamori_core::access::permit::SettingsWrite;
use mamori_core::Services;
use mamori_domain::Permission as P;
use serde::{Deserialize, Serialize};

/// The APNs topic the new push certificate is for.
#[derive(Debug, Serialize)]
struct PushTopic {
    topic: String,
}

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
    Client(ctx): Client,
    Body(req): Body<PushCertBody>,
) -> Result<Response, ApiError> {
    let topic = s
        .set_push_certificate(&by, &ctx, &req.certificate_pem, &req.private_key_pem)
        .await?;
    Ok(Json(PushTopic { topic }).into_response())
}
