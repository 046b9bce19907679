//! Enrollments and inventory.

use crate::{db, from_ts, json_col, ts, SqliteStore};
use async_trait::async_trait;
use mamori_core::ports::{
    AuthenticateRecord, DeviceStore, InventoryFields, InventoryKind, PushTarget, StoreError,
    StoreResult, TokenUpdateRecord,
};
use mamori_domain::{Device, DeviceKey, EnrollmentStatus};
use sqlx::Row;
use time::OffsetDateTime;

fn device_from_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<Device> {
    let udid: String = r.try_get("udid").map_err(db)?;
    let status: String = r.try_get("status").map_err(db)?;
    let token: Option<Vec<u8>> = r.try_get("push_token").map_err(db)?;
    let magic: Option<String> = r.try_get("push_magic").map_err(db)?;
    let unlock: Option<Vec<u8>> = r.try_get("unlock_token").map_err(db)?;
    Ok(Device {
        udid: DeviceKey::parse(&udid).map_err(|e| StoreError(e.to_string()))?,
        enrollment_id: r.try_get("enrollment_id").map_err(db)?,
        status: EnrollmentStatus::parse(&status)
            .ok_or_else(|| StoreError(format!("unknown enrollment status {status}")))?,
        topic: r.try_get("topic").map_err(db)?,
        serial_number: r.try_get("serial_number").map_err(db)?,
        model: r.try_get("model").map_err(db)?,
        model_name: r.try_get("model_name").map_err(db)?,
        product_name: r.try_get("product_name").map_err(db)?,
        device_name: r.try_get("device_name").map_err(db)?,
        os_version: r.try_get("os_version").map_err(db)?,
        build_version: r.try_get("build_version").map_err(db)?,
        push_ready: token.is_some() && magic.is_some(),
        has_unlock_token: unlock.is_some(),
        enrolled_at: from_ts(r.try_get("enrolled_at").map_err(db)?)?,
        last_seen_at: from_ts(r.try_get("last_seen_at").map_err(db)?)?,
        device_information: json_col(r.try_get("device_information").map_err(db)?)?,
        security_info: json_col(r.try_get("security_info").map_err(db)?)?,
    })
}

