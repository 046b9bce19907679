//! Administrator accounts, API tokens and the audit log.

use super::{r, AwaitingApproval, Route};
use crate::auth::Access;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::{Body, Client, Path};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::Json;
use mamori_core::access::permit::{AccountsManage, AuditRead, TokensOwn};
use mamori_core::admin::tokens::TokenRequest;
use mamori_core::admin::AdminSummary;
use mamori_core::audit::SinkStatus;
use mamori_core::{CoreError, Services};
use mamori_domain::Permission as P;
use mamori_domain::{AdminAccount, ApiToken, AuditRecord, TokenId};
use serde::{Deserialize, Serialize};

/// Every administrator account.
#[derive(Debug, Serialize)]
struct AdminList {
    admins: Vec<AdminSummary>,
}

/// What disabling or resetting an account ended.
#[derive(Debug, Serialize)]
struct Revoked {
    sessions_revoked: u64,
    tokens_revoked: u64,
}

/// A reset account: its new one-time password, shown once.
#[derive(Debug, Serialize)]
struct ResetDone {
    admin: AdminAccount,
    one_time_password: String,
    #[serde(flatten)]
    revoked: Revoked,
}

/// API tokens.
#[derive(Debug, Serialize)]
struct TokenList {
    tokens: Vec<ApiToken>,
}

/// A new API token and its secret, shown once.
#[derive(Debug, Serialize)]
struct NewTokenAnswer {
    token: ApiToken,
    secret: String,
}

/// A page of the audit log.
#[derive(Debug, Serialize)]
struct AuditPageAnswer {
    records: Vec<AuditRecord>,
    next_after: Option<i64>,
}

