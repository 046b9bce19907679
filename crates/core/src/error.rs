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
    /// The audit log cannot be written, so the action was not carried out
    /// (fail closed).
    #[error("the audit log cannot be written; nothing was done")]
    AuditUnavailable,
    /// A passkey ceremony failed for a reason an honest user can fix. Only
    /// ever returned to a session that already proved the password (or is
    /// registering a key), so it tells no one whether an account exists.
    #[error("{0}")]
    Passkey(PasskeyProblem),
    /// Rows of an import that were refused: (line, reason). Nothing was stored.
    #[error("{} rows refused; nothing was imported", .0.len())]
    Rows(Vec<(usize, String)>),
    /// A failure inside the server; the cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] Cause),
}

/// Why a passkey (WebAuthn) answer was refused, as far as the user can
/// act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyProblem {
    /// The browser signed for another address than the admin URL: the
    /// console was opened under another host name or port.
    WrongOrigin,
    /// The authenticator did not verify its user (no PIN, fingerprint or
    /// face check).
    NotVerified,
    /// No challenge is waiting (expired, already answered, or never asked).
    Expired,
    /// The answer did not verify against a key of the account.
    Refused,
}

impl PasskeyProblem {
    /// A stable code for clients (`"passkey_wrong_origin"`, ...).
    pub fn code(self) -> &'static str {
        match self {
            Self::WrongOrigin => "passkey_wrong_origin",
            Self::NotVerified => "passkey_not_verified",
            Self::Expired => "passkey_expired",
            Self::Refused => "passkey_refused",
        }
    }

    /// The problem behind a refusal of `webauthn-rs`.
    pub fn from_webauthn(e: &webauthn_rs::prelude::WebauthnError) -> Self {
        use webauthn_rs::prelude::WebauthnError as W;
        match e {
            W::InvalidRPOrigin | W::InvalidRPIDHash | W::CredentialCrossOrigin => Self::WrongOrigin,
            W::UserNotVerified => Self::NotVerified,
            // No challenge to answer: it expired or was used. (An answer
            // to another challenge than the pending one is a replay as far
            // as the server can tell: `Refused`, below.)
            W::ChallengeNotFound => Self::Expired,
            _ => Self::Refused,
        }
    }
}

impl std::fmt::Display for PasskeyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::WrongOrigin => {
                "the browser is not at the server's admin URL: open the console at the admin \
                 URL (the host name and port the server was started with), then try again"
            }
            Self::NotVerified => {
                "the authenticator did not verify you (PIN, fingerprint or face): use one \
                 that does, or turn that check on, then try again"
            }
            Self::Expired => "the passkey request expired or was already used: start again",
            Self::Refused => "the passkey was not accepted",
        })
    }
}

/// What caused an internal failure, kept whole (with its own sources) for
/// the log. A text converts into one (`"...".into()`), and so does any
/// error (`e.into()`).
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// An internal failure with what was being done, its cause kept whole.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
struct Failed {
    what: String,
    #[source]
    cause: Cause,
}

impl CoreError {
    /// An internal failure: doing `what` failed because of `cause`; the
    /// log shows both (see [`Self::cause_chain`]).
    pub fn internal(what: impl Into<String>, cause: impl Into<Cause>) -> Self {
        Self::Internal(Box::new(Failed {
            what: what.into(),
            cause: cause.into(),
        }))
    }

    /// For an internal failure: its cause and every cause of that, joined
    /// with `: ` (what the log shows); None for the other kinds.
    pub fn cause_chain(&self) -> Option<String> {
        let Self::Internal(cause) = self else {
            return None;
        };
        let mut text = cause.to_string();
        let mut next = cause.source();
        while let Some(e) = next {
            let part = e.to_string();
            // A cause whose text the message already quotes adds nothing.
            if !text.contains(&part) {
                text.push_str(": ");
                text.push_str(&part);
            }
            next = e.source();
        }
        Some(text)
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        Self::Internal(Box::new(e))
    }
}

/// Result of a use-case.
pub type CoreResult<T> = Result<T, CoreError>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn an_internal_failure_keeps_its_causes_for_the_log() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "disk says no");
        let e = CoreError::from(StoreError::from_cause(io));
        assert_eq!(e.to_string(), "internal error", "the client sees nothing");
        // The backend's own error is still there to inspect.
        let store = e.source().and_then(|s| s.downcast_ref::<StoreError>());
        assert!(store.is_some_and(|s| s
            .source()
            .is_some_and(|io| io.downcast_ref::<std::io::Error>().is_some())));
        assert_eq!(e.cause_chain().as_deref(), Some("storage: disk says no"));

        let wrapped = CoreError::internal("seal", std::io::Error::other("no key"));
        assert_eq!(wrapped.cause_chain().as_deref(), Some("seal: no key"));
        assert_eq!(CoreError::Unauthorized.cause_chain(), None);
    }
}
