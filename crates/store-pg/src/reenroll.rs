//! Device identities held back from a live enrollment until an
//! administrator decides (`mamori_core::device::reenroll`).
//!
//! # Concurrency
//!
//! Every write is one statement per table on the held identity's own row
//! (the renewal of a hold is an upsert whose condition PostgreSQL re-checks
//! on the committed row), so two servers' writes to one hold are ordered by
//! its row lock, as SQLite's single writer orders them; no advisory lock is
//! needed.

use crate::{col, db, exec, from_ts, query_all, query_opt, ts, PgStore};
use async_trait::async_trait;
use mamori_domain::DeviceKey;
use mamori_ports::{
    AuthenticateRecord, InventoryFields, PendingPush, PendingReenrollment, ReenrollmentStore,
    StoreError, StoreResult,
};
use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio_postgres::Row;

fn fields_json(f: &InventoryFields) -> String {
    json!({
        "serial_number": f.serial_number,
        "model": f.model,
        "model_name": f.model_name,
        "product_name": f.product_name,
        "device_name": f.device_name,
        "os_version": f.os_version,
        "build_version": f.build_version,
    })
    .to_string()
}

fn fields_from(text: &str) -> StoreResult<InventoryFields> {
    let v: Value = serde_json::from_str(text).map_err(StoreError::from_cause)?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(InventoryFields {
        serial_number: s("serial_number"),
        model: s("model"),
        model_name: s("model_name"),
        product_name: s("product_name"),
        device_name: s("device_name"),
        os_version: s("os_version"),
        build_version: s("build_version"),
    })
}

fn held_from_row(r: &Row) -> StoreResult<PendingReenrollment> {
    let udid: String = col(r, "udid")?;
    let fields: String = col(r, "fields")?;
    let token: Option<Vec<u8>> = col(r, "push_token")?;
    let magic: Option<String> = col(r, "push_magic")?;
    Ok(PendingReenrollment {
        fingerprint: col(r, "fingerprint")?,
        authenticate: AuthenticateRecord {
            device: DeviceKey::parse(&udid).map_err(StoreError::from_cause)?,
            enrollment_id: col(r, "enrollment_id")?,
            topic: col(r, "topic")?,
            fields: fields_from(&fields)?,
            now: from_ts(col(r, "requested_at")?)?,
        },
        source: col(r, "source")?,
        push: match (token, magic) {
            (Some(token), Some(magic)) => Some(PendingPush {
                token,
                magic,
                sealed_unlock_token: col(r, "unlock_token")?,
            }),
            _ => None,
        },
    })
}

#[async_trait]
impl ReenrollmentStore for PgStore {
    async fn hold_reenrollment(&self, p: &PendingReenrollment) -> StoreResult<bool> {
        let a = &p.authenticate;
        let fields = fields_json(&a.fields);
        // A hold is renewed only for the device it was made for: it never
        // moves to another one (that would retarget an identity without an
        // alert).
        let c = self.conn().await?;
        let n = exec(
            &c,
            "INSERT INTO pending_reenrollments
                 (fingerprint, udid, enrollment_id, topic, fields, source, requested_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (fingerprint) DO UPDATE SET
                 enrollment_id = excluded.enrollment_id,
                 topic = excluded.topic, fields = excluded.fields,
                 source = excluded.source, requested_at = excluded.requested_at
             WHERE pending_reenrollments.udid = excluded.udid",
            &[
                &p.fingerprint,
                &a.device.as_str(),
                &a.enrollment_id,
                &a.topic,
                &fields,
                &p.source,
                &ts(a.now),
            ],
        )
        .await?;
        Ok(n == 1)
    }

    async fn set_held_push(&self, fingerprint: &str, push: &PendingPush) -> StoreResult<bool> {
        let c = self.conn().await?;
        let n = exec(
            &c,
            "UPDATE pending_reenrollments SET push_token = $1, push_magic = $2, unlock_token = $3
             WHERE fingerprint = $4",
            &[
                &push.token,
                &push.magic,
                &push.sealed_unlock_token,
                &fingerprint,
            ],
        )
        .await?;
        Ok(n == 1)
    }

    async fn held_reenrollment(
        &self,
        fingerprint: &str,
    ) -> StoreResult<Option<PendingReenrollment>> {
        let c = self.conn().await?;
        query_opt(
            &c,
            "SELECT * FROM pending_reenrollments WHERE fingerprint = $1",
            &[&fingerprint],
        )
        .await?
        .as_ref()
        .map(held_from_row)
        .transpose()
    }

    async fn held_reenrollments(
        &self,
        device: Option<&DeviceKey>,
    ) -> StoreResult<Vec<PendingReenrollment>> {
        let c = self.conn().await?;
        let rows = match device {
            Some(d) => {
                query_all(
                    &c,
                    "SELECT * FROM pending_reenrollments WHERE udid = $1
                     ORDER BY requested_at, fingerprint",
                    &[&d.as_str()],
                )
                .await?
            }
            None => {
                query_all(
                    &c,
                    "SELECT * FROM pending_reenrollments ORDER BY requested_at, fingerprint",
                    &[],
                )
                .await?
            }
        };
        rows.iter().map(held_from_row).collect()
    }

    async fn release_reenrollment(&self, fingerprint: &str) -> StoreResult<bool> {
        let c = self.conn().await?;
        let n = exec(
            &c,
            "DELETE FROM pending_reenrollments WHERE fingerprint = $1",
            &[&fingerprint],
        )
        .await?;
        Ok(n == 1)
    }

    async fn revoke_held(&self, fingerprint: &str, now: OffsetDateTime) -> StoreResult<bool> {
        // Only this certificate: no certificate is ever renewed from a held
        // one (a SCEP renewal needs a signer bound to an enrollment and not
        // held, `mamori_core::device::scep`), so no `renewed_from` chain leads here.
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        exec(
            &tx,
            "UPDATE device_certificates SET revoked_at = $1
             WHERE fingerprint = $2 AND revoked_at IS NULL",
            &[&ts(now), &fingerprint],
        )
        .await?;
        let n = exec(
            &tx,
            "DELETE FROM pending_reenrollments WHERE fingerprint = $1",
            &[&fingerprint],
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(n == 1)
    }
}
