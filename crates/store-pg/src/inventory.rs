//! Installed applications and the inventory refresh schedule.
//!
//! # Concurrency
//!
//! Replacing a device's application list (delete, then insert) is not one
//! statement: two servers replacing the same device's list at once would
//! each delete only the rows committed before them and leave the union of
//! both lists. So the replacement first takes a lock of its device (an
//! advisory lock keyed by the device, in a key space apart from
//! [`crate::Area`]'s): replacements of one device run one after another,
//! those of different devices at once.

use crate::{col, db, exec, query_all, ts, PgStore};
use async_trait::async_trait;
use mamori_domain::DeviceKey;
use mamori_ports::{InstalledApp, InventoryStore, StoreError, StoreResult};
use time::OffsetDateTime;

/// The first key of the per-device locks taken here (two 32-bit keys: a
/// key space apart from the single 64-bit keys of [`crate::lock`]).
const APPS_LOCK_SPACE: i32 = 0x6d61_7070;

fn keys(v: Vec<String>) -> StoreResult<Vec<DeviceKey>> {
    v.iter()
        .map(|u| DeviceKey::parse(u).map_err(StoreError::from_cause))
        .collect()
}

#[async_trait]
impl InventoryStore for PgStore {
    async fn set_device_apps(&self, device: &DeviceKey, apps: &[InstalledApp]) -> StoreResult<()> {
        let udid = device.as_str();
        let bundles: Vec<&str> = apps.iter().map(|a| a.bundle_id.as_str()).collect();
        let names: Vec<Option<&str>> = apps.iter().map(|a| a.name.as_deref()).collect();
        let versions: Vec<Option<&str>> = apps.iter().map(|a| a.version.as_deref()).collect();
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        // Held to the commit: one replacement of this device at a time.
        exec(
            &tx,
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&APPS_LOCK_SPACE, &udid],
        )
        .await?;
        exec(&tx, "DELETE FROM device_apps WHERE udid = $1", &[&udid]).await?;
        if !apps.is_empty() {
            // In the list's order: of two entries with one bundle ID, the
            // first is kept.
            exec(
                &tx,
                "INSERT INTO device_apps (udid, bundle_id, name, version)
                 SELECT $1::text, b, n, v
                 FROM UNNEST($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS t(b, n, v, i)
                 ORDER BY i
                 ON CONFLICT DO NOTHING",
                &[&udid, &bundles, &names, &versions],
            )
            .await?;
        }
        tx.commit().await.map_err(db)
    }

    async fn device_apps(&self, device: &DeviceKey) -> StoreResult<Vec<InstalledApp>> {
        let c = self.conn().await?;
        query_all(
            &c,
            "SELECT bundle_id, name, version FROM device_apps WHERE udid = $1 ORDER BY bundle_id",
            &[&device.as_str()],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(InstalledApp {
                bundle_id: col(r, "bundle_id")?,
                name: col(r, "name")?,
                version: col(r, "version")?,
            })
        })
        .collect()
    }

    async fn devices_with_app(&self, app: &str) -> StoreResult<Vec<DeviceKey>> {
        // As SQLite: `lower` folds ASCII only (the column's collation is
        // "C"), the pattern is lowered whole, and a backslash in it is a
        // plain character (`ESCAPE ''`: SQLite's LIKE has no escape).
        let like = format!("%{}%", app.to_lowercase());
        let c = self.conn().await?;
        let v = query_all(
            &c,
            "SELECT DISTINCT udid FROM device_apps
             WHERE bundle_id = $1 OR lower(name) LIKE $2 ESCAPE '' ORDER BY udid",
            &[&app, &like],
        )
        .await?
        .iter()
        .map(|r| col::<String>(r, "udid"))
        .collect::<StoreResult<Vec<_>>>()?;
        keys(v)
    }

    async fn inventory_due(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<DeviceKey>> {
        let c = self.conn().await?;
        let v = query_all(
            &c,
            "SELECT d.udid FROM devices d
             LEFT JOIN device_inventory i ON i.udid = d.udid
             WHERE d.status = 'enrolled' AND (i.requested_at IS NULL OR i.requested_at < $1)
             ORDER BY i.requested_at IS NOT NULL, i.requested_at, d.udid LIMIT $2",
            &[&ts(before), &i64::from(limit)],
        )
        .await?
        .iter()
        .map(|r| col::<String>(r, "udid"))
        .collect::<StoreResult<Vec<_>>>()?;
        keys(v)
    }

    async fn mark_inventory_requested(
        &self,
        devices: &[DeviceKey],
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        // Each device once (an upsert may not touch a row twice), in one
        // order: two servers marking overlapping sets lock their rows in
        // the same order and cannot deadlock.
        let mut udids: Vec<&str> = devices.iter().map(DeviceKey::as_str).collect();
        udids.sort_unstable();
        udids.dedup();
        if udids.is_empty() {
            return Ok(());
        }
        let c = self.conn().await?;
        exec(
            &c,
            "INSERT INTO device_inventory (udid, requested_at)
             SELECT u, $2::bigint FROM UNNEST($1::text[]) WITH ORDINALITY AS t(u, i) ORDER BY i
             ON CONFLICT (udid) DO UPDATE SET requested_at = excluded.requested_at",
            &[&udids, &ts(now)],
        )
        .await?;
        Ok(())
    }
}
