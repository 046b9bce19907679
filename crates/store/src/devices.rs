//! Enrollments and inventory.

use crate::{col, exec, from_ts, json_col, query_all, query_opt, ts, SqliteStore};
use async_trait::async_trait;
use mamori_domain::{Device, DeviceKey, EnrollmentStatus};
use mamori_ports::{
    AuthenticateRecord, ClearedAssignment, DeviceCounts, DeviceStore, InventoryFields,
    InventoryKind, PushTarget, StoreError, StoreResult, TokenUpdateRecord,
};
use rusqlite::{params, params_from_iter, Connection, Row, TransactionBehavior};
use time::OffsetDateTime;

fn key(udid: &str) -> StoreResult<DeviceKey> {
    DeviceKey::parse(udid).map_err(StoreError::from_cause)
}

fn device_from_row(r: &Row<'_>) -> StoreResult<Device> {
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
impl DeviceStore for SqliteStore {
    async fn authenticate(&self, rec: &AuthenticateRecord) -> StoreResult<()> {
        self.write(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(crate::db)?;
            record_authenticate(&tx, rec)?;
            tx.commit().map_err(crate::db)
        })
        .await
    }

    async fn authenticate_anew(&self, rec: &AuthenticateRecord) -> StoreResult<ClearedAssignment> {
        self.write(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(crate::db)?;
            let person = exec(
                &tx,
                "UPDATE devices SET person_id = NULL WHERE udid = ? AND person_id IS NOT NULL",
                [rec.device.as_str()],
            )?;
            let groups = exec(
                &tx,
                "DELETE FROM device_group_members WHERE udid = ?",
                [rec.device.as_str()],
            )?;
            record_authenticate(&tx, rec)?;
            tx.commit().map_err(crate::db)?;
            Ok(ClearedAssignment {
                person: person > 0,
                static_groups: groups as u64,
            })
        })
        .await
    }

    async fn token_update(&self, rec: &TokenUpdateRecord) -> StoreResult<bool> {
        let n = self
            .write(|c| {
                if let Some(user) = &rec.user_id {
                    exec(
                        c,
                        "INSERT INTO user_channels (udid, user_id, push_token, push_magic, updated_at)
                         SELECT udid, ?1, ?2, ?3, ?4 FROM devices WHERE udid = ?5 AND status != 'checked_out'
                           AND (EXISTS (SELECT 1 FROM user_channels WHERE udid = ?5 AND user_id = ?1)
                                OR (SELECT COUNT(*) FROM user_channels WHERE udid = ?5) < ?6)
                         ON CONFLICT (udid, user_id) DO UPDATE SET push_token = excluded.push_token,
                             push_magic = excluded.push_magic, updated_at = excluded.updated_at",
                        params![
                            user,
                            rec.push_token,
                            rec.push_magic,
                            ts(rec.now),
                            rec.device.as_str(),
                            mamori_ports::MAX_USER_CHANNELS
                        ],
                    )
                } else {
                    exec(
                        c,
                        "UPDATE devices SET status = 'enrolled', push_token = ?, push_magic = ?, topic = ?,
                             unlock_token = COALESCE(?, unlock_token), last_seen_at = ?
                         WHERE udid = ? AND status != 'checked_out'",
                        params![
                            rec.push_token,
                            rec.push_magic,
                            rec.topic,
                            rec.sealed_unlock_token,
                            ts(rec.now),
                            rec.device.as_str()
                        ],
                    )
                }
            })
            .await?;
        Ok(n == 1)
    }

    async fn check_out(&self, device: &DeviceKey, now: OffsetDateTime) -> StoreResult<bool> {
        self.write(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(crate::db)?;
            let n = exec(
                &tx,
                "UPDATE devices SET status = 'checked_out', push_token = NULL, push_magic = NULL,
                     unlock_token = NULL, last_seen_at = ?
                 WHERE udid = ? AND status != 'checked_out'",
                params![ts(now), device.as_str()],
            )?;
            clear_enrollment(&tx, device)?;
            tx.commit().map_err(crate::db)?;
            Ok(n == 1)
        })
        .await
    }

    async fn touch(&self, device: &DeviceKey, now: OffsetDateTime) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "UPDATE devices SET last_seen_at = ? WHERE udid = ?",
                params![ts(now), device.as_str()],
            )
        })
        .await?;
        Ok(())
    }

    async fn device(&self, device: &DeviceKey) -> StoreResult<Option<Device>> {
        self.read(|c| {
            query_opt(
                c,
                "SELECT * FROM devices WHERE udid = ?",
                [device.as_str()],
                device_from_row,
            )
        })
        .await
    }

    async fn list_devices(
        &self,
        after: Option<&DeviceKey>,
        limit: u32,
    ) -> StoreResult<Vec<Device>> {
        let after = after.map_or(String::new(), |d| d.as_str().to_owned());
        self.read_blocking(move |c| {
            query_all(
                c,
                "SELECT * FROM devices WHERE udid > ? ORDER BY udid LIMIT ?",
                params![after, i64::from(limit)],
                device_from_row,
            )
        })
        .await
    }

    async fn sealed_unlock_token(&self, device: &DeviceKey) -> StoreResult<Option<Vec<u8>>> {
        self.read(|c| {
            query_opt(
                c,
                "SELECT unlock_token FROM devices WHERE udid = ?",
                [device.as_str()],
                |r| col::<Option<Vec<u8>>>(r, "unlock_token"),
            )
        })
        .await
        .map(Option::flatten)
    }

    async fn device_counts(&self, seen_since: OffsetDateTime) -> StoreResult<DeviceCounts> {
        let since = ts(seen_since);
        self.read(move |c| {
            let counts = query_opt(
                c,
                "SELECT COALESCE(SUM(status = 'enrolled'), 0) AS enrolled,
                        COALESCE(SUM(status = 'enrolled' AND last_seen_at >= ?), 0) AS seen,
                        COALESCE(SUM(status = 'authenticated'), 0) AS waiting,
                        COALESCE(SUM(status = 'checked_out'), 0) AS gone
                 FROM devices",
                [since],
                |r| {
                    let n = |name: &str| -> StoreResult<u64> {
                        u64::try_from(col::<i64>(r, name)?).map_err(StoreError::from_cause)
                    };
                    Ok(DeviceCounts {
                        enrolled: n("enrolled")?,
                        seen_since: n("seen")?,
                        waiting: n("waiting")?,
                        checked_out: n("gone")?,
                    })
                },
            )?;
            Ok(counts.unwrap_or_default())
        })
        .await
    }

    async fn push_targets(&self, devices: &[DeviceKey]) -> StoreResult<Vec<PushTarget>> {
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        let udids: Vec<String> = devices.iter().map(|d| d.as_str().to_owned()).collect();
        self.read_blocking(move |c| {
            let mut out = Vec::with_capacity(udids.len());
            for chunk in udids.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(",");
                let sql = format!(
                    "SELECT udid, push_token, push_magic, topic FROM devices
                     WHERE status = 'enrolled' AND push_token IS NOT NULL AND push_magic IS NOT NULL
                     AND udid IN ({marks})"
                );
                out.extend(query_all(c, &sql, params_from_iter(chunk), |r| {
                    Ok(PushTarget {
                        device: key(&col::<String>(r, "udid")?)?,
                        token: col(r, "push_token")?,
                        push_magic: col(r, "push_magic")?,
                        topic: col(r, "topic")?,
                    })
                })?);
            }
            Ok(out)
        })
        .await
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
        let raw = raw.to_string();
        self.write(|c| {
            exec(
                c,
                &sql,
                params![
                    raw,
                    f.serial_number,
                    f.model,
                    f.model_name,
                    f.product_name,
                    f.device_name,
                    f.os_version,
                    f.build_version,
                    device.as_str()
                ],
            )
        })
        .await?;
        Ok(())
    }
}

/// Clears the device's outstanding queue and user channels (inside the
/// caller's transaction).
/// The Authenticate upsert and the reset of the earlier enrollment's
/// queue, inside the caller's transaction.
fn record_authenticate(tx: &Connection, rec: &AuthenticateRecord) -> StoreResult<()> {
    let f = &rec.fields;
    exec(
        tx,
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
        params![
            rec.device.as_str(),
            rec.enrollment_id,
            rec.topic,
            f.serial_number,
            f.model,
            f.model_name,
            f.product_name,
            f.device_name,
            f.os_version,
            f.build_version,
            ts(rec.now),
            ts(rec.now)
        ],
    )?;
    clear_enrollment(tx, &rec.device)
}

fn clear_enrollment(c: &Connection, device: &DeviceKey) -> StoreResult<()> {
    exec(
        c,
        "DELETE FROM commands WHERE udid = ? AND state IN ('Queued', 'Delivered', 'NotNow')",
        [device.as_str()],
    )?;
    exec(
        c,
        "DELETE FROM user_channels WHERE udid = ?",
        [device.as_str()],
    )?;
    Ok(())
}
