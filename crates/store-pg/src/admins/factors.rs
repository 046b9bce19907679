//! Second factors kept in their own tables: WebAuthn credentials and
//! recovery codes, the statements behind those methods of
//! [`mamori_ports::AdminStore`].

use deadpool_postgres::{GenericClient, Object};
use mamori_domain::{AdminId, WebauthnCredential};
use mamori_ports::StoreResult;
use time::OffsetDateTime;
use tokio_postgres::Row;

use super::{admin_id, u32_col};
use crate::{col, db, exec, from_opt_ts, from_ts, lock, query_all, query_opt, ts, Area};

fn webauthn_from_row(r: &Row) -> StoreResult<WebauthnCredential> {
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

/// Stores a WebAuthn credential; false when its ID is taken (atomic: of
/// two servers registering the same ID, one gets false).
pub(super) async fn insert_webauthn(
    c: &impl GenericClient,
    w: &WebauthnCredential,
) -> StoreResult<bool> {
    let n = exec(
        c,
        "INSERT INTO admin_webauthn
             (id, admin_id, name, data, created_at, last_used_at, usable_from)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO NOTHING",
        &[
            &w.id,
            &w.admin_id.as_str(),
            &w.name,
            &w.data,
            &ts(w.created_at),
            &w.last_used_at.map(ts),
            &w.usable_from.map(ts),
        ],
    )
    .await?;
    Ok(n == 1)
}

/// The WebAuthn credentials of an account, oldest first.
pub(super) async fn webauthn_of(
    c: &impl GenericClient,
    id: &AdminId,
) -> StoreResult<Vec<WebauthnCredential>> {
    query_all(
        c,
        "SELECT * FROM admin_webauthn WHERE admin_id = $1 ORDER BY created_at, id",
        &[&id.as_str()],
    )
    .await?
    .iter()
    .map(webauthn_from_row)
    .collect()
}

/// Makes a pending credential usable; false when it was not pending.
pub(super) async fn activate_webauthn(
    c: &impl GenericClient,
    admin: &AdminId,
    credential_id: &str,
) -> StoreResult<bool> {
    let n = exec(
        c,
        "UPDATE admin_webauthn SET usable_from = NULL
         WHERE admin_id = $1 AND id = $2 AND usable_from IS NOT NULL",
        &[&admin.as_str(), &credential_id],
    )
    .await?;
    Ok(n == 1)
}

/// Stores a credential's new state after a use at `now`.
pub(super) async fn update_webauthn(
    c: &impl GenericClient,
    credential_id: &str,
    data: &str,
    now: OffsetDateTime,
) -> StoreResult<()> {
    exec(
        c,
        "UPDATE admin_webauthn SET data = $1, last_used_at = $2 WHERE id = $3",
        &[&data, &ts(now), &credential_id],
    )
    .await?;
    Ok(())
}

/// Deletes one credential of `admin`; false when there was none.
pub(super) async fn delete_webauthn(
    c: &impl GenericClient,
    admin: &AdminId,
    credential_id: &str,
) -> StoreResult<bool> {
    let n = exec(
        c,
        "DELETE FROM admin_webauthn WHERE admin_id = $1 AND id = $2",
        &[&admin.as_str(), &credential_id],
    )
    .await?;
    Ok(n == 1)
}

/// Replaces every recovery code of an account, in one transaction.
///
/// Takes the lock of [`Area::Admins`]: two replacements at once would
/// otherwise each delete only the codes committed before them and both
/// insert theirs, leaving both sets usable.
pub(super) async fn replace_recovery_codes(
    c: &mut Object,
    id: &AdminId,
    hashes: &[String],
) -> StoreResult<()> {
    let tx = c.transaction().await.map_err(db)?;
    lock(&tx, &[Area::Admins]).await?;
    exec(
        &tx,
        "DELETE FROM admin_recovery_codes WHERE admin_id = $1",
        &[&id.as_str()],
    )
    .await?;
    // One statement for every code (a handful; one array parameter).
    exec(
        &tx,
        "INSERT INTO admin_recovery_codes (admin_id, code_hash)
         SELECT $1::text, h FROM UNNEST($2::text[]) AS h",
        &[&id.as_str(), &hashes],
    )
    .await?;
    tx.commit().await.map_err(db)
}

/// Marks an unused recovery code used; false when there was none (atomic:
/// a code spent twice at once is spent once).
pub(super) async fn use_recovery_code(
    c: &impl GenericClient,
    id: &AdminId,
    hash: &str,
    now: OffsetDateTime,
) -> StoreResult<bool> {
    let n = exec(
        c,
        "UPDATE admin_recovery_codes SET used_at = $1
         WHERE admin_id = $2 AND code_hash = $3 AND used_at IS NULL",
        &[&ts(now), &id.as_str(), &hash],
    )
    .await?;
    Ok(n == 1)
}

/// How many unused recovery codes an account has.
pub(super) async fn recovery_codes_left(c: &impl GenericClient, id: &AdminId) -> StoreResult<u32> {
    query_opt(
        c,
        "SELECT COUNT(*) AS n FROM admin_recovery_codes
         WHERE admin_id = $1 AND used_at IS NULL",
        &[&id.as_str()],
    )
    .await?
    .map_or(Ok(0), |r| u32_col(&r, "n"))
}
