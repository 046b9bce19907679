//! Enrollments and inventory.
//!
//! # Concurrency
//!
//! Every write here is one statement per table on the device's own rows, so
//! PostgreSQL's row locks order two servers' writes to the same device as
//! SQLite's single writer would: the upserts and `UPDATE … WHERE status !=
//! 'checked_out'` re-check their condition on the row as committed by the
//! writer they waited for. The one read-then-write, a user channel's
//! TokenUpdate (insert only while the device is not checked out), locks the
//! device row it reads (`FOR SHARE`), so a concurrent check-out either
//! waits for it (and then clears the new channel) or goes first (and the
//! channel is not written).

use crate::{col, exec, from_ts, json_col, query_all, query_opt, ts, PgStore};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use mamori_domain::{Device, DeviceKey, EnrollmentStatus};
use mamori_ports::{
    AuthenticateRecord, ClearedAssignment, DeviceCounts, DeviceStore, InventoryFields,
    InventoryKind, PushTarget, StoreError, StoreResult, TokenUpdateRecord,
};
use time::OffsetDateTime;
use tokio_postgres::Row;

fn key(udid: &str) -> StoreResult<DeviceKey> {
    DeviceKey::parse(udid).map_err(StoreError::from_cause)
}

fn device_from_row(r: &Row) -> StoreResult<Device> {
    let udid: String = col(r, "udid")?;
    let status: String = col(r, "status")?;
    let token: Option<Vec<u8>> = col(r, "push_token")?;
    let magic: Option<String> = col(r, "push_magic")?;
    let unlock: Option<Vec<u8>> = col(r, "unlock_token")?;
    Ok(Device {
        udid: key(&udid)?,
        enrollment_id: col(r, "enrollment_id")?,
        status: EnrollmentStatus::parse(&status)
            .ok_or_else(|| StoreError::new(format!("unknown enrollment status {status}")))?,
        topic: col(r, "topic")?,
        serial_number: col(r, "serial_number")?,
        model: col(r, "model")?,
        model_name: col(r, "model_name")?,
        product_name: col(r, "product_name")?,
        device_name: col(r, "device_name")?,
        os_version: col(r, "os_version")?,
        build_version: col(r, "build_version")?,
        push_ready: token.is_some() && magic.is_some(),
        has_unlock_token: unlock.is_some(),
        enrolled_at: from_ts(col(r, "enrolled_at")?)?,
        last_seen_at: from_ts(col(r, "last_seen_at")?)?,
        device_information: json_col(col(r, "device_information")?)?,
        security_info: json_col(col(r, "security_info")?)?,
    })
}

