//! Administrators' server-side sessions: the row mapping and the statements
//! behind the session methods of [`mamori_ports::AdminStore`].

use mamori_domain::{AdminId, AdminSession, SessionId, SessionStage};
use mamori_ports::{StoreError, StoreResult};
use rusqlite::{params, Connection, Row};
use time::OffsetDateTime;

use super::{admin_id, err};
use crate::{col, exec, from_opt_ts, from_ts, query_all, query_opt, ts};

fn session_id(r: &Row<'_>) -> StoreResult<SessionId> {
    let v: String = col(r, "id")?;
    SessionId::parse(&v).map_err(err)
}

fn session_from_row(r: &Row<'_>) -> StoreResult<AdminSession> {
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
pub(super) fn insert(c: &Connection, s: &AdminSession, secret_hash: &str) -> StoreResult<()> {
    exec(
        c,
        "INSERT INTO admin_sessions
         (id, secret_hash, admin_id, stage, created_at, last_seen_at, expires_at,
          source, client_hash, step_up_at, revoked_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            s.id.as_str(),
            secret_hash,
            s.admin_id.as_str(),
            s.stage.as_str(),
            ts(s.created_at),
            ts(s.last_seen_at),
            ts(s.expires_at),
            s.source,
            s.client_hash,
            s.step_up_at.map(ts),
            s.revoked_at.map(ts)
        ],
    )?;
    Ok(())
}

/// The session whose secret hashes to `secret_hash`, revoked or not.
pub(super) fn by_secret(c: &Connection, secret_hash: &str) -> StoreResult<Option<AdminSession>> {
    query_opt(
        c,
        "SELECT * FROM admin_sessions WHERE secret_hash = ?",
        [secret_hash],
        session_from_row,
    )
}

/// Records that the session was used at `now`.
pub(super) fn touch(c: &Connection, id: &SessionId, now: OffsetDateTime) -> StoreResult<()> {
    exec(
        c,
        "UPDATE admin_sessions SET last_seen_at = ? WHERE id = ?",
        params![ts(now), id.as_str()],
    )?;
    Ok(())
}

/// Records a step-up (re-authentication) at `now`.
pub(super) fn set_step_up(c: &Connection, id: &SessionId, now: OffsetDateTime) -> StoreResult<()> {
    exec(
        c,
        "UPDATE admin_sessions SET step_up_at = ? WHERE id = ?",
        params![ts(now), id.as_str()],
    )?;
    Ok(())
}

/// Revokes one live session of `admin`; false when there was none.
pub(super) fn revoke(
    c: &Connection,
    admin: &AdminId,
    id: &SessionId,
    now: OffsetDateTime,
) -> StoreResult<bool> {
    let n = exec(
        c,
        "UPDATE admin_sessions SET revoked_at = ?
         WHERE id = ? AND admin_id = ? AND revoked_at IS NULL",
        params![ts(now), id.as_str(), admin.as_str()],
    )?;
    Ok(n == 1)
}

/// Revokes every live session of `admin` but `keep`; returns how many.
pub(super) fn revoke_all(
    c: &Connection,
    admin: &AdminId,
    keep: Option<&SessionId>,
    now: OffsetDateTime,
) -> StoreResult<u64> {
    // Session IDs are never empty, so "" keeps nothing.
    let keep = keep.map_or("", SessionId::as_str);
    let n = exec(
        c,
        "UPDATE admin_sessions SET revoked_at = ?
         WHERE admin_id = ? AND revoked_at IS NULL AND id <> ?",
        params![ts(now), admin.as_str(), keep],
    )?;
    Ok(n as u64)
}

/// The live (unrevoked, unexpired) sessions of `admin`, newest first.
pub(super) fn list_live(
    c: &Connection,
    admin: &AdminId,
    now: OffsetDateTime,
) -> StoreResult<Vec<AdminSession>> {
    query_all(
        c,
        "SELECT * FROM admin_sessions
         WHERE admin_id = ? AND revoked_at IS NULL AND expires_at > ?
         ORDER BY created_at DESC, id",
        params![admin.as_str(), ts(now)],
        session_from_row,
    )
}
