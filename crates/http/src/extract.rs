//! Typed extractors for the admin handlers' shared preamble: the client
//! context the guard ([`crate::auth::guard`]) put in the request, a path
//! identifier parsed once into its newtype ([`Path`]), and the JSON body
//! ([`Body`]). The caller comes as [`crate::auth::Auth`] (a parts
//! extractor); [`Body`] consumes the request, so it comes last and a body
//! is never parsed before the caller is known.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap};
use axum::response::{IntoResponse, Response};
use mamori_core::access::ClientContext;
use mamori_core::CoreError;
use mamori_domain::{
    ApprovalId, CommandUuid, DeviceKey, GroupId, IdError, IncidentId, PersonId, PolicyId,
    SessionId, TokenId,
};
use serde::de::DeserializeOwned;

/// What the guard put in the request extensions, or a logged 500: the
/// guard runs before every admin handler, so a missing value is a wiring
/// fault (as with axum's `Extension`, which answered 500 too).
fn from_guard<T: Clone + Send + Sync + 'static>(
    parts: &Parts,
    what: &'static str,
) -> Result<T, ApiError> {
    parts.extensions.get::<T>().cloned().ok_or_else(|| {
        ApiError(CoreError::Internal(
            format!("the admin guard did not provide the {what}").into(),
        ))
    })
}

/// The client context of the request (source address, user agent, request
/// id), as the guard recorded it.
#[derive(Debug, Clone)]
pub(crate) struct Client(pub ClientContext);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        from_guard(parts, "client context").map(Self)
    }
}

/// A JSON request body; an empty body gives the default. A Content-Type
/// other than JSON is refused (415). The size limit is the router's
/// `DefaultBodyLimit` (see [`crate::admin::ADMIN_LIMIT`]), answered as
/// axum answers it (413). Must be the handler's last extractor.
#[derive(Debug)]
pub(crate) struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        json_body(&headers, &body)
            .map(Self)
            .map_err(IntoResponse::into_response)
    }
}

/// Parses a JSON body; an empty body gives the default. A Content-Type other
/// than JSON is refused.
fn json_body<T: DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        if !ct.starts_with("application/json") {
            tracing::warn!(content_type = %ct, "admin request body is not JSON");
            return Err(CoreError::UnsupportedMediaType(
                "Content-Type must be application/json".into(),
            )
            .into());
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| CoreError::BadRequest(format!("invalid JSON body: {e}")).into())
}

/// A route's one path parameter, parsed once into its identifier type. A
/// value that is not a well-formed identifier is answered as the service
/// answered it before identifiers were parsed here: 404 for the kinds it
/// looked up by equality, 400 (with the same message) for the kinds it
/// parsed. Errors in the URL itself are axum's, as before.
#[derive(Debug)]
pub(crate) struct Path<T>(pub T);

/// An identifier that can come from a route's path.
pub(crate) trait PathId: Sized {
    /// Parses the decoded path segment.
    fn from_path(raw: String) -> Result<Self, CoreError>;
}

impl<T: PathId, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
        T::from_path(raw)
            .map(Self)
            .map_err(|e| ApiError(e).into_response())
    }
}

/// Free text the service looks up by equality (administrator names,
/// passkey credential ids): any segment is taken; the service answers.
impl PathId for String {
    fn from_path(raw: String) -> Result<Self, CoreError> {
        Ok(raw)
    }
}

/// Kinds the service looked up by equality: a malformed one names
/// nothing, so it is not found.
macro_rules! not_found_id {
    ($($name:ident => $message:literal),* $(,)?) => {$(
        impl PathId for $name {
            fn from_path(raw: String) -> Result<Self, CoreError> {
                $name::try_from(raw).map_err(|_: IdError| CoreError::NotFound($message.into()))
            }
        }
    )*};
}

not_found_id!(
    GroupId => "no such group",
    PolicyId => "no such policy",
    IncidentId => "no such incident",
    ApprovalId => "no such request",
);

/// Kinds the service parsed first: a malformed one is a bad request, with
/// the parser's message.
macro_rules! bad_request_id {
    ($($name:ident),* $(,)?) => {$(
        impl PathId for $name {
            fn from_path(raw: String) -> Result<Self, CoreError> {
                $name::try_from(raw).map_err(|e| CoreError::BadRequest(e.to_string()))
            }
        }
    )*};
}

bad_request_id!(DeviceKey, PersonId, TokenId, SessionId);

impl PathId for CommandUuid {
    fn from_path(raw: String) -> Result<Self, CoreError> {
        Self::try_from(raw).map_err(|e| CoreError::BadRequest(format!("command UUID: {e}")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    struct Named {
        #[serde(default)]
        name: String,
    }

    fn with_type(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
        h
    }

    #[test]
    fn an_empty_body_is_the_default_and_json_is_parsed() {
        let none = HeaderMap::new();
        assert_eq!(json_body::<Named>(&none, b" \n").unwrap(), Named::default());
        let json = with_type("application/json; charset=utf-8");
        assert_eq!(
            json_body::<Named>(&json, br#"{"name":"a"}"#).unwrap().name,
            "a"
        );
    }

    #[test]
    fn other_media_types_and_bad_json_are_refused() {
        let text = with_type("text/plain");
        assert!(matches!(
            json_body::<Named>(&text, b"{}"),
            Err(ApiError(CoreError::UnsupportedMediaType(_)))
        ));
        let Err(ApiError(CoreError::BadRequest(m))) = json_body::<Named>(&HeaderMap::new(), b"{")
        else {
            panic!("bad JSON accepted");
        };
        assert!(m.starts_with("invalid JSON body: "), "{m}");
    }

    /// A malformed path identifier is answered as the service answered it:
    /// not found for record kinds it looked up, a bad request (same text)
    /// for kinds it parsed.
    #[test]
    fn malformed_path_ids_keep_the_services_answer() {
        let bad = || "a b".to_owned();
        assert!(matches!(
            GroupId::from_path(bad()),
            Err(CoreError::NotFound(m)) if m == "no such group"
        ));
        assert!(matches!(
            ApprovalId::from_path(bad()),
            Err(CoreError::NotFound(m)) if m == "no such request"
        ));
        assert!(matches!(
            DeviceKey::from_path(bad()),
            Err(CoreError::BadRequest(m))
                if m == DeviceKey::parse("a b").unwrap_err().to_string()
        ));
        assert!(matches!(
            CommandUuid::from_path(bad()),
            Err(CoreError::BadRequest(m)) if m.starts_with("command UUID: ")
        ));
        assert_eq!(String::from_path(bad()).unwrap(), "a b");
        assert_eq!(
            PolicyId::from_path("0123456789abcdef01234567".into())
                .unwrap()
                .as_str(),
            "0123456789abcdef01234567"
        );
    }
}