/// Where each audit sink stands.
#[derive(Debug, Serialize)]
struct SinkList {
    sinks: Vec<SinkStatus>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAdminBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RoleBody {
    #[serde(default)]
    role: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReasonBody {
    #[serde(default)]
    reason: Option<String>,
}

pub(super) async fn list(
    State(s): State<Services>,
    Auth(by): Auth<AccountsManage>,
) -> Result<Response, ApiError> {
    let admins = s.admin_inventory(&by).await?;
    Ok(Json(AdminList { admins }).into_response())
}

pub(super) async fn create(
    State(s): State<Services>,
    Auth(by): Auth<AccountsManage>,
    Client(ctx): Client,
    Body(req): Body<NewAdminBody>,
) -> Result<Response, ApiError> {
    Ok(
        match s.create_admin(&by, &ctx, &req.name, &req.role).await? {
            mamori_core::admin::Created::Now(created) => {
                (StatusCode::CREATED, Json(created)).into_response()
            }
            mamori_core::admin::Created::AwaitingApproval(a) => AwaitingApproval::accepted(&a),
        },
    )
}

pub(super) async fn set_role(
    State(s): State<Services>,
    Auth(by): Auth<AccountsManage>,
    Client(ctx): Client,
    Path(name): Path<String>,
    Body(req): Body<RoleBody>,
) -> Result<Response, ApiError> {
    Ok(match s.set_admin_role(&by, &ctx, &name, &req.role).await? {
        mamori_core::admin::RoleChange::Changed(admin) => Json(admin).into_response(),
        mamori_core::admin::RoleChange::AwaitingApproval(a) => AwaitingApproval::accepted(&a),
    })
}

pub(super) async fn disable(
    State(s): State<Services>,
    Auth(by): Auth<AccountsManage>,
    Client(ctx): Client,
    Path(name): Path<String>,
    Body(req): Body<ReasonBody>,
) -> Result<Response, ApiError> {
    let reason = req.reason.unwrap_or_else(|| "disabled by an owner".into());
    let (sessions_revoked, tokens_revoked) = s.disable_admin(&by, &ctx, &name, &reason).await?;
    Ok(Json(Revoked {
        sessions_revoked,
        tokens_revoked,
    })
    .into_response())
}

pub(super) async fn enable(
    State(s): State<Services>,
    Auth(by): Auth<AccountsManage>,
    Client(ctx): Client,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(match s.enable_admin(&by, &ctx, &name).await? {
        mamori_core::admin::Enabled::Now => StatusCode::NO_CONTENT.into_response(),
        mamori_core::admin::Enabled::AwaitingApproval(a) => AwaitingApproval::accepted(&a),
    })
}

pub(super) async fn reset(
    State(s): State<Services>,
    Auth(by): Auth<AccountsManage>,
    Client(ctx): Client,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(match s.reset_admin(&by, &ctx, &name).await? {
        mamori_core::admin::Reset::Now(created, (sessions_revoked, tokens_revoked)) => {
            Json(ResetDone {
                admin: created.admin,
                one_time_password: created.one_time_password,
                revoked: Revoked {
                    sessions_revoked,
                    tokens_revoked,
                },
            })
            .into_response()
        }
        mamori_core::admin::Reset::AwaitingApproval(a) => AwaitingApproval::accepted(&a),
    })
}

pub(super) async fn unlock(
    State(s): State<Services>,
    Auth(by): Auth<AccountsManage>,
    Client(ctx): Client,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    s.unlock_admin(&by, &ctx, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct AllFlag {
    all: Option<bool>,
}

pub(super) async fn list_tokens(
    State(s): State<Services>,
    Auth(by): Auth<TokensOwn>,
    Query(flag): Query<AllFlag>,
) -> Result<Response, ApiError> {
    let tokens = s.list_tokens(&by, flag.all.unwrap_or(false)).await?;
    Ok(Json(TokenList { tokens }).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewToken {
    #[serde(default)]
    name: String,
    role: Option<String>,
    scope: Option<Vec<String>>,
    ttl_days: Option<u32>,
}

pub(super) async fn create_token(
    State(s): State<Services>,
    Auth(by): Auth<TokensOwn>,
    Client(ctx): Client,
    Body(req): Body<NewToken>,
) -> Result<Response, ApiError> {
    let (token, secret) = s
        .create_token(
            &by,
            &ctx,
            by.actor().account().ok_or(CoreError::Unauthorized)?,
            &TokenRequest {
                name: req.name,
                role: req.role,
                scope: req.scope,
                ttl_days: req.ttl_days,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(NewTokenAnswer { token, secret })).into_response())
}

pub(super) async fn revoke_token(
    State(s): State<Services>,
    Auth(by): Auth<TokensOwn>,
    Client(ctx): Client,
    Path(id): Path<TokenId>,
) -> Result<Response, ApiError> {
    s.revoke_token(&by, &ctx, id.as_str()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct AuditPage {
    after: Option<i64>,
    limit: Option<u32>,
}

pub(super) async fn audit(
    State(s): State<Services>,
    Auth(by): Auth<AuditRead>,
    Query(page): Query<AuditPage>,
) -> Result<Response, ApiError> {
    let limit = page.limit.unwrap_or(100).clamp(1, 1000);
    let records = s.audit_page(&by, page.after.unwrap_or(0), limit).await?;
    let next = (records.len() == limit as usize)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(Json(AuditPageAnswer {
        records,
        next_after: next,
    })
    .into_response())
}

/// Where each audit sink stands (delivered, behind, failing since).
pub(super) async fn audit_sinks(
    State(s): State<Services>,
    Auth(by): Auth<AuditRead>,
) -> Result<Response, ApiError> {
    let sinks = s.audit_sink_status(&by).await?;
    Ok(Json(SinkList { sinks }).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct ScopeQuery {
    from: Option<String>,
    to: Option<String>,
    actor: Option<String>,
    token: Option<String>,
    network: Option<String>,
}

fn rfc3339(v: Option<&str>, what: &str) -> Result<Option<time::OffsetDateTime>, ApiError> {
    v.map(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).map_err(
            |_| {
                ApiError(CoreError::BadRequest(format!(
                    "{what} must be an RFC 3339 time"
                )))
            },
        )
    })
    .transpose()
}

pub(super) async fn breach_scope(
    State(s): State<Services>,
    Auth(by): Auth<AuditRead>,
    Client(ctx): Client,
    Query(q): Query<ScopeQuery>,
) -> Result<Response, ApiError> {
    let to = rfc3339(q.to.as_deref(), "to")?
        .unwrap_or_else(|| s.clock.now() + time::Duration::seconds(1));
    let from = rfc3339(q.from.as_deref(), "from")?.unwrap_or_else(|| to - time::Duration::days(30));
    let network = q
        .network
        .as_deref()
        .map(|n| {
            mamori_domain::breach::Network::parse(n).ok_or_else(|| {
                ApiError(CoreError::BadRequest(
                    "network must be an address or a network in CIDR notation".into(),
                ))
            })
        })
        .transpose()?;
    let filter = mamori_domain::breach::ScopeFilter {
        actor: q.actor.filter(|a| !a.is_empty()),
        token: q.token.filter(|t| !t.is_empty()),
        network,
    };
    let report = s.breach_scope(&by, &ctx, from, to, &filter).await?;
    Ok(Json(report).into_response())
}

/// This area's admin routes (a part of [`super::table`]).
pub(super) fn routes() -> Vec<Route> {
    let mut all = account_routes();
    all.extend(token_and_audit_routes());
    all
}

/// Administrator accounts.
fn account_routes() -> Vec<Route> {
    let perm = Access::Permission;
    vec![
        r(
            "GET",
            "/api/v1/admins",
            perm(P::AccountsManage),
            routing::get(list),
        ),
        r(
            "POST",
            "/api/v1/admins",
            perm(P::AccountsManage),
            routing::post(create),
        ),
        r(
            "PUT",
            "/api/v1/admins/{name}/role",
            perm(P::AccountsManage),
            routing::put(set_role),
        ),
        r(
            "POST",
            "/api/v1/admins/{name}/disable",
            perm(P::AccountsManage),
            routing::post(disable),
        ),
        r(
            "POST",
            "/api/v1/admins/{name}/enable",
            perm(P::AccountsManage),
            routing::post(enable),
        ),
        r(
            "POST",
            "/api/v1/admins/{name}/reset",
            perm(P::AccountsManage),
            routing::post(reset),
        ),
        r(
            "POST",
            "/api/v1/admins/{name}/unlock",
            perm(P::AccountsManage),
            routing::post(unlock),
        ),
    ]
}

/// API tokens and the audit log.
fn token_and_audit_routes() -> Vec<Route> {
    let perm = Access::Permission;
    vec![
        r(
            "GET",
            "/api/v1/tokens",
            perm(P::TokensOwn),
            routing::get(list_tokens),
        ),
        r(
            "POST",
            "/api/v1/tokens",
            perm(P::TokensOwn),
            routing::post(create_token),
        ),
        r(
            "DELETE",
            "/api/v1/tokens/{id}",
            perm(P::TokensOwn),
            routing::delete(revoke_token),
        ),
        r(
            "GET",
            "/api/v1/audit",
            perm(P::AuditRead),
            routing::get(audit),
        ),
        r(
            "GET",
            "/api/v1/audit/sinks",
            perm(P::AuditRead),
            routing::get(audit_sinks),
        ),
        r(
            "GET",
            "/api/v1/reports/breach-scope",
            perm(P::AuditRead),
            routing::get(breach_scope),
        ),
    ]
}