#[async_trait]
impl DeviceStore for PgStore {
    async fn authenticate(&self, rec: &AuthenticateRecord) -> StoreResult<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(crate::db)?;
        record_authenticate(&tx, rec).await?;
        tx.commit().await.map_err(crate::db)
    }

    async fn authenticate_anew(&self, rec: &AuthenticateRecord) -> StoreResult<ClearedAssignment> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(crate::db)?;
        let person = exec(
            &tx,
            "UPDATE devices SET person_id = NULL WHERE udid = $1 AND person_id IS NOT NULL",
            &[&rec.device.as_str()],
        )
        .await?;
        let groups = exec(
            &tx,
            "DELETE FROM device_group_members WHERE udid = $1",
            &[&rec.device.as_str()],
        )
        .await?;
        record_authenticate(&tx, rec).await?;
        tx.commit().await.map_err(crate::db)?;
        Ok(ClearedAssignment {
            person: person > 0,
            static_groups: groups,
        })
    }

    async fn token_update(&self, rec: &TokenUpdateRecord) -> StoreResult<bool> {
        let c = self.conn().await?;
        let n = if let Some(user) = &rec.user_id {
            // The device row is read `FOR SHARE`: a check-out running at the
            // same time either finishes first (the row no longer matches) or
            // waits for this insert and then clears the channel.
            exec(
                &c,
                "INSERT INTO user_channels (udid, user_id, push_token, push_magic, updated_at)
                 SELECT udid, $1::text, $2::bytea, $3::text, $4::bigint FROM devices
                 WHERE udid = $5 AND status != 'checked_out'
                   AND (EXISTS (SELECT 1 FROM user_channels WHERE udid = $5 AND user_id = $1)
                        OR (SELECT COUNT(*) FROM user_channels WHERE udid = $5) < $6::bigint)
                 FOR SHARE
                 ON CONFLICT (udid, user_id) DO UPDATE SET push_token = excluded.push_token,
                     push_magic = excluded.push_magic, updated_at = excluded.updated_at",
                &[
                    user,
                    &rec.push_token,
                    &rec.push_magic,
                    &ts(rec.now),
                    &rec.device.as_str(),
                    &mamori_ports::MAX_USER_CHANNELS,
                ],
            )
            .await?
        } else {
            exec(
                &c,
                "UPDATE devices SET status = 'enrolled', push_token = $1, push_magic = $2, topic = $3,
                     unlock_token = COALESCE($4, unlock_token), last_seen_at = $5
                 WHERE udid = $6 AND status != 'checked_out'",
                &[
                    &rec.push_token,
                    &rec.push_magic,
                    &rec.topic,
                    &rec.sealed_unlock_token,
                    &ts(rec.now),
                    &rec.device.as_str(),
                ],
            )
            .await?
        };
        Ok(n == 1)
    }

    async fn check_out(&self, device: &DeviceKey, now: OffsetDateTime) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(crate::db)?;
        let n = exec(
            &tx,
            "UPDATE devices SET status = 'checked_out', push_token = NULL, push_magic = NULL,
                 unlock_token = NULL, last_seen_at = $1
             WHERE udid = $2 AND status != 'checked_out'",
            &[&ts(now), &device.as_str()],
        )
        .await?;
        clear_enrollment(&tx, device).await?;
        tx.commit().await.map_err(crate::db)?;
        Ok(n == 1)
    }

    async fn touch(&self, device: &DeviceKey, now: OffsetDateTime) -> StoreResult<()> {
        let c = self.conn().await?;
        exec(
            &c,
            "UPDATE devices SET last_seen_at = $1 WHERE udid = $2",
            &[&ts(now), &device.as_str()],
        )
        .await?;
        Ok(())
    }

    async fn device(&self, device: &DeviceKey) -> StoreResult<Option<Device>> {
        let c = self.conn().await?;
        query_opt(
            &c,
            "SELECT * FROM devices WHERE udid = $1",
            &[&device.as_str()],
        )
        .await?
        .as_ref()
        .map(device_from_row)
        .transpose()
    }

    async fn list_devices(
        &self,
        after: Option<&DeviceKey>,
        limit: u32,
    ) -> StoreResult<Vec<Device>> {
        let after = after.map_or("", DeviceKey::as_str);
        let c = self.conn().await?;
        query_all(
            &c,
            "SELECT * FROM devices WHERE udid > $1 ORDER BY udid LIMIT $2",
            &[&after, &i64::from(limit)],
        )
        .await?
        .iter()
        .map(device_from_row)
        .collect()
    }

    async fn sealed_unlock_token(&self, device: &DeviceKey) -> StoreResult<Option<Vec<u8>>> {
        let c = self.conn().await?;
        let row = query_opt(
            &c,
            "SELECT unlock_token FROM devices WHERE udid = $1",
            &[&device.as_str()],
        )
        .await?;
        Ok(row
            .map(|r| col::<Option<Vec<u8>>>(&r, "unlock_token"))
            .transpose()?
            .flatten())
    }

    async fn device_counts(&self, seen_since: OffsetDateTime) -> StoreResult<DeviceCounts> {
        let c = self.conn().await?;
        let row = query_opt(
            &c,
            "SELECT COUNT(*) FILTER (WHERE status = 'enrolled') AS enrolled,
                    COUNT(*) FILTER (WHERE status = 'enrolled' AND last_seen_at >= $1) AS seen,
                    COUNT(*) FILTER (WHERE status = 'authenticated') AS waiting,
                    COUNT(*) FILTER (WHERE status = 'checked_out') AS gone
             FROM devices",
            &[&ts(seen_since)],
        )
        .await?;
        let Some(r) = row else {
            return Ok(DeviceCounts::default());
        };
        let n = |name: &str| -> StoreResult<u64> {
            u64::try_from(col::<i64>(&r, name)?).map_err(StoreError::from_cause)
        };
        Ok(DeviceCounts {
            enrolled: n("enrolled")?,
            seen_since: n("seen")?,
            waiting: n("waiting")?,
            checked_out: n("gone")?,
        })
    }

    async fn push_targets(&self, devices: &[DeviceKey]) -> StoreResult<Vec<PushTarget>> {
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        // One array parameter, however many devices.
        let udids: Vec<&str> = devices.iter().map(DeviceKey::as_str).collect();
        let c = self.conn().await?;
        query_all(
            &c,
            "SELECT udid, push_token, push_magic, topic FROM devices
             WHERE status = 'enrolled' AND push_token IS NOT NULL AND push_magic IS NOT NULL
             AND udid = ANY($1)
             ORDER BY udid",
            &[&udids],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(PushTarget {
                device: key(&col::<String>(r, "udid")?)?,
                token: col(r, "push_token")?,
                push_magic: col(r, "push_magic")?,
                topic: col(r, "topic")?,
            })
        })
        .collect()
    }

    async fn set_inventory(
        &self,
        device: &DeviceKey,
        kind: InventoryKind,
        raw: &serde_json::Value,
        f: &InventoryFields,
    ) -> StoreResult<()> {
        let sql = match kind {
            InventoryKind::DeviceInformation => set_inventory_sql("device_information"),
            InventoryKind::SecurityInfo => set_inventory_sql("security_info"),
        };
        let raw = raw.to_string();
        let c = self.conn().await?;
        exec(
            &c,
            &sql,
            &[
                &raw,
                &f.serial_number,
                &f.model,
                &f.model_name,
                &f.product_name,
                &f.device_name,
                &f.os_version,
                &f.build_version,
                &device.as_str(),
            ],
        )
        .await?;
        Ok(())
    }
}

