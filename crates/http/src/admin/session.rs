//! Login, second factor, sessions, step-up and factor enrollment.

use super::{r, Route};
use crate::auth::Access::{AnySession, FullSession, Public, SecondFactor};
use crate::auth::{clear_cookie, set_cookie, SessionSecret};
use crate::error::ApiError;
use crate::extract::{Body, Client, Path};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::{Extension, Json};
use mamori_core::access::AdminActor;
use mamori_core::admin::{LoginOutcome, SessionCookie};
use mamori_core::{CoreError, Services};
use mamori_domain::{AdminSession, Permission, Role, SessionId, SessionStage, WebauthnCredential};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CodeBody {
    #[serde(default)]
    code: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StepUpBody {
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CredentialBody {
    #[serde(default)]
    credential: serde_json::Value,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordBody {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
}

/// A login step's answer body: where the login stands, and what the step
/// adds (nothing, new recovery codes, a registered passkey).
#[derive(Debug, Serialize)]
struct LoggedIn<E> {
    #[serde(flatten)]
    outcome: LoginOutcome,
    #[serde(flatten)]
    extra: E,
}

/// Recovery codes, shown once.
#[derive(Debug, Serialize)]
struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

/// A passkey just registered; `activation` says when it becomes usable if
/// it was registered with a recovery code.
#[derive(Debug, Serialize)]
struct Registered<A> {
    credential: WebauthnCredential,
    recovery_codes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    activation: Option<A>,
}

/// Who the caller is and where their login stands.
#[derive(Debug, Serialize)]
struct Whoami<'a> {
    name: &'a str,
    /// Only once the session is full: a password alone does not tell
    /// whether the account is an owner's.
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
    permissions: Vec<&'static str>,
    session: AdminSession,
    #[serde(flatten)]
    outcome: LoginOutcome,
}

/// The caller's live sessions, and which one this is.
#[derive(Debug, Serialize)]
struct SessionList {
    sessions: Vec<AdminSession>,
    current: Option<SessionId>,
}

/// How many sessions were ended.
#[derive(Debug, Serialize)]
struct RevokedSessions {
    revoked: u64,
}

/// A login step's answer: the outcome, and the new session cookie.
fn logged_in<E: Serialize>(
    s: &Services,
    outcome: LoginOutcome,
    cookie: &SessionCookie,
    extra: E,
) -> Response {
    let mut resp = (StatusCode::OK, Json(LoggedIn { outcome, extra })).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(cookie, s.clock.now()));
    resp
}

pub(super) async fn login(
    State(s): State<Services>,
    Client(ctx): Client,
    Body(req): Body<LoginBody>,
) -> Result<Response, ApiError> {
    let (outcome, cookie) = s.login(&req.name, &req.password, &ctx).await?;
    Ok(logged_in(&s, outcome, &cookie, ()))
}

pub(super) async fn login_totp(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(ctx): Client,
    Body(req): Body<CodeBody>,
) -> Result<Response, ApiError> {
    let (outcome, cookie) = s.login_totp(&actor, &req.code, &ctx).await?;
    Ok(logged_in(&s, outcome, &cookie, ()))
}

pub(super) async fn login_recovery(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(ctx): Client,
    Body(req): Body<CodeBody>,
) -> Result<Response, ApiError> {
    let (outcome, cookie) = s.login_recovery(&actor, &req.code, &ctx).await?;
    Ok(logged_in(&s, outcome, &cookie, ()))
}

pub(super) async fn webauthn_login_start(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
) -> Result<Response, ApiError> {
    Ok(Json(s.webauthn_login_start(&actor).await?).into_response())
}

pub(super) async fn webauthn_login_finish(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(ctx): Client,
    Body(req): Body<CredentialBody>,
) -> Result<Response, ApiError> {
    let (outcome, cookie) = s
        .webauthn_login_finish(&actor, &req.credential, &ctx)
        .await?;
    Ok(logged_in(&s, outcome, &cookie, ()))
}

pub(super) async fn whoami(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    secret: Option<Extension<SessionSecret>>,
) -> Result<Response, ApiError> {
    let admin = &actor.admin;
    let session = match &actor.via {
        mamori_core::access::Via::Session(sess) => sess.clone(),
        mamori_core::access::Via::Token(_) => {
            return Err(
                CoreError::Forbidden("this route is for interactive sessions".into()).into(),
            )
        }
    };
    let csrf = secret
        .map(|Extension(SessionSecret(sec))| s.auth.csrf_token(&sec))
        .unwrap_or_default();
    let outcome = s.login_outcome(admin, &session, &csrf).await?;
    let permissions: Vec<&str> = if session.stage == SessionStage::Full {
        Permission::ALL
            .iter()
            .filter(|p| actor.allows(**p))
            .map(|p| p.as_str())
            .collect()
    } else {
        Vec::new()
    };
    Ok(Json(Whoami {
        name: &admin.name,
        role: (session.stage == SessionStage::Full).then_some(admin.role),
        permissions,
        session,
        outcome,
    })
    .into_response())
}

pub(super) async fn logout(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(ctx): Client,
) -> Result<Response, ApiError> {
    s.logout(&actor, &ctx).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, clear_cookie());
    Ok(resp)
}

