//! Administrator accounts, their second factors (TOTP, recovery codes,
//! WebAuthn) and their server-side sessions.

use crate::{col, db, exec, from_opt_ts, from_ts, lock, query_all, query_opt, ts, Area, PgStore};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use mamori_domain::{
    AdminAccount, AdminCredentials, AdminId, AdminSession, Role, SessionId, Suspension,
    WebauthnCredential,
};
use mamori_ports::{AdminStore, StoreError, StoreResult};
use time::OffsetDateTime;
use tokio_postgres::Row;

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

fn admin_id(r: &Row, name: &str) -> StoreResult<AdminId> {
    let v: String = col(r, name)?;
    AdminId::parse(&v).map_err(err)
}

fn u32_col(r: &Row, name: &str) -> StoreResult<u32> {
    let v: i64 = col(r, name)?;
    u32::try_from(v).map_err(err)
}

/// A TOTP step as stored (SQL integers are signed).
fn step_to_col(step: u64) -> StoreResult<i64> {
    i64::try_from(step).map_err(err)
}

pub(crate) fn admin_from_row(r: &Row) -> StoreResult<AdminAccount> {
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
pub(crate) async fn revoke_credentials(
    c: &impl GenericClient,
    admin: &str,
    now: OffsetDateTime,
) -> StoreResult<(u64, u64)> {
    let now = ts(now);
    let sessions = exec(
        c,
        "UPDATE admin_sessions SET revoked_at = $1 WHERE admin_id = $2 AND revoked_at IS NULL",
        &[&now, &admin],
    )
    .await?;
    let tokens = exec(
        c,
        "UPDATE api_tokens SET revoked_at = $1 WHERE admin_id = $2 AND revoked_at IS NULL",
        &[&now, &admin],
    )
    .await?;
    Ok((sessions, tokens))
}

fn credentials_from_row(r: &Row) -> StoreResult<AdminCredentials> {
    let step: Option<i64> = col(r, "totp_last_step")?;
    Ok(AdminCredentials {
        password_hash: col(r, "password_hash")?,
        totp_sealed: col(r, "totp_sealed")?,
        totp_pending_sealed: col(r, "totp_pending_sealed")?,
        totp_last_step: step.map(u64::try_from).transpose().map_err(err)?,
    })
}

/// Runs `sql` (one account's row, by ID in `$1`) and maps its row.
async fn one_admin(store: &PgStore, sql: &str, key: &str) -> StoreResult<Option<AdminAccount>> {
    let c = store.conn().await?;
    query_opt(&c, sql, &[&key])
        .await?
        .as_ref()
        .map(admin_from_row)
        .transpose()
}

/// Runs a one-row `UPDATE` keyed by the account's ID; the rows changed.
async fn update(store: &PgStore, sql: &str, id: &AdminId) -> StoreResult<u64> {
    let c = store.conn().await?;
    exec(&c, sql, &[&id.as_str()]).await
}

#[async_trait]
impl AdminStore for PgStore {
    async fn insert_admin(&self, a: &AdminAccount, cr: &AdminCredentials) -> StoreResult<bool> {
        let step = cr.totp_last_step.map(step_to_col).transpose()?;
        let failed = i64::from(a.failed_logins);
        let (created, set_at) = (ts(a.created_at), ts(a.password_set_at));
        let last_login = a.last_login_at.map(ts);
        let throttled = a.throttled_until.map(ts);
        let locked = a.locked_at.map(ts);
        let disabled = a.disabled_at.map(ts);
        let c = self.conn().await?;
        // Atomic: of two servers inserting the same name, one gets false.
        let n = exec(
            &c,
            "INSERT INTO admins
             (id, name, role, password_hash, must_change_password, created_at,
              last_login_at, last_login_source, failed_logins, throttled_until,
              locked_at, disabled_at, disabled_reason, totp_sealed,
              totp_pending_sealed, totp_last_step, password_set_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
             ON CONFLICT (name) DO NOTHING",
            &[
                &a.id.as_str(),
                &a.name,
                &a.role.as_str(),
                &cr.password_hash,
                &a.must_change_password,
                &created,
                &last_login,
                &a.last_login_source,
                &failed,
                &throttled,
                &locked,
                &disabled,
                &a.disabled_reason,
                &cr.totp_sealed,
                &cr.totp_pending_sealed,
                &step,
                &set_at,
            ],
        )
        .await?;
        Ok(n == 1)
    }

    async fn admin(&self, id: &AdminId) -> StoreResult<Option<AdminAccount>> {
        one_admin(
            self,
            concat!(admin_select!(), " WHERE id = $1"),
            id.as_str(),
        )
        .await
    }

    async fn admin_by_name(&self, name: &str) -> StoreResult<Option<AdminAccount>> {
        one_admin(self, concat!(admin_select!(), " WHERE name = $1"), name).await
    }

    async fn list_admins(&self) -> StoreResult<Vec<AdminAccount>> {
        let c = self.conn().await?;
        query_all(&c, concat!(admin_select!(), " ORDER BY name"), &[])
            .await?
            .iter()
            .map(admin_from_row)
            .collect()
    }

    async fn admin_credentials(&self, id: &AdminId) -> StoreResult<Option<AdminCredentials>> {
        let c = self.conn().await?;
        query_opt(
            &c,
            "SELECT password_hash, totp_sealed, totp_pending_sealed, totp_last_step
             FROM admins WHERE id = $1",
            &[&id.as_str()],
        )
        .await?
        .as_ref()
        .map(credentials_from_row)
        .transpose()
    }

    async fn set_password(
        &self,
        id: &AdminId,
        password_hash: &str,
        must_change: bool,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let c = self.conn().await?;
        exec(
            &c,
            "UPDATE admins SET password_hash = $1, must_change_password = $2, password_set_at = $3
             WHERE id = $4",
            &[&password_hash, &must_change, &ts(now), &id.as_str()],
        )
        .await?;
        Ok(())
    }

    async fn reset_admin(
        &self,
        id: &AdminId,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<(u64, u64)>> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        // Serialised with the other factor replacements (recovery codes),
        // as SQLite's single writer would.
        lock(&tx, &[Area::Admins]).await?;
        let n = exec(
            &tx,
            "UPDATE admins SET password_hash = $1, must_change_password = TRUE,
                    password_set_at = $2, totp_sealed = NULL, totp_pending_sealed = NULL,
                    totp_last_step = NULL, failed_logins = 0, throttled_until = NULL,
                    locked_at = NULL
             WHERE id = $3",
            &[&password_hash, &ts(now), &id.as_str()],
        )
        .await?;
        if n == 0 {
            // Dropping the transaction rolls it back (nothing was changed).
            return Ok(None);
        }
        exec(
            &tx,
            "DELETE FROM admin_webauthn WHERE admin_id = $1",
            &[&id.as_str()],
        )
        .await?;
        exec(
            &tx,
            "DELETE FROM admin_recovery_codes WHERE admin_id = $1",
            &[&id.as_str()],
        )
        .await?;
        let revoked = revoke_credentials(&tx, id.as_str(), now).await?;
        tx.commit().await.map_err(db)?;
        Ok(Some(revoked))
    }

    async fn clear_totp(&self, id: &AdminId) -> StoreResult<bool> {
        let n = update(
            self,
            "UPDATE admins SET totp_sealed = NULL, totp_pending_sealed = NULL,
                    totp_last_step = NULL
             WHERE id = $1 AND totp_sealed IS NOT NULL",
            id,
        )
        .await?;
        Ok(n == 1)
    }

    async fn delete_webauthn(&self, admin: &AdminId, credential_id: &str) -> StoreResult<bool> {
        let c = self.conn().await?;
        factors::delete_webauthn(&c, admin, credential_id).await
    }

    async fn set_totp_pending(&self, id: &AdminId, sealed: Option<&[u8]>) -> StoreResult<()> {
        let c = self.conn().await?;
        exec(
            &c,
            "UPDATE admins SET totp_pending_sealed = $1 WHERE id = $2",
            &[&sealed, &id.as_str()],
        )
        .await?;
        Ok(())
    }

    async fn activate_totp(&self, id: &AdminId, step: u64) -> StoreResult<bool> {
        // One statement: the row lock makes a second activation find no
        // pending secret.
        let step = step_to_col(step)?;
        let c = self.conn().await?;
        let n = exec(
            &c,
            "UPDATE admins
             SET totp_sealed = totp_pending_sealed, totp_pending_sealed = NULL,
                 totp_last_step = $1
             WHERE id = $2 AND totp_pending_sealed IS NOT NULL",
            &[&step, &id.as_str()],
        )
        .await?;
        Ok(n == 1)
    }

    async fn advance_totp_step(&self, id: &AdminId, step: u64) -> StoreResult<bool> {
        // One statement: two logins racing with the same code cannot both
        // win (the second re-checks the condition on the row the first
        // committed).
        let step = step_to_col(step)?;
        let c = self.conn().await?;
        let n = exec(
            &c,
            "UPDATE admins SET totp_last_step = $1
             WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
            &[&step, &id.as_str()],
        )
        .await?;
        Ok(n == 1)
    }

    async fn add_login_failure(&self, id: &AdminId) -> StoreResult<u32> {
        // One statement: concurrent failures each count.
        let c = self.conn().await?;
        query_opt(
            &c,
            "UPDATE admins SET failed_logins = failed_logins + 1 WHERE id = $1
             RETURNING failed_logins",
            &[&id.as_str()],
        )
        .await?
        .map_or(Ok(0), |r| u32_col(&r, "failed_logins"))
    }

    async fn set_login_block(
        &self,
        id: &AdminId,
        throttled_until: Option<OffsetDateTime>,
        locked_at: Option<OffsetDateTime>,
    ) -> StoreResult<()> {
        let c = self.conn().await?;
        exec(
            &c,
            "UPDATE admins SET throttled_until = $1, locked_at = $2 WHERE id = $3",
            &[&throttled_until.map(ts), &locked_at.map(ts), &id.as_str()],
        )
        .await?;
        Ok(())
    }

    async fn unlock_admin(&self, id: &AdminId) -> StoreResult<()> {
        update(
            self,
            "UPDATE admins SET locked_at = NULL, throttled_until = NULL, failed_logins = 0
             WHERE id = $1",
            id,
        )
        .await?;
        Ok(())
    }

    async fn record_login(
        &self,
        id: &AdminId,
        now: OffsetDateTime,
        source: &str,
    ) -> StoreResult<()> {
        let c = self.conn().await?;
        exec(
            &c,
            "UPDATE admins
             SET failed_logins = 0, throttled_until = NULL,
                 last_login_at = $1, last_login_source = $2
             WHERE id = $3",
            &[&ts(now), &source, &id.as_str()],
        )
        .await?;
        Ok(())
    }

    async fn set_role(&self, id: &AdminId, role: Role) -> StoreResult<()> {
        let c = self.conn().await?;
        exec(
            &c,
            "UPDATE admins SET role = $1 WHERE id = $2",
            &[&role.as_str(), &id.as_str()],
        )
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
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        // Under READ COMMITTED, the count below sees the statement's
        // snapshot only: two owners disabling each other at once would both
        // pass it. The lock serialises disables, so the count (taken after
        // it, in the same statement that disables) sees the other's commit.
        lock(&tx, &[Area::Admins]).await?;
        let disabled = exec(
            &tx,
            "UPDATE admins SET disabled_at = $1, disabled_reason = $2
             WHERE id = $3 AND disabled_at IS NULL
               AND (NOT $4 OR role != 'owner'
                    OR (SELECT COUNT(*) FROM admins
                        WHERE role = 'owner' AND disabled_at IS NULL) > 1)",
            &[&ts(now), &reason, &id.as_str(), &keep_last_owner],
        )
        .await?;
        if disabled == 0 {
            // Dropping the transaction rolls it back (nothing was changed).
            return Ok(None);
        }
        let revoked = revoke_credentials(&tx, id.as_str(), now).await?;
        tx.commit().await.map_err(db)?;
        Ok(Some(revoked))
    }

    async fn enable_admin(&self, id: &AdminId) -> StoreResult<bool> {
        let n = update(
            self,
            "UPDATE admins SET disabled_at = NULL, disabled_reason = NULL
             WHERE id = $1 AND disabled_at IS NOT NULL",
            id,
        )
        .await?;
        Ok(n == 1)
    }

    async fn suspend_admin(
        &self,
        id: &AdminId,
        now: OffsetDateTime,
        reason: &str,
    ) -> StoreResult<Option<(u64, u64)>> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        // No lock: the row lock makes a concurrent suspension of the same
        // account re-check `suspended_at IS NULL` and change nothing.
        let suspended = exec(
            &tx,
            "UPDATE admins SET suspended_at = $1, suspended_reason = $2
             WHERE id = $3 AND suspended_at IS NULL",
            &[&ts(now), &reason, &id.as_str()],
        )
        .await?;
        if suspended == 0 {
            // Unknown or already suspended: nothing changed.
            return Ok(None);
        }
        let revoked = revoke_credentials(&tx, id.as_str(), now).await?;
        tx.commit().await.map_err(db)?;
        Ok(Some(revoked))
    }

    async fn reinstate_admin(&self, id: &AdminId) -> StoreResult<bool> {
        let n = update(
            self,
            "UPDATE admins SET suspended_at = NULL, suspended_reason = NULL
             WHERE id = $1 AND suspended_at IS NOT NULL",
            id,
        )
        .await?;
        Ok(n == 1)
    }

    async fn replace_recovery_codes(&self, id: &AdminId, hashes: &[String]) -> StoreResult<()> {
        let mut c = self.conn().await?;
        factors::replace_recovery_codes(&mut c, id, hashes).await
    }

    async fn use_recovery_code(
        &self,
        id: &AdminId,
        hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let c = self.conn().await?;
        factors::use_recovery_code(&c, id, hash, now).await
    }

    async fn recovery_codes_left(&self, id: &AdminId) -> StoreResult<u32> {
        let c = self.conn().await?;
        factors::recovery_codes_left(&c, id).await
    }

    async fn insert_webauthn(&self, w: &WebauthnCredential) -> StoreResult<bool> {
        let c = self.conn().await?;
        factors::insert_webauthn(&c, w).await
    }

    async fn webauthn_credentials(&self, id: &AdminId) -> StoreResult<Vec<WebauthnCredential>> {
        let c = self.conn().await?;
        factors::webauthn_of(&c, id).await
    }

    async fn activate_webauthn(&self, admin: &AdminId, credential_id: &str) -> StoreResult<bool> {
        let c = self.conn().await?;
        factors::activate_webauthn(&c, admin, credential_id).await
    }

    async fn update_webauthn(
        &self,
        credential_id: &str,
        data: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let c = self.conn().await?;
        factors::update_webauthn(&c, credential_id, data, now).await
    }

    async fn insert_session(&self, s: &AdminSession, secret_hash: &str) -> StoreResult<()> {
        let c = self.conn().await?;
        sessions::insert(&c, s, secret_hash).await
    }

    async fn session_by_secret(&self, secret_hash: &str) -> StoreResult<Option<AdminSession>> {
        let c = self.conn().await?;
        sessions::by_secret(&c, secret_hash).await
    }

    async fn touch_session(&self, id: &SessionId, now: OffsetDateTime) -> StoreResult<()> {
        let c = self.conn().await?;
        sessions::touch(&c, id, now).await
    }

    async fn set_session_step_up(&self, id: &SessionId, now: OffsetDateTime) -> StoreResult<()> {
        let c = self.conn().await?;
        sessions::set_step_up(&c, id, now).await
    }

    async fn revoke_session(
        &self,
        admin: &AdminId,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let c = self.conn().await?;
        sessions::revoke(&c, admin, id, now).await
    }

    async fn revoke_admin_sessions(
        &self,
        admin: &AdminId,
        keep: Option<&SessionId>,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let c = self.conn().await?;
        sessions::revoke_all(&c, admin, keep, now).await
    }

    async fn list_sessions(
        &self,
        admin: &AdminId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<AdminSession>> {
        let c = self.conn().await?;
        sessions::list_live(&c, admin, now).await
    }
}
