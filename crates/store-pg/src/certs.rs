//! Enrollment profiles (SCEP challenges) and issued device certificates.
//!
//! # Concurrency
//!
//! A challenge's or a link's use is spent by one `UPDATE … WHERE uses <
//! max_uses`: a second server spending the same profile waits for the
//! first one's row lock and then re-checks the condition on the committed
//! count, so `max_uses` uses are spent at most, across servers. An issuance
//! (`record_issuance`) takes the [`Area::Enrollment`] lock first, then
//! appends its audit record through the audit store's own `append_linked`,
//! which takes [`Area::Audit`] (last in the locking order) and links the
//! record onto the chain's end under it: the chain's lock is held only for
//! the append and the commit.

use crate::{col, db, exec, from_opt_ts, from_ts, lock, query_all, query_opt, ts, Area, PgStore};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use mamori_domain::{
    AuditEvent, DeviceCertificate, DeviceKey, EnrollmentLink, EnrollmentProfile, ProfileId,
};
use mamori_ports::{CertStore, ChainLinker, ProfileStore, StoreError, StoreResult};
use time::OffsetDateTime;
use tokio_postgres::Row;

#[async_trait]
impl ProfileStore for PgStore {
    async fn insert_profile(&self, p: &EnrollmentProfile) -> StoreResult<()> {
        let c = self.conn().await?;
        exec(
            &c,
            "INSERT INTO enrollment_profiles (id, challenge_hash, max_uses, uses, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &p.id,
                &p.challenge_hash,
                &i64::from(p.max_uses),
                &i64::from(p.uses),
                &ts(p.created_at),
                &ts(p.expires_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn consume_challenge(
        &self,
        challenge_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<ProfileId>> {
        // One statement: the check and the increment cannot be split by a
        // concurrent request spending the last use (a concurrent spender's
        // row lock is waited for, and the condition re-checked after it).
        let c = self.conn().await?;
        query_opt(
            &c,
            "UPDATE enrollment_profiles SET uses = uses + 1
             WHERE challenge_hash = $1 AND uses < max_uses AND expires_at > $2
             RETURNING id",
            &[&challenge_hash, &ts(now)],
        )
        .await?
        .map(|r| col::<String>(&r, "id"))
        .transpose()
    }

    async fn challenge_profile(
        &self,
        challenge_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<ProfileId>> {
        let c = self.conn().await?;
        query_opt(
            &c,
            "SELECT id FROM enrollment_profiles
             WHERE challenge_hash = $1 AND uses < max_uses AND expires_at > $2",
            &[&challenge_hash, &ts(now)],
        )
        .await?
        .map(|r| col::<String>(&r, "id"))
        .transpose()
    }

    async fn insert_link(&self, l: &EnrollmentLink) -> StoreResult<()> {
        let c = self.conn().await?;
        exec(
            &c,
            "INSERT INTO enrollment_links (id, secret_hash, max_uses, uses, signed, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &l.id,
                &l.secret_hash,
                &i64::from(l.max_uses),
                &i64::from(l.uses),
                &l.signed,
                &ts(l.created_at),
                &ts(l.expires_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn consume_link(
        &self,
        secret_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<EnrollmentLink>> {
        // One statement, as `consume_challenge`.
        let c = self.conn().await?;
        query_opt(
            &c,
            "UPDATE enrollment_links SET uses = uses + 1
             WHERE secret_hash = $1 AND uses < max_uses AND expires_at > $2
             RETURNING *",
            &[&secret_hash, &ts(now)],
        )
        .await?
        .as_ref()
        .map(link_from_row)
        .transpose()
    }

    async fn active_links(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<EnrollmentLink>> {
        let c = self.conn().await?;
        query_all(
            &c,
            "SELECT * FROM enrollment_links WHERE uses < max_uses AND expires_at > $1
             ORDER BY created_at DESC, id LIMIT $2",
            &[&ts(now), &i64::from(limit)],
        )
        .await?
        .iter()
        .map(link_from_row)
        .collect()
    }

    async fn revoke_link(&self, id: &str, now: OffsetDateTime) -> StoreResult<bool> {
        let c = self.conn().await?;
        let n = exec(
            &c,
            "UPDATE enrollment_links SET expires_at = $1 WHERE id = $2 AND expires_at > $1",
            &[&ts(now), &id],
        )
        .await?;
        Ok(n > 0)
    }
}

fn link_from_row(r: &Row) -> StoreResult<EnrollmentLink> {
    let count = |c: &str| -> StoreResult<u32> {
        let v: i64 = col(r, c)?;
        u32::try_from(v).map_err(StoreError::from_cause)
    };
    Ok(EnrollmentLink {
        id: col(r, "id")?,
        secret_hash: col(r, "secret_hash")?,
        max_uses: count("max_uses")?,
        uses: count("uses")?,
        signed: col(r, "signed")?,
        created_at: from_ts(col(r, "created_at")?)?,
        expires_at: from_ts(col(r, "expires_at")?)?,
    })
}

fn cert_from_row(r: &Row) -> StoreResult<DeviceCertificate> {
    let device: Option<String> = col(r, "device")?;
    Ok(DeviceCertificate {
        fingerprint: col(r, "fingerprint")?,
        serial: col(r, "serial")?,
        profile_id: col(r, "profile_id")?,
        device: device
            .map(|d| DeviceKey::parse(&d).map_err(StoreError::from_cause))
            .transpose()?,
        renewed_from: col(r, "renewed_from")?,
        not_after: from_ts(col(r, "not_after")?)?,
        issued_at: from_ts(col(r, "issued_at")?)?,
        revoked_at: from_opt_ts(col(r, "revoked_at")?)?,
    })
}

async fn insert_cert(conn: &impl GenericClient, c: &DeviceCertificate) -> StoreResult<u64> {
    exec(
        conn,
        "INSERT INTO device_certificates
         (fingerprint, serial, profile_id, device, renewed_from, not_after, issued_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &c.fingerprint,
            &c.serial,
            &c.profile_id,
            &c.device.as_ref().map(DeviceKey::as_str),
            &c.renewed_from,
            &ts(c.not_after),
            &ts(c.issued_at),
            &c.revoked_at.map(ts),
        ],
    )
    .await
}

#[async_trait]
impl CertStore for PgStore {
    async fn insert_certificate(&self, c: &DeviceCertificate) -> StoreResult<()> {
        let conn = self.conn().await?;
        insert_cert(&conn, c).await?;
        Ok(())
    }

    async fn record_issuance(
        &self,
        spend: Option<&str>,
        cert: &DeviceCertificate,
        audit: &AuditEvent,
        linker: &dyn ChainLinker,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        // Dropped without commit on any early return: rolled back.
        let tx = c.transaction().await.map_err(db)?;
        // First in the locking order; `append_linked` takes `Area::Audit`,
        // the last, so the chain waits only for the append itself.
        lock(&tx, &[Area::Enrollment]).await?;
        if let Some(profile) = spend {
            let spent = exec(
                &tx,
                "UPDATE enrollment_profiles SET uses = uses + 1
                 WHERE id = $1 AND uses < max_uses AND expires_at > $2",
                &[&profile, &ts(now)],
            )
            .await?;
            if spent != 1 {
                return Ok(false);
            }
        }
        if let Some(from) = &cert.renewed_from {
            // The identity renewed is still live, checked again under the
            // enrollment lock, which revocations take too: a retirement
            // since the request's own check issues nothing, and one after
            // it revokes this certificate with the device's others.
            let live = query_opt(
                &tx,
                "SELECT 1 AS live FROM device_certificates
                 WHERE fingerprint = $1 AND revoked_at IS NULL
                   AND device IS NOT DISTINCT FROM $2 AND not_after > $3
                   AND NOT EXISTS (SELECT 1 FROM pending_reenrollments WHERE fingerprint = $1)",
                &[from, &cert.device.as_ref().map(DeviceKey::as_str), &ts(now)],
            )
            .await?;
            if live.is_none() {
                return Ok(false);
            }
        }
        insert_cert(&tx, cert).await?;
        crate::audit::append_linked(&tx, std::slice::from_ref(audit), linker).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn certificate(&self, fingerprint: &str) -> StoreResult<Option<DeviceCertificate>> {
        let c = self.conn().await?;
        query_opt(
            &c,
            "SELECT * FROM device_certificates WHERE fingerprint = $1",
            &[&fingerprint],
        )
        .await?
        .as_ref()
        .map(cert_from_row)
        .transpose()
    }

    async fn bind_certificate(&self, fingerprint: &str, device: &DeviceKey) -> StoreResult<()> {
        let c = self.conn().await?;
        exec(
            &c,
            "UPDATE device_certificates SET device = $1 WHERE fingerprint = $2",
            &[&device.as_str(), &fingerprint],
        )
        .await?;
        Ok(())
    }

    async fn device_certificates(&self, device: &DeviceKey) -> StoreResult<Vec<DeviceCertificate>> {
        let c = self.conn().await?;
        query_all(
            &c,
            "SELECT * FROM device_certificates WHERE device = $1
             ORDER BY issued_at DESC, fingerprint",
            &[&device.as_str()],
        )
        .await?
        .iter()
        .map(cert_from_row)
        .collect()
    }

    async fn revoke_device_certificates(
        &self,
        device: &DeviceKey,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        // Under the enrollment lock, as issuance: a renewal committed just
        // before is revoked here with the rest, one committed after sees
        // its signer revoked and issues nothing.
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        lock(&tx, &[Area::Enrollment]).await?;
        let n = exec(
            &tx,
            "UPDATE device_certificates SET revoked_at = $1
             WHERE device = $2 AND revoked_at IS NULL",
            &[&ts(now), &device.as_str()],
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(n)
    }
}
