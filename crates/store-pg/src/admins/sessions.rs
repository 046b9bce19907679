//! Administrators' server-side sessions: the row mapping and the statements
//! behind the session methods of [`mamori_ports::AdminStore`].

use deadpool_postgres::GenericClient;
use mamori_domain::{AdminId, AdminSession, SessionId, SessionStage};
use mamori_ports::{StoreError, StoreResult};
use time::OffsetDateTime;
use tokio_postgres::Row;

use super::{admin_id, err};
use crate::{col, exec, from_opt_ts, from_ts, query_all, query_opt, ts};

fn session_id(r: &Row) -> StoreResult<SessionId> {
    let v: String = col(r, "id")?;
    SessionId::parse(&v).map_err(err)
}

fn session_from_row(r: &Row) -> StoreResult<AdminSession> {
    let stage: String = col(r, "stage")?;
    Ok(AdminSession {
        id: session_id(r)?,
        admin_id: admin_id(r, "admin_id")?,
        stage: SessionStage::parse(&stage)
            .ok_or_else(|| StoreError::new(format!("unknown session stage {stage:?}")))?,
        created_at: from_ts(col(r, "created_at")?)?,
        last_seen_at: from_ts(col(r, "last_seen_at")?)?,
        expires_at: from_ts(col(r, "expires_at")?)?,
        source: col(r, "source")?,
        client_hash: col(r, "client_hash")?,
        step_up_at: from_opt_ts(col(r, "step_up_at")?)?,
        revoked_at: from_opt_ts(col(r, "revoked_at")?)?,
    })
}

/// Stores a new session under the hash of its secret.
pub(super) async fn insert(
    c: &impl GenericClient,
    s: &AdminSession,
    secret_hash: &str,
) -> StoreResult<()> {
    exec(
        c,
        "INSERT INTO admin_sessions
         (id, secret_hash, admin_id, stage, created_at, last_seen_at, expires_at,
          source, client_hash, step_up_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &s.id.as_str(),
            &secret_hash,
            &s.admin_id.as_str(),
            &s.stage.as_str(),
            &ts(s.created_at),
            &ts(s.last_seen_at),
            &ts(s.expires_at),
            &s.source,
            &s.client_hash,
            &s.step_up_at.map(ts),
            &s.revoked_at.map(ts),
        ],
    )
    .await?;
    Ok(())
}

/// The session whose secret hashes to `secret_hash`, revoked or not.
pub(super) async fn by_secret(
    c: &impl GenericClient,
    secret_hash: &str,
) -> StoreResult<Option<AdminSession>> {
    query_opt(
        c,
        "SELECT * FROM admin_sessions WHERE secret_hash = $1",
        &[&secret_hash],
    )
    .await?
    .as_ref()
    .map(session_from_row)
    .transpose()
}

/// Records that the session was used at `now`.
pub(super) async fn touch(
    c: &impl GenericClient,
    id: &SessionId,
    now: OffsetDateTime,
) -> StoreResult<()> {
    exec(
        c,
        "UPDATE admin_sessions SET last_seen_at = $1 WHERE id = $2",
        &[&ts(now), &id.as_str()],
    )
    .await?;
    Ok(())
}

/// Records a step-up (re-authentication) at `now`.
pub(super) async fn set_step_up(
    c: &impl GenericClient,
    id: &SessionId,
    now: OffsetDateTime,
) -> StoreResult<()> {
    exec(
        c,
        "UPDATE admin_sessions SET step_up_at = $1 WHERE id = $2",
        &[&ts(now), &id.as_str()],
    )
    .await?;
    Ok(())
}

/// Revokes one live session of `admin`; false when there was none.
pub(super) async fn revoke(
    c: &impl GenericClient,
    admin: &AdminId,
    id: &SessionId,
    now: OffsetDateTime,
) -> StoreResult<bool> {
    let n = exec(
        c,
        "UPDATE admin_sessions SET revoked_at = $1
         WHERE id = $2 AND admin_id = $3 AND revoked_at IS NULL",
        &[&ts(now), &id.as_str(), &admin.as_str()],
    )
    .await?;
    Ok(n == 1)
}

/// Revokes every live session of `admin` but `keep`; returns how many.
pub(super) async fn revoke_all(
    c: &impl GenericClient,
    admin: &AdminId,
    keep: Option<&SessionId>,
    now: OffsetDateTime,
) -> StoreResult<u64> {
    // Session IDs are never empty, so "" keeps nothing.
    let keep = keep.map_or("", SessionId::as_str);
    exec(
        c,
        "UPDATE admin_sessions SET revoked_at = $1
         WHERE admin_id = $2 AND revoked_at IS NULL AND id <> $3",
        &[&ts(now), &admin.as_str(), &keep],
    )
    .await
}

/// The live (unrevoked, unexpired) sessions of `admin`, newest first.
pub(super) async fn list_live(
    c: &impl GenericClient,
    admin: &AdminId,
    now: OffsetDateTime,
) -> StoreResult<Vec<AdminSession>> {
    query_all(
        c,
        "SELECT * FROM admin_sessions
         WHERE admin_id = $1 AND revoked_at IS NULL AND expires_at > $2
         ORDER BY created_at DESC, id",
        &[&admin.as_str(), &ts(now)],
    )
    .await?
    .iter()
    .map(session_from_row)
    .collect()
}
