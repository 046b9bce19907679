//! Enrollment profiles (SCEP challenges) and issued device certificates.

use crate::{db, from_opt_ts, from_ts, ts, SqliteStore};
use async_trait::async_trait;
use mamori_core::ports::{CertStore, ProfileStore, StoreError, StoreResult};
use mamori_domain::{DeviceCertificate, DeviceKey, EnrollmentLink, EnrollmentProfile, ProfileId};
use sqlx::Row;
use time::OffsetDateTime;

#[async_trait]
impl ProfileStore for SqliteStore {
    async fn insert_profile(&self, p: &EnrollmentProfile) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO enrollment_profiles (id, challenge_hash, max_uses, uses, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&p.id)
        .bind(&p.challenge_hash)
        .bind(i64::from(p.max_uses))
        .bind(i64::from(p.uses))
        .bind(ts(p.created_at))
        .bind(ts(p.expires_at))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn consume_challenge(
        &self,
        challenge_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<ProfileId>> {
        // One statement: the check and the increment cannot be split by a
        // concurrent request spending the last use.
        let row = sqlx::query(
            "UPDATE enrollment_profiles SET uses = uses + 1
             WHERE challenge_hash = ? AND uses < max_uses AND expires_at > ?
             RETURNING id",
        )
        .bind(challenge_hash)
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(|r| r.try_get::<String, _>("id").map_err(db))
            .transpose()
    }

    async fn insert_link(&self, l: &EnrollmentLink) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO enrollment_links (id, secret_hash, max_uses, uses, signed, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&l.id)
        .bind(&l.secret_hash)
        .bind(i64::from(l.max_uses))
        .bind(i64::from(l.uses))
        .bind(l.signed)
        .bind(ts(l.created_at))
        .bind(ts(l.expires_at))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn consume_link(
        &self,
        secret_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<EnrollmentLink>> {
        let row = sqlx::query(
            "UPDATE enrollment_links SET uses = uses + 1
             WHERE secret_hash = ? AND uses < max_uses AND expires_at > ?
             RETURNING *",
        )
        .bind(secret_hash)
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some(r) = row else { return Ok(None) };
        let count = |c: &str| -> StoreResult<u32> {
            let v: i64 = r.try_get(c).map_err(db)?;
            u32::try_from(v).map_err(|e| StoreError(e.to_string()))
        };
        Ok(Some(EnrollmentLink {
            id: r.try_get("id").map_err(db)?,
            secret_hash: r.try_get("secret_hash").map_err(db)?,
            max_uses: count("max_uses")?,
            uses: count("uses")?,
            signed: r.try_get("signed").map_err(db)?,
            created_at: from_ts(r.try_get("created_at").map_err(db)?)?,
            expires_at: from_ts(r.try_get("expires_at").map_err(db)?)?,
        }))
    }
}

fn cert_from_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<DeviceCertificate> {
    let device: Option<String> = r.try_get("device").map_err(db)?;
    Ok(DeviceCertificate {
        fingerprint: r.try_get("fingerprint").map_err(db)?,
        serial: r.try_get("serial").map_err(db)?,
        profile_id: r.try_get("profile_id").map_err(db)?,
        device: device
            .map(|d| DeviceKey::parse(&d).map_err(|e| StoreError(e.to_string())))
            .transpose()?,
        renewed_from: r.try_get("renewed_from").map_err(db)?,
        not_after: from_ts(r.try_get("not_after").map_err(db)?)?,
        issued_at: from_ts(r.try_get("issued_at").map_err(db)?)?,
        revoked_at: from_opt_ts(r.try_get("revoked_at").map_err(db)?)?,
    })
}

#[async_trait]
impl CertStore for SqliteStore {
    async fn insert_certificate(&self, c: &DeviceCertificate) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO device_certificates
             (fingerprint, serial, profile_id, device, renewed_from, not_after, issued_at, revoked_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.fingerprint)
        .bind(&c.serial)
        .bind(&c.profile_id)
        .bind(c.device.as_ref().map(|d| d.as_str().to_owned()))
        .bind(&c.renewed_from)
        .bind(ts(c.not_after))
        .bind(ts(c.issued_at))
        .bind(c.revoked_at.map(ts))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn certificate(&self, fingerprint: &str) -> StoreResult<Option<DeviceCertificate>> {
        let row = sqlx::query("SELECT * FROM device_certificates WHERE fingerprint = ?")
            .bind(fingerprint)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(cert_from_row).transpose()
    }

    async fn bind_certificate(&self, fingerprint: &str, device: &DeviceKey) -> StoreResult<()> {
        sqlx::query("UPDATE device_certificates SET device = ? WHERE fingerprint = ?")
            .bind(device.as_str())
            .bind(fingerprint)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn revoke_device_certificates(
        &self,
        device: &DeviceKey,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let res = sqlx::query(
            "UPDATE device_certificates SET revoked_at = ? WHERE device = ? AND revoked_at IS NULL",
        )
        .bind(ts(now))
        .bind(device.as_str())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(res.rows_affected())
    }
}
