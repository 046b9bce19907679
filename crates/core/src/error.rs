//! The service layer's error: what kind of failure, a message safe to show the
//! client, and (for internal failures) a cause that only goes to the log.

use mamori_ports::StoreError;

/// A use-case failure.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The request is malformed or violates the schema; the text says why.
    #[error("{0}")]
    BadRequest(String),
    /// No or invalid credentials.
    #[error("authentication required")]
    Unauthorized,
    /// A login step failed; the same text whatever the reason (unknown
    /// account, wrong password, wrong code, locked, disabled).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The caller must slow down; retry after this many seconds.
    #[error("too many attempts")]
    TooManyRequests(u64),
    /// The action needs a recent re-authentication in an interactive session.
    #[error("this action needs a recent re-authentication (POST /api/v1/auth/step-up)")]
    StepUpRequired,
    /// Authenticated but not allowed; the text is safe to show.
    #[error("{0}")]
    Forbidden(String),
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The body is in a media type this endpoint does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A failure inside the server; the cause is logged, never shown.
    /// The audit log cannot be written, so the action was not carried out
    /// (fail closed).
    #[error("the audit log cannot be written; nothing was done")]
    AuditUnavailable,
    /// Rows of an import that were refused: (line, reason). Nothing was stored.
    #[error("{} rows refused; nothing was imported", .0.len())]
    Rows(Vec<(usize, String)>),
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.0)
    }
}

/// Result of a use-case.
pub type CoreResult<T> = Result<T, CoreError>;
