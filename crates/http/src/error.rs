//! Mapping service errors to HTTP responses: the client gets a status and a
//! safe message; internal causes go to the log only.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mamori_core::CoreError;

/// An error answered to an administrator (JSON body).
#[derive(Debug)]
pub struct ApiError(pub CoreError);

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        Self(e)
    }
}

fn status_and_message(e: &CoreError) -> (StatusCode, String) {
    match e {
        CoreError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
        CoreError::Unauthorized => (StatusCode::UNAUTHORIZED, "authentication required".into()),
        CoreError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid credentials".into()),
        CoreError::TooManyRequests(_) => (
            StatusCode::TOO_MANY_REQUESTS,
            "too many attempts; try again later".into(),
        ),
        CoreError::StepUpRequired => (StatusCode::FORBIDDEN, e.to_string()),
        CoreError::Rows(_) => (StatusCode::BAD_REQUEST, e.to_string()),
        CoreError::Passkey(p) => match p {
            mamori_core::PasskeyProblem::Refused => {
                (StatusCode::UNAUTHORIZED, "invalid credentials".into())
            }
            mamori_core::PasskeyProblem::Expired => (StatusCode::CONFLICT, p.to_string()),
            _ => (StatusCode::BAD_REQUEST, p.to_string()),
        },
        CoreError::AuditUnavailable => {
            tracing::error!("audit log unwritable: request refused");
            (StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        CoreError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
        CoreError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
        CoreError::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
        CoreError::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, m.clone()),
        CoreError::Internal(_) => {
            // The cause may quote what a client sent: escaped.
            let cause = e.cause_chain().unwrap_or_default();
            tracing::error!(cause = %mamori_domain::log_safe(&cause), "internal error");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = status_and_message(&self.0);
        let mut resp = match &self.0 {
            CoreError::StepUpRequired => (
                status,
                Json(serde_json::json!({ "error": message, "code": "step_up_required" })),
            )
                .into_response(),
            CoreError::Passkey(p) => (
                status,
                Json(serde_json::json!({ "error": message, "code": p.code() })),
            )
                .into_response(),
            CoreError::Rows(rows) => {
                let rows: Vec<_> = rows
                    .iter()
                    .map(|(line, error)| serde_json::json!({ "line": line, "error": error }))
                    .collect();
                (
                    status,
                    Json(serde_json::json!({ "error": message, "rows": rows })),
                )
                    .into_response()
            }
            _ => (status, Json(serde_json::json!({ "error": message }))).into_response(),
        };
        if let CoreError::TooManyRequests(secs) = &self.0 {
            if let Ok(v) = http::HeaderValue::from_str(&secs.max(&1).to_string()) {
                resp.headers_mut().insert(http::header::RETRY_AFTER, v);
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// An error answered to a device (plain text).
#[derive(Debug)]
pub struct DeviceError(pub CoreError);

impl From<CoreError> for DeviceError {
    fn from(e: CoreError) -> Self {
        Self(e)
    }
}

impl IntoResponse for DeviceError {
    fn into_response(self) -> Response {
        let (status, message) = status_and_message(&self.0);
        (status, message).into_response()
    }
}