/// The inventory update storing its raw result in `column`.
fn set_inventory_sql(column: &str) -> String {
    format!(
        "UPDATE devices SET {column} = $1,
             serial_number = COALESCE($2, serial_number), model = COALESCE($3, model),
             model_name = COALESCE($4, model_name), product_name = COALESCE($5, product_name),
             device_name = COALESCE($6, device_name), os_version = COALESCE($7, os_version),
             build_version = COALESCE($8, build_version)
         WHERE udid = $9"
    )
}

/// The Authenticate upsert and the reset of the earlier enrollment's
/// queue and user channels, inside the caller's transaction.
async fn record_authenticate(tx: &impl GenericClient, rec: &AuthenticateRecord) -> StoreResult<()> {
    let f = &rec.fields;
    exec(
        tx,
        "INSERT INTO devices (udid, enrollment_id, status, topic, serial_number, model, model_name,
                 product_name, device_name, os_version, build_version, enrolled_at, last_seen_at)
             VALUES ($1, $2, 'authenticated', $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
             ON CONFLICT (udid) DO UPDATE SET
                 enrollment_id = excluded.enrollment_id, status = 'authenticated',
                 topic = excluded.topic,
                 serial_number = COALESCE(excluded.serial_number, devices.serial_number),
                 model = COALESCE(excluded.model, devices.model),
                 model_name = COALESCE(excluded.model_name, devices.model_name),
                 product_name = COALESCE(excluded.product_name, devices.product_name),
                 device_name = COALESCE(excluded.device_name, devices.device_name),
                 os_version = COALESCE(excluded.os_version, devices.os_version),
                 build_version = COALESCE(excluded.build_version, devices.build_version),
                 push_token = NULL, push_magic = NULL, unlock_token = NULL,
                 enrolled_at = excluded.enrolled_at, last_seen_at = excluded.last_seen_at",
        &[
            &rec.device.as_str(),
            &rec.enrollment_id,
            &rec.topic,
            &f.serial_number,
            &f.model,
            &f.model_name,
            &f.product_name,
            &f.device_name,
            &f.os_version,
            &f.build_version,
            &ts(rec.now),
        ],
    )
    .await?;
    clear_enrollment(tx, &rec.device).await
}

/// Clears the device's outstanding queue and user channels (inside the
/// caller's transaction).
async fn clear_enrollment(c: &impl GenericClient, device: &DeviceKey) -> StoreResult<()> {
    exec(
        c,
        "DELETE FROM commands WHERE udid = $1 AND state IN ('Queued', 'Delivered', 'NotNow')",
        &[&device.as_str()],
    )
    .await?;
    exec(
        c,
        "DELETE FROM user_channels WHERE udid = $1",
        &[&device.as_str()],
    )
    .await?;
    Ok(())
}