pub(super) async fn change_password(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(ctx): Client,
    Body(req): Body<PasswordBody>,
) -> Result<Response, ApiError> {
    match s
        .change_password(&actor, &req.current, &req.new, &ctx)
        .await?
    {
        Some((outcome, cookie)) => Ok(logged_in(&s, outcome, &cookie, ())),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

pub(super) async fn totp_enroll(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
) -> Result<Response, ApiError> {
    Ok(Json(s.totp_enroll_start(&actor).await?).into_response())
}

pub(super) async fn totp_confirm(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(ctx): Client,
    Body(req): Body<CodeBody>,
) -> Result<Response, ApiError> {
    let enrolled = s.totp_enroll_confirm(&actor, &req.code, &ctx).await?;
    let extra = RecoveryCodes {
        recovery_codes: enrolled.recovery_codes,
    };
    match enrolled.session {
        Some((outcome, cookie)) => Ok(logged_in(&s, outcome, &cookie, extra)),
        None => Ok(Json(extra).into_response()),
    }
}

pub(super) async fn webauthn_register_start(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
) -> Result<Response, ApiError> {
    Ok(Json(s.webauthn_register_start(&actor).await?).into_response())
}

pub(super) async fn webauthn_register_finish(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(ctx): Client,
    Body(req): Body<CredentialBody>,
) -> Result<Response, ApiError> {
    let name = req.name.unwrap_or_else(|| "passkey".into());
    let (cred, enrolled) = s
        .webauthn_register_finish(&actor, &name, &req.credential, &ctx)
        .await?;
    let extra = Registered {
        credential: cred,
        recovery_codes: enrolled.recovery_codes,
        activation: enrolled.activation,
    };
    if extra.activation.is_some() {
        // Registered with a recovery code: waiting; the session has ended.
        return Ok((StatusCode::ACCEPTED, Json(extra)).into_response());
    }
    match enrolled.session {
        Some((outcome, cookie)) => Ok(logged_in(&s, outcome, &cookie, extra)),
        None => Ok((StatusCode::CREATED, Json(extra)).into_response()),
    }
}

pub(super) async fn step_up(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(ctx): Client,
    Body(req): Body<StepUpBody>,
) -> Result<Response, ApiError> {
    s.step_up_totp(&actor, &req.password, &req.code, &ctx)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn step_up_webauthn_start(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
) -> Result<Response, ApiError> {
    Ok(Json(s.step_up_webauthn_start(&actor).await?).into_response())
}

pub(super) async fn step_up_webauthn_finish(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(ctx): Client,
    Body(req): Body<CredentialBody>,
) -> Result<Response, ApiError> {
    s.step_up_webauthn_finish(&actor, &req.credential, &ctx)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn list_sessions(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
) -> Result<Response, ApiError> {
    let current = match &actor.via {
        mamori_core::access::Via::Session(sess) => Some(sess.id.clone()),
        mamori_core::access::Via::Token(_) => None,
    };
    let sessions = s.own_sessions(&actor).await?;
    Ok(Json(SessionList { sessions, current }).into_response())
}

pub(super) async fn revoke_session(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(ctx): Client,
    Path(id): Path<SessionId>,
) -> Result<Response, ApiError> {
    s.revoke_own_session(&actor, id.as_str(), &ctx).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn revoke_all_sessions(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(ctx): Client,
) -> Result<Response, ApiError> {
    let n = s.revoke_own_sessions(&actor, &ctx).await?;
    let mut resp = Json(RevokedSessions { revoked: n }).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, clear_cookie());
    Ok(resp)
}

pub(super) async fn recovery_codes(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(ctx): Client,
) -> Result<Response, ApiError> {
    let codes = s.regenerate_recovery_codes(&actor, &ctx).await?;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    })
    .into_response())
}

pub(super) async fn factors(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
) -> Result<Response, ApiError> {
    Ok(Json(s.own_factors(&actor).await?).into_response())
}

pub(super) async fn remove_totp(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(ctx): Client,
) -> Result<Response, ApiError> {
    s.remove_totp(&actor, &ctx).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn remove_webauthn(
    State(s): State<Services>,
    Extension(actor): Extension<AdminActor>,
    Client(ctx): Client,
    Path(credential): Path<String>,
) -> Result<Response, ApiError> {
    s.remove_webauthn(&actor, &ctx, &credential).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// This area's admin routes (a part of [`super::table`]), by the stage
/// the caller's session must be at.
pub(super) fn routes() -> Vec<Route> {
    let mut all = login_routes();
    all.extend(setup_routes());
    all.extend(full_session_routes());
    all
}

/// Logging in: the password, then a second factor.
fn login_routes() -> Vec<Route> {
    vec![
        r("POST", "/api/v1/auth/login", Public, routing::post(login)),
        r(
            "POST",
            "/api/v1/auth/totp",
            SecondFactor,
            routing::post(login_totp),
        ),
        r(
            "POST",
            "/api/v1/auth/recovery",
            SecondFactor,
            routing::post(login_recovery),
        ),
        r(
            "POST",
            "/api/v1/auth/webauthn/login/start",
            SecondFactor,
            routing::post(webauthn_login_start),
        ),
        r(
            "POST",
            "/api/v1/auth/webauthn/login/finish",
            SecondFactor,
            routing::post(webauthn_login_finish),
        ),
    ]
}

/// Any session, however far its login got: who am I, log out, and
/// finishing the account's setup (password, factors).
fn setup_routes() -> Vec<Route> {
    vec![
        r(
            "GET",
            "/api/v1/auth/session",
            AnySession,
            routing::get(whoami),
        ),
        r(
            "POST",
            "/api/v1/auth/logout",
            AnySession,
            routing::post(logout),
        ),
        r(
            "POST",
            "/api/v1/auth/password",
            AnySession,
            routing::post(change_password),
        ),
        r(
            "POST",
            "/api/v1/auth/totp/enroll",
            AnySession,
            routing::post(totp_enroll),
        ),
        r(
            "POST",
            "/api/v1/auth/totp/confirm",
            AnySession,
            routing::post(totp_confirm),
        ),
        r(
            "POST",
            "/api/v1/auth/webauthn/register/start",
            AnySession,
            routing::post(webauthn_register_start),
        ),
        r(
            "POST",
            "/api/v1/auth/webauthn/register/finish",
            AnySession,
            routing::post(webauthn_register_finish),
        ),
    ]
}

/// A full session: step-up, the session's own sessions and factors.
fn full_session_routes() -> Vec<Route> {
    vec![
        r(
            "POST",
            "/api/v1/auth/step-up",
            FullSession,
            routing::post(step_up),
        ),
        r(
            "POST",
            "/api/v1/auth/step-up/webauthn/start",
            FullSession,
            routing::post(step_up_webauthn_start),
        ),
        r(
            "POST",
            "/api/v1/auth/step-up/webauthn/finish",
            FullSession,
            routing::post(step_up_webauthn_finish),
        ),
        r(
            "GET",
            "/api/v1/auth/sessions",
            FullSession,
            routing::get(list_sessions),
        ),
        r(
            "DELETE",
            "/api/v1/auth/sessions/{id}",
            FullSession,
            routing::delete(revoke_session),
        ),
        r(
            "POST",
            "/api/v1/auth/sessions/revoke-all",
            FullSession,
            routing::post(revoke_all_sessions),
        ),
        r(
            "GET",
            "/api/v1/auth/factors",
            FullSession,
            routing::get(factors),
        ),
        r(
            "DELETE",
            "/api/v1/auth/totp",
            FullSession,
            routing::delete(remove_totp),
        ),
        r(
            "DELETE",
            "/api/v1/auth/webauthn/{id}",
            FullSession,
            routing::delete(remove_webauthn),
        ),
        r(
            "POST",
            "/api/v1/auth/recovery-codes",
            FullSession,
            routing::post(recovery_codes),
        ),
    ]
}
