//! Installed applications and the inventory refresh schedule.

use crate::{col, db, query_all, ts, SqliteStore};
use async_trait::async_trait;
use mamori_domain::DeviceKey;
use mamori_ports::{InstalledApp, InventoryStore, StoreError, StoreResult};
use rusqlite::params;
use time::OffsetDateTime;

fn keys(v: Vec<String>) -> StoreResult<Vec<DeviceKey>> {
    v.iter()
        .map(|u| DeviceKey::parse(u).map_err(StoreError::from_cause))
        .collect()
}

#[async_trait]
impl InventoryStore for SqliteStore {
    async fn set_device_apps(&self, device: &DeviceKey, apps: &[InstalledApp]) -> StoreResult<()> {
        let (udid, apps) = (device.to_string(), apps.to_vec());
        self.write(move |c| {
            let tx = c.transaction().map_err(db)?;
            tx.execute("DELETE FROM device_apps WHERE udid = ?", [&udid])
                .map_err(db)?;
            {
                let mut st = tx
                    .prepare_cached(
                        "INSERT INTO device_apps (udid, bundle_id, name, version) VALUES (?, ?, ?, ?)
                         ON CONFLICT DO NOTHING",
                    )
                    .map_err(db)?;
                for a in &apps {
                    st.execute(params![udid, a.bundle_id, a.name, a.version])
                        .map_err(db)?;
                }
            }
            tx.commit().map_err(db)
        })
        .await
    }

    async fn device_apps(&self, device: &DeviceKey) -> StoreResult<Vec<InstalledApp>> {
        self.read(|c| {
            query_all(
                c,
                "SELECT bundle_id, name, version FROM device_apps WHERE udid = ? ORDER BY bundle_id",
                [device.as_str()],
                |r| {
                    Ok(InstalledApp {
                        bundle_id: col(r, "bundle_id")?,
                        name: col(r, "name")?,
                        version: col(r, "version")?,
                    })
                },
            )
        })
        .await
    }

    async fn devices_with_app(&self, app: &str) -> StoreResult<Vec<DeviceKey>> {
        let (exact, like) = (app.to_owned(), format!("%{}%", app.to_lowercase()));
        let v = self
            .read(move |c| {
                query_all(
                    c,
                    "SELECT DISTINCT udid FROM device_apps
                     WHERE bundle_id = ? OR lower(name) LIKE ? ORDER BY udid",
                    params![exact, like],
                    |r| col::<String>(r, "udid"),
                )
            })
            .await?;
        keys(v)
    }

    async fn inventory_due(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<DeviceKey>> {
        let v = self
            .read(move |c| {
                query_all(
                    c,
                    "SELECT d.udid FROM devices d
                     LEFT JOIN device_inventory i ON i.udid = d.udid
                     WHERE d.status = 'enrolled' AND (i.requested_at IS NULL OR i.requested_at < ?)
                     ORDER BY i.requested_at IS NOT NULL, i.requested_at, d.udid LIMIT ?",
                    params![ts(before), i64::from(limit)],
                    |r| col::<String>(r, "udid"),
                )
            })
            .await?;
        keys(v)
    }

    async fn mark_inventory_requested(
        &self,
        devices: &[DeviceKey],
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let devices: Vec<String> = devices.iter().map(ToString::to_string).collect();
        self.write(move |c| {
            let tx = c.transaction().map_err(db)?;
            {
                let mut st = tx
                    .prepare_cached(
                        "INSERT INTO device_inventory (udid, requested_at) VALUES (?, ?)
                         ON CONFLICT (udid) DO UPDATE SET requested_at = excluded.requested_at",
                    )
                    .map_err(db)?;
                for u in &devices {
                    st.execute(params![u, ts(now)]).map_err(db)?;
                }
            }
            tx.commit().map_err(db)
        })
        .await
    }
}
