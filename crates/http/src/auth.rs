//! Admin authentication and authorization. Every admin route declares the
//! permission it needs; roles map to permissions; anything not granted is
//! denied.

use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use mamori_core::tokens::Principal;
use mamori_core::{CoreError, Services};

/// What an admin route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read devices and inventory.
    DevicesRead,
    /// Read commands and results.
    CommandsRead,
    /// Queue commands.
    CommandsWrite,
    /// Create enrollment profiles.
    EnrollmentWrite,
    /// Change server settings (push certificate).
    SettingsWrite,
    /// Create, list and revoke API tokens.
    TokensManage,
}

/// Whether a role holds a permission. Unknown roles hold nothing.
pub fn role_allows(role: &str, p: Permission) -> bool {
    use Permission::*;
    match role {
        "owner" => true,
        "device_admin" => matches!(
            p,
            DevicesRead | CommandsRead | CommandsWrite | EnrollmentWrite | SettingsWrite
        ),
        "helpdesk" | "security_officer" | "viewer" => matches!(p, DevicesRead | CommandsRead),
        _ => false,
    }
}

/// An authenticated administrator (bearer token).
#[derive(Debug, Clone)]
pub struct Admin(pub Principal);

impl Admin {
    /// Fails with 403 unless the caller's role grants `p`.
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if role_allows(&self.0.role, p) {
            Ok(())
        } else {
            tracing::warn!(token = %self.0.token_id, role = %self.0.role, permission = ?p, "permission denied");
            Err(CoreError::Forbidden("permission denied".into()).into())
        }
    }
}

impl FromRequestParts<Services> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Services) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some(token) = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
        else {
            tracing::warn!(path = %parts.uri.path(), "admin request without bearer token");
            return Err(CoreError::Unauthorized.into());
        };
        let principal = s.authenticate_token(token.trim()).await?;
        Ok(Admin(principal))
    }
}
