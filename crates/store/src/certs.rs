//! Enrollment profiles (SCEP challenges) and issued device certificates.

use crate::{col, db, exec, from_opt_ts, from_ts, query_all, query_opt, ts, SqliteStore};
use async_trait::async_trait;
use mamori_domain::{
    AuditEvent, DeviceCertificate, DeviceKey, EnrollmentLink, EnrollmentProfile, ProfileId,
};
use mamori_ports::{CertStore, ChainLinker, ProfileStore, StoreError, StoreResult};
use rusqlite::{params, Connection, Row};
use time::OffsetDateTime;

#[async_trait]
impl ProfileStore for SqliteStore {
    async fn insert_profile(&self, p: &EnrollmentProfile) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "INSERT INTO enrollment_profiles (id, challenge_hash, max_uses, uses, created_at, expires_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
                params![
                    p.id,
                    p.challenge_hash,
                    i64::from(p.max_uses),
                    i64::from(p.uses),
                    ts(p.created_at),
                    ts(p.expires_at)
                ],
            )
        })
        .await?;
        Ok(())
    }

    async fn consume_challenge(
        &self,
        challenge_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<ProfileId>> {
        // One statement: the check and the increment cannot be split by a
        // concurrent request spending the last use.
        self.write(|c| {
            query_opt(
                c,
                "UPDATE enrollment_profiles SET uses = uses + 1
                 WHERE challenge_hash = ? AND uses < max_uses AND expires_at > ?
                 RETURNING id",
                params![challenge_hash, ts(now)],
                |r| col::<String>(r, "id"),
            )
        })
        .await
    }

    async fn challenge_profile(
        &self,
        challenge_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<ProfileId>> {
        self.read(|c| {
            query_opt(
                c,
                "SELECT id FROM enrollment_profiles
                 WHERE challenge_hash = ? AND uses < max_uses AND expires_at > ?",
                params![challenge_hash, ts(now)],
                |r| col::<String>(r, "id"),
            )
        })
        .await
    }

    async fn insert_link(&self, l: &EnrollmentLink) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "INSERT INTO enrollment_links (id, secret_hash, max_uses, uses, signed, created_at, expires_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
                params![
                    l.id,
                    l.secret_hash,
                    i64::from(l.max_uses),
                    i64::from(l.uses),
                    l.signed,
                    ts(l.created_at),
                    ts(l.expires_at)
                ],
            )
        })
        .await?;
        Ok(())
    }

    async fn consume_link(
        &self,
        secret_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<EnrollmentLink>> {
        self.write(|c| {
            query_opt(
                c,
                "UPDATE enrollment_links SET uses = uses + 1
                 WHERE secret_hash = ? AND uses < max_uses AND expires_at > ?
                 RETURNING *",
                params![secret_hash, ts(now)],
                link_from_row,
            )
        })
        .await
    }

    async fn active_links(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<EnrollmentLink>> {
        self.read(move |c| {
            query_all(
                c,
                "SELECT * FROM enrollment_links WHERE uses < max_uses AND expires_at > ?
                 ORDER BY created_at DESC, id LIMIT ?",
                params![ts(now), i64::from(limit)],
                link_from_row,
            )
        })
        .await
    }

    async fn revoke_link(&self, id: &str, now: OffsetDateTime) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |c| {
            let n = exec(
                c,
                "UPDATE enrollment_links SET expires_at = ? WHERE id = ? AND expires_at > ?",
                params![ts(now), id, ts(now)],
            )?;
            Ok(n > 0)
        })
        .await
    }
}

fn link_from_row(r: &Row<'_>) -> StoreResult<EnrollmentLink> {
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

fn cert_from_row(r: &Row<'_>) -> StoreResult<DeviceCertificate> {
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

fn insert_cert(conn: &Connection, c: &DeviceCertificate) -> StoreResult<usize> {
    exec(
        conn,
        "INSERT INTO device_certificates
         (fingerprint, serial, profile_id, device, renewed_from, not_after, issued_at, revoked_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            c.fingerprint,
            c.serial,
            c.profile_id,
            c.device.as_ref().map(DeviceKey::as_str),
            c.renewed_from,
            ts(c.not_after),
            ts(c.issued_at),
            c.revoked_at.map(ts)
        ],
    )
}

#[async_trait]
impl CertStore for SqliteStore {
    async fn insert_certificate(&self, c: &DeviceCertificate) -> StoreResult<()> {
        self.write(|conn| insert_cert(conn, c)).await?;
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
        self.write(|c| {
            // Dropped without commit on any early return: rolled back.
            // Immediate: the chain's end read by the append is still the end
            // when the record is inserted.
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db)?;
            if let Some(profile) = spend {
                let spent = exec(
                    &tx,
                    "UPDATE enrollment_profiles SET uses = uses + 1
                     WHERE id = ? AND uses < max_uses AND expires_at > ?",
                    params![profile, ts(now)],
                )?;
                if spent != 1 {
                    return Ok(false);
                }
            }
            if let Some(from) = &cert.renewed_from {
                // The identity renewed is still live, checked again in the
                // writing transaction: a retirement since the request's
                // own check issues nothing.
                let live = query_opt(
                    &tx,
                    "SELECT 1 AS live FROM device_certificates
                     WHERE fingerprint = ? AND revoked_at IS NULL AND device IS ? AND not_after > ?
                       AND NOT EXISTS (SELECT 1 FROM pending_reenrollments WHERE fingerprint = ?)",
                    params![
                        from,
                        cert.device.as_ref().map(DeviceKey::as_str),
                        ts(now),
                        from
                    ],
                    |_| Ok(()),
                )?;
                if live.is_none() {
                    return Ok(false);
                }
            }
            insert_cert(&tx, cert)?;
            crate::audit::append_linked(&tx, std::slice::from_ref(audit), linker)?;
            tx.commit().map_err(db)?;
            Ok(true)
        })
        .await
    }

    async fn certificate(&self, fingerprint: &str) -> StoreResult<Option<DeviceCertificate>> {
        self.read(|c| {
            query_opt(
                c,
                "SELECT * FROM device_certificates WHERE fingerprint = ?",
                [fingerprint],
                cert_from_row,
            )
        })
        .await
    }

    async fn bind_certificate(&self, fingerprint: &str, device: &DeviceKey) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "UPDATE device_certificates SET device = ? WHERE fingerprint = ?",
                [device.as_str(), fingerprint],
            )
        })
        .await?;
        Ok(())
    }

    async fn device_certificates(&self, device: &DeviceKey) -> StoreResult<Vec<DeviceCertificate>> {
        self.read(|c| {
            query_all(
                c,
                "SELECT * FROM device_certificates WHERE device = ? ORDER BY issued_at DESC, fingerprint",
                [device.as_str()],
                cert_from_row,
            )
        })
        .await
    }

    async fn revoke_device_certificates(
        &self,
        device: &DeviceKey,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let n = self
            .write(|c| {
                exec(
                    c,
                    "UPDATE device_certificates SET revoked_at = ? WHERE device = ? AND revoked_at IS NULL",
                    params![ts(now), device.as_str()],
                )
            })
            .await?;
        Ok(n as u64)
    }
}
