//! Second factors kept in their own tables: WebAuthn credentials and
//! recovery codes, the statements behind those methods of
//! [`mamori_ports::AdminStore`].

use mamori_domain::{AdminId, WebauthnCredential};
use mamori_ports::StoreResult;
use rusqlite::{params, Connection, Row};
use time::OffsetDateTime;

use super::{admin_id, u32_col};
use crate::{col, db, exec, from_opt_ts, from_ts, query_all, query_opt, ts};

fn webauthn_from_row(r: &Row<'_>) -> StoreResult<WebauthnCredential> {
    Ok(WebauthnCredential {
        id: col(r, "id")?,
        admin_id: admin_id(r, "admin_id")?,
        name: col(r, "name")?,
        data: col(r, "data")?,
        created_at: from_ts(col(r, "created_at")?)?,
        last_used_at: from_opt_ts(col(r, "last_used_at")?)?,
        usable_from: from_opt_ts(col(r, "usable_from")?)?,
    })
}

/// Stores a WebAuthn credential; false when its ID is taken.
pub(super) fn insert_webauthn(c: &Connection, w: &WebauthnCredential) -> StoreResult<bool> {
    let n = exec(
        c,
        "INSERT INTO admin_webauthn
             (id, admin_id, name, data, created_at, last_used_at, usable_from)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO NOTHING",
        params![
            w.id,
            w.admin_id.as_str(),
            w.name,
            w.data,
            ts(w.created_at),
            w.last_used_at.map(ts),
            w.usable_from.map(ts)
        ],
    )?;
    Ok(n == 1)
}

/// The WebAuthn credentials of an account, oldest first.
pub(super) fn webauthn_of(c: &Connection, id: &AdminId) -> StoreResult<Vec<WebauthnCredential>> {
    query_all(
        c,
        "SELECT * FROM admin_webauthn WHERE admin_id = ? ORDER BY created_at, id",
        [id.as_str()],
        webauthn_from_row,
    )
}

/// Makes a pending credential usable; false when it was not pending.
pub(super) fn activate_webauthn(
    c: &Connection,
    admin: &AdminId,
    credential_id: &str,
) -> StoreResult<bool> {
    let n = exec(
        c,
        "UPDATE admin_webauthn SET usable_from = NULL
         WHERE admin_id = ? AND id = ? AND usable_from IS NOT NULL",
        params![admin.as_str(), credential_id],
    )?;
    Ok(n == 1)
}

/// Stores a credential's new state after a use at `now`.
pub(super) fn update_webauthn(
    c: &Connection,
    credential_id: &str,
    data: &str,
    now: OffsetDateTime,
) -> StoreResult<()> {
    exec(
        c,
        "UPDATE admin_webauthn SET data = ?, last_used_at = ? WHERE id = ?",
        params![data, ts(now), credential_id],
    )?;
    Ok(())
}

/// Deletes one credential of `admin`; false when there was none.
pub(super) fn delete_webauthn(
    c: &Connection,
    admin: &AdminId,
    credential_id: &str,
) -> StoreResult<bool> {
    let n = exec(
        c,
        "DELETE FROM admin_webauthn WHERE admin_id = ? AND id = ?",
        params![admin.as_str(), credential_id],
    )?;
    Ok(n == 1)
}

/// Replaces every recovery code of an account, in one transaction.
pub(super) fn replace_recovery_codes(
    c: &mut Connection,
    id: &AdminId,
    hashes: &[String],
) -> StoreResult<()> {
    let tx = c.transaction().map_err(db)?;
    exec(
        &tx,
        "DELETE FROM admin_recovery_codes WHERE admin_id = ?",
        [id.as_str()],
    )?;
    for h in hashes {
        exec(
            &tx,
            "INSERT INTO admin_recovery_codes (admin_id, code_hash) VALUES (?, ?)",
            [id.as_str(), h.as_str()],
        )?;
    }
    tx.commit().map_err(db)
}

/// Marks an unused recovery code used; false when there was none.
pub(super) fn use_recovery_code(
    c: &Connection,
    id: &AdminId,
    hash: &str,
    now: OffsetDateTime,
) -> StoreResult<bool> {
    let n = exec(
        c,
        "UPDATE admin_recovery_codes SET used_at = ?
         WHERE admin_id = ? AND code_hash = ? AND used_at IS NULL",
        params![ts(now), id.as_str(), hash],
    )?;
    Ok(n == 1)
}

/// How many unused recovery codes an account has.
pub(super) fn recovery_codes_left(c: &Connection, id: &AdminId) -> StoreResult<u32> {
    query_opt(
        c,
        "SELECT COUNT(*) AS n FROM admin_recovery_codes
         WHERE admin_id = ? AND used_at IS NULL",
        [id.as_str()],
        |r| u32_col(r, "n"),
    )
    .map(Option::unwrap_or_default)
}
