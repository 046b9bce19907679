//! Administrator accounts, their second factors (TOTP, recovery codes,
//! WebAuthn) and their server-side sessions.

use crate::{col, db, exec, from_opt_ts, from_ts, query_all, query_opt, ts, SqliteStore};
use async_trait::async_trait;
use mamori_domain::{
    AdminAccount, AdminCredentials, AdminId, AdminSession, Role, SessionId, Suspension,
    WebauthnCredential,
};
use mamori_ports::{AdminStore, StoreError, StoreResult};
use rusqlite::{params, Connection, Row};
use time::OffsetDateTime;

mod factors;
mod sessions;

/// The columns of an [`AdminAccount`] (never the secrets), as a string
/// literal so it can be `concat!`ed into whole statements.
macro_rules! admin_select {
    () => {
        "SELECT id, name, role, must_change_password, created_at, password_set_at, last_login_at,
                last_login_source, failed_logins, throttled_until, locked_at,
                disabled_at, disabled_reason, suspended_at, suspended_reason,
                totp_sealed IS NOT NULL AS totp_enrolled
         FROM admins"
    };
}
pub(crate) use admin_select;

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::new(e.to_string())
}

fn admin_id(r: &Row<'_>, name: &str) -> StoreResult<AdminId> {
    let v: String = col(r, name)?;
    AdminId::parse(&v).map_err(err)
}

fn u32_col(r: &Row<'_>, name: &str) -> StoreResult<u32> {
    let v: i64 = col(r, name)?;
    u32::try_from(v).map_err(err)
}

/// A TOTP step as stored (SQL integers are signed).
fn step_to_col(step: u64) -> StoreResult<i64> {
    i64::try_from(step).map_err(err)
}

pub(crate) fn admin_from_row(r: &Row<'_>) -> StoreResult<AdminAccount> {
    let role: String = col(r, "role")?;
    let suspended = match from_opt_ts(col(r, "suspended_at")?)? {
        Some(at) => Some(Suspension {
            at,
            reason: col::<Option<String>>(r, "suspended_reason")?.unwrap_or_default(),
        }),
        None => None,
    };
    Ok(AdminAccount {
        id: admin_id(r, "id")?,
        name: col(r, "name")?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::new(format!("unknown role {role:?}")))?,
        must_change_password: col(r, "must_change_password")?,
        created_at: from_ts(col(r, "created_at")?)?,
        password_set_at: from_ts(col(r, "password_set_at")?)?,
        last_login_at: from_opt_ts(col(r, "last_login_at")?)?,
        last_login_source: col(r, "last_login_source")?,
        failed_logins: u32_col(r, "failed_logins")?,
        throttled_until: from_opt_ts(col(r, "throttled_until")?)?,
        locked_at: from_opt_ts(col(r, "locked_at")?)?,
        disabled_at: from_opt_ts(col(r, "disabled_at")?)?,
        disabled_reason: col(r, "disabled_reason")?,
        suspended: suspended.map(Box::new),
        totp_enrolled: col(r, "totp_enrolled")?,
    })
}

/// Revokes every live session and token of an account, inside the
/// caller's transaction; returns (sessions, tokens) revoked. Disabling,
/// suspending, resetting and offboarding all end with it.
pub(crate) fn revoke_credentials(
    c: &Connection,
    admin: &str,
    now: OffsetDateTime,
) -> StoreResult<(u64, u64)> {
    let sessions = exec(
        c,
        "UPDATE admin_sessions SET revoked_at = ? WHERE admin_id = ? AND revoked_at IS NULL",
        params![ts(now), admin],
    )?;
    let tokens = exec(
        c,
        "UPDATE api_tokens SET revoked_at = ? WHERE admin_id = ? AND revoked_at IS NULL",
        params![ts(now), admin],
    )?;
    Ok((sessions as u64, tokens as u64))
}

fn credentials_from_row(r: &Row<'_>) -> StoreResult<AdminCredentials> {
    let step: Option<i64> = col(r, "totp_last_step")?;
    Ok(AdminCredentials {
        password_hash: col(r, "password_hash")?,
        totp_sealed: col(r, "totp_sealed")?,
        totp_pending_sealed: col(r, "totp_pending_sealed")?,
        totp_last_step: step.map(u64::try_from).transpose().map_err(err)?,
    })
}