#[async_trait]
impl DeviceStore for SqliteStore {
    async fn authenticate(&self, rec: &AuthenticateRecord) -> StoreResult<()> {
        let f = &rec.fields;
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(
            "INSERT INTO devices (udid, enrollment_id, status, topic, serial_number, model, model_name,
                 product_name, device_name, os_version, build_version, enrolled_at, last_seen_at)
             VALUES (?, ?, 'authenticated', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
        )
        .bind(rec.device.as_str())
        .bind(&rec.enrollment_id)
        .bind(&rec.topic)
        .bind(&f.serial_number)
        .bind(&f.model)
        .bind(&f.model_name)
        .bind(&f.product_name)
        .bind(&f.device_name)
        .bind(&f.os_version)
        .bind(&f.build_version)
        .bind(ts(rec.now))
        .bind(ts(rec.now))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        clear_queue(&mut tx, &rec.device).await?;
        sqlx::query("DELETE FROM user_channels WHERE udid = ?")
            .bind(rec.device.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn token_update(&self, rec: &TokenUpdateRecord) -> StoreResult<bool> {
        let res = if let Some(user) = &rec.user_id {
            sqlx::query(
                "INSERT INTO user_channels (udid, user_id, push_token, push_magic, updated_at)
                 SELECT udid, ?, ?, ?, ? FROM devices WHERE udid = ? AND status != 'checked_out'
                 ON CONFLICT (udid, user_id) DO UPDATE SET push_token = excluded.push_token,
                     push_magic = excluded.push_magic, updated_at = excluded.updated_at",
            )
            .bind(user)
            .bind(&rec.push_token)
            .bind(&rec.push_magic)
            .bind(ts(rec.now))
            .bind(rec.device.as_str())
            .execute(&self.pool)
            .await
        } else {
            sqlx::query(
                "UPDATE devices SET status = 'enrolled', push_token = ?, push_magic = ?, topic = ?,
                     unlock_token = COALESCE(?, unlock_token), last_seen_at = ?
                 WHERE udid = ? AND status != 'checked_out'",
            )
            .bind(&rec.push_token)
            .bind(&rec.push_magic)
            .bind(&rec.topic)
            .bind(&rec.sealed_unlock_token)
            .bind(ts(rec.now))
            .bind(rec.device.as_str())
            .execute(&self.pool)
            .await
        };
        Ok(res.map_err(db)?.rows_affected() == 1)
    }

    async fn check_out(&self, device: &DeviceKey, now: OffsetDateTime) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let res = sqlx::query(
            "UPDATE devices SET status = 'checked_out', push_token = NULL, push_magic = NULL,
                 unlock_token = NULL, last_seen_at = ?
             WHERE udid = ? AND status != 'checked_out'",
        )
        .bind(ts(now))
        .bind(device.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        clear_queue(&mut tx, device).await?;
        sqlx::query("DELETE FROM user_channels WHERE udid = ?")
            .bind(device.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(res.rows_affected() == 1)
    }

    async fn touch(&self, device: &DeviceKey, now: OffsetDateTime) -> StoreResult<()> {
        sqlx::query("UPDATE devices SET last_seen_at = ? WHERE udid = ?")
            .bind(ts(now))
            .bind(device.as_str())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn device(&self, device: &DeviceKey) -> StoreResult<Option<Device>> {
        let row = sqlx::query("SELECT * FROM devices WHERE udid = ?")
            .bind(device.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(device_from_row).transpose()
    }

    async fn list_devices(
        &self,
        after: Option<&DeviceKey>,
        limit: u32,
    ) -> StoreResult<Vec<Device>> {
        let rows = sqlx::query("SELECT * FROM devices WHERE udid > ? ORDER BY udid LIMIT ?")
            .bind(after.map_or("", |d| d.as_str()))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(device_from_row).collect()
    }

    async fn push_targets(&self, devices: &[DeviceKey]) -> StoreResult<Vec<PushTarget>> {
        let mut out = Vec::with_capacity(devices.len());
        for chunk in devices.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "SELECT udid, push_token, push_magic, topic FROM devices
                 WHERE status = 'enrolled' AND push_token IS NOT NULL AND push_magic IS NOT NULL
                 AND udid IN ({marks})"
            );
            let mut q = sqlx::query(&sql);
            for d in chunk {
                q = q.bind(d.as_str());
            }
            for r in q.fetch_all(&self.pool).await.map_err(db)? {
                let udid: String = r.try_get("udid").map_err(db)?;
                out.push(PushTarget {
                    device: DeviceKey::parse(&udid).map_err(|e| StoreError(e.to_string()))?,
                    token: r.try_get("push_token").map_err(db)?,
                    push_magic: r.try_get("push_magic").map_err(db)?,
                    topic: r.try_get("topic").map_err(db)?,
                });
            }
        }
        Ok(out)
    }

    async fn set_inventory(
        &self,
        device: &DeviceKey,
        kind: InventoryKind,
        raw: &serde_json::Value,
        f: &InventoryFields,
    ) -> StoreResult<()> {
        let column = match kind {
            InventoryKind::DeviceInformation => "device_information",
            InventoryKind::SecurityInfo => "security_info",
        };
        let sql = format!(
            "UPDATE devices SET {column} = ?,
                 serial_number = COALESCE(?, serial_number), model = COALESCE(?, model),
                 model_name = COALESCE(?, model_name), product_name = COALESCE(?, product_name),
                 device_name = COALESCE(?, device_name), os_version = COALESCE(?, os_version),
                 build_version = COALESCE(?, build_version)
             WHERE udid = ?"
        );
        sqlx::query(&sql)
            .bind(raw.to_string())
            .bind(&f.serial_number)
            .bind(&f.model)
            .bind(&f.model_name)
            .bind(&f.product_name)
            .bind(&f.device_name)
            .bind(&f.os_version)
            .bind(&f.build_version)
            .bind(device.as_str())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }
}

async fn clear_queue(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    device: &DeviceKey,
) -> StoreResult<()> {
    sqlx::query(
        "DELETE FROM commands WHERE udid = ? AND state IN ('Queued', 'Delivered', 'NotNow')",
    )
    .bind(device.as_str())
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}