#[async_trait]
impl AdminStore for SqliteStore {
    async fn insert_admin(&self, a: &AdminAccount, cr: &AdminCredentials) -> StoreResult<bool> {
        let step = cr.totp_last_step.map(step_to_col).transpose()?;
        let n = self
            .write(|c| {
                exec(
                    c,
                    "INSERT INTO admins
                     (id, name, role, password_hash, must_change_password, created_at,
                      last_login_at, last_login_source, failed_logins, throttled_until,
                      locked_at, disabled_at, disabled_reason, totp_sealed,
                      totp_pending_sealed, totp_last_step, password_set_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (name) DO NOTHING",
                    params![
                        a.id.as_str(),
                        a.name,
                        a.role.as_str(),
                        cr.password_hash,
                        a.must_change_password,
                        ts(a.created_at),
                        a.last_login_at.map(ts),
                        a.last_login_source,
                        i64::from(a.failed_logins),
                        a.throttled_until.map(ts),
                        a.locked_at.map(ts),
                        a.disabled_at.map(ts),
                        a.disabled_reason,
                        cr.totp_sealed,
                        cr.totp_pending_sealed,
                        step,
                        ts(a.password_set_at)
                    ],
                )
            })
            .await?;
        Ok(n == 1)
    }

    async fn admin(&self, id: &AdminId) -> StoreResult<Option<AdminAccount>> {
        self.read(|c| {
            query_opt(
                c,
                concat!(admin_select!(), " WHERE id = ?"),
                [id.as_str()],
                admin_from_row,
            )
        })
        .await
    }

    async fn admin_by_name(&self, name: &str) -> StoreResult<Option<AdminAccount>> {
        self.read(|c| {
            query_opt(
                c,
                concat!(admin_select!(), " WHERE name = ?"),
                [name],
                admin_from_row,
            )
        })
        .await
    }

    async fn list_admins(&self) -> StoreResult<Vec<AdminAccount>> {
        self.read(|c| {
            query_all(
                c,
                concat!(admin_select!(), " ORDER BY name"),
                [],
                admin_from_row,
            )
        })
        .await
    }

    async fn admin_credentials(&self, id: &AdminId) -> StoreResult<Option<AdminCredentials>> {
        self.read(|c| {
            query_opt(
                c,
                "SELECT password_hash, totp_sealed, totp_pending_sealed, totp_last_step
                 FROM admins WHERE id = ?",
                [id.as_str()],
                credentials_from_row,
            )
        })
        .await
    }

    async fn set_password(
        &self,
        id: &AdminId,
        password_hash: &str,
        must_change: bool,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "UPDATE admins SET password_hash = ?, must_change_password = ?, password_set_at = ?
                 WHERE id = ?",
                params![password_hash, must_change, ts(now), id.as_str()],
            )
        })
        .await?;
        Ok(())
    }

    async fn reset_admin(
        &self,
        id: &AdminId,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<(u64, u64)>> {
        self.write(|c| {
            let tx = c.transaction().map_err(db)?;
            let n = exec(
                &tx,
                "UPDATE admins SET password_hash = ?, must_change_password = 1,
                        password_set_at = ?, totp_sealed = NULL, totp_pending_sealed = NULL,
                        totp_last_step = NULL, failed_logins = 0, throttled_until = NULL,
                        locked_at = NULL
                 WHERE id = ?",
                params![password_hash, ts(now), id.as_str()],
            )?;
            if n == 0 {
                return Ok(None);
            }
            exec(
                &tx,
                "DELETE FROM admin_webauthn WHERE admin_id = ?",
                [id.as_str()],
            )?;
            exec(
                &tx,
                "DELETE FROM admin_recovery_codes WHERE admin_id = ?",
                [id.as_str()],
            )?;
            let revoked = revoke_credentials(&tx, id.as_str(), now)?;
            tx.commit().map_err(db)?;
            Ok(Some(revoked))
        })
        .await
    }

    async fn clear_totp(&self, id: &AdminId) -> StoreResult<bool> {
        let n = self
            .write(|c| {
                exec(
                    c,
                    "UPDATE admins SET totp_sealed = NULL, totp_pending_sealed = NULL,
                            totp_last_step = NULL
                     WHERE id = ? AND totp_sealed IS NOT NULL",
                    [id.as_str()],
                )
            })
            .await?;
        Ok(n == 1)
    }

    async fn delete_webauthn(&self, admin: &AdminId, credential_id: &str) -> StoreResult<bool> {
        self.write(|c| factors::delete_webauthn(c, admin, credential_id))
            .await
    }

    async fn set_totp_pending(&self, id: &AdminId, sealed: Option<&[u8]>) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "UPDATE admins SET totp_pending_sealed = ? WHERE id = ?",
                params![sealed, id.as_str()],
            )
        })
        .await?;
        Ok(())
    }

    async fn activate_totp(&self, id: &AdminId, step: u64) -> StoreResult<bool> {
        let step = step_to_col(step)?;
        let n = self
            .write(|c| {
                exec(
                    c,
                    "UPDATE admins
                     SET totp_sealed = totp_pending_sealed, totp_pending_sealed = NULL,
                         totp_last_step = ?
                     WHERE id = ? AND totp_pending_sealed IS NOT NULL",
                    params![step, id.as_str()],
                )
            })
            .await?;
        Ok(n == 1)
    }

    async fn advance_totp_step(&self, id: &AdminId, step: u64) -> StoreResult<bool> {
        // One statement: two logins racing with the same code cannot both win.
        let step = step_to_col(step)?;
        let n = self
            .write(|c| {
                exec(
                    c,
                    "UPDATE admins SET totp_last_step = ?
                     WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)",
                    params![step, id.as_str(), step],
                )
            })
            .await?;
        Ok(n == 1)
    }

    async fn add_login_failure(&self, id: &AdminId) -> StoreResult<u32> {
        let n = self
            .write(|c| {
                query_opt(
                    c,
                    "UPDATE admins SET failed_logins = failed_logins + 1 WHERE id = ?
                     RETURNING failed_logins",
                    [id.as_str()],
                    |r| u32_col(r, "failed_logins"),
                )
            })
            .await?;
        Ok(n.unwrap_or(0))
    }

    async fn set_login_block(
        &self,
        id: &AdminId,
        throttled_until: Option<OffsetDateTime>,
        locked_at: Option<OffsetDateTime>,
    ) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "UPDATE admins SET throttled_until = ?, locked_at = ? WHERE id = ?",
                params![throttled_until.map(ts), locked_at.map(ts), id.as_str()],
            )
        })
        .await?;
        Ok(())
    }

    async fn unlock_admin(&self, id: &AdminId) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "UPDATE admins SET locked_at = NULL, throttled_until = NULL, failed_logins = 0
                 WHERE id = ?",
                [id.as_str()],
            )
        })
        .await?;
        Ok(())
    }

    async fn record_login(
        &self,
        id: &AdminId,
        now: OffsetDateTime,
        source: &str,
    ) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "UPDATE admins
                 SET failed_logins = 0, throttled_until = NULL,
                     last_login_at = ?, last_login_source = ?
                 WHERE id = ?",
                params![ts(now), source, id.as_str()],
            )
        })
        .await?;
        Ok(())
    }

    async fn set_role(&self, id: &AdminId, role: Role) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "UPDATE admins SET role = ? WHERE id = ?",
                params![role.as_str(), id.as_str()],
            )
        })
        .await?;
        Ok(())
    }

    async fn disable_admin(
        &self,
        id: &AdminId,
        now: OffsetDateTime,
        reason: &str,
        keep_last_owner: bool,
    ) -> StoreResult<Option<(u64, u64)>> {
        self.write(|c| {
            let tx = c.transaction().map_err(db)?;
            // The count is taken in the same statement: two owners disabling
            // each other at once cannot both pass it.
            let disabled = exec(
                &tx,
                "UPDATE admins SET disabled_at = ?1, disabled_reason = ?2
                 WHERE id = ?3 AND disabled_at IS NULL
                   AND (NOT ?4 OR role != 'owner'
                        OR (SELECT COUNT(*) FROM admins
                            WHERE role = 'owner' AND disabled_at IS NULL) > 1)",
                params![ts(now), reason, id.as_str(), keep_last_owner],
            )?;
            if disabled == 0 {
                // Dropping the transaction rolls it back (nothing was changed).
                return Ok(None);
            }
            let revoked = revoke_credentials(&tx, id.as_str(), now)?;
            tx.commit().map_err(db)?;
            Ok(Some(revoked))
        })
        .await
    }

    async fn enable_admin(&self, id: &AdminId) -> StoreResult<bool> {
        let n = self
            .write(|c| {
                exec(
                    c,
                    "UPDATE admins SET disabled_at = NULL, disabled_reason = NULL
                     WHERE id = ? AND disabled_at IS NOT NULL",
                    [id.as_str()],
                )
            })
            .await?;
        Ok(n == 1)
    }

    async fn suspend_admin(
        &self,
        id: &AdminId,
        now: OffsetDateTime,
        reason: &str,
    ) -> StoreResult<Option<(u64, u64)>> {
        self.write(|c| {
            let tx = c.transaction().map_err(db)?;
            let suspended = exec(
                &tx,
                "UPDATE admins SET suspended_at = ?, suspended_reason = ?
                 WHERE id = ? AND suspended_at IS NULL",
                params![ts(now), reason, id.as_str()],
            )?;
            if suspended == 0 {
                // Unknown or already suspended: nothing changed.
                return Ok(None);
            }
            let revoked = revoke_credentials(&tx, id.as_str(), now)?;
            tx.commit().map_err(db)?;
            Ok(Some(revoked))
        })
        .await
    }

    async fn reinstate_admin(&self, id: &AdminId) -> StoreResult<bool> {
        let n = self
            .write(|c| {
                exec(
                    c,
                    "UPDATE admins SET suspended_at = NULL, suspended_reason = NULL
                     WHERE id = ? AND suspended_at IS NOT NULL",
                    [id.as_str()],
                )
            })
            .await?;
        Ok(n == 1)
    }

    async fn replace_recovery_codes(&self, id: &AdminId, hashes: &[String]) -> StoreResult<()> {
        self.write(|c| factors::replace_recovery_codes(c, id, hashes))
            .await
    }

    async fn use_recovery_code(
        &self,
        id: &AdminId,
        hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.write(|c| factors::use_recovery_code(c, id, hash, now))
            .await
    }

    async fn recovery_codes_left(&self, id: &AdminId) -> StoreResult<u32> {
        self.read(|c| factors::recovery_codes_left(c, id)).await
    }

    async fn insert_webauthn(&self, w: &WebauthnCredential) -> StoreResult<bool> {
        self.write(|c| factors::insert_webauthn(c, w)).await
    }

    async fn webauthn_credentials(&self, id: &AdminId) -> StoreResult<Vec<WebauthnCredential>> {
        self.read(|c| factors::webauthn_of(c, id)).await
    }

    async fn activate_webauthn(&self, admin: &AdminId, credential_id: &str) -> StoreResult<bool> {
        self.write(|c| factors::activate_webauthn(c, admin, credential_id))
            .await
    }

    async fn update_webauthn(
        &self,
        credential_id: &str,
        data: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        self.write(|c| factors::update_webauthn(c, credential_id, data, now))
            .await
    }

    async fn insert_session(&self, s: &AdminSession, secret_hash: &str) -> StoreResult<()> {
        self.write(|c| sessions::insert(c, s, secret_hash)).await
    }

    async fn session_by_secret(&self, secret_hash: &str) -> StoreResult<Option<AdminSession>> {
        self.read(|c| sessions::by_secret(c, secret_hash)).await
    }

    async fn touch_session(&self, id: &SessionId, now: OffsetDateTime) -> StoreResult<()> {
        self.write(|c| sessions::touch(c, id, now)).await
    }

    async fn set_session_step_up(&self, id: &SessionId, now: OffsetDateTime) -> StoreResult<()> {
        self.write(|c| sessions::set_step_up(c, id, now)).await
    }

    async fn revoke_session(
        &self,
        admin: &AdminId,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.write(|c| sessions::revoke(c, admin, id, now)).await
    }

    async fn revoke_admin_sessions(
        &self,
        admin: &AdminId,
        keep: Option<&SessionId>,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        self.write(|c| sessions::revoke_all(c, admin, keep, now))
            .await
    }

    async fn list_sessions(
        &self,
        admin: &AdminId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<AdminSession>> {
        self.read(|c| sessions::list_live(c, admin, now)).await
    }
}
