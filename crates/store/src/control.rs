//! Who created, reset or changed the role of which administrator account
//! (`mamori_core::approvals`: such pairs are one person for a while).

use crate::{exec, query_opt, ts, SqliteStore};
use async_trait::async_trait;
use mamori_core::ports::{ControlStore, StoreResult};
use mamori_domain::AdminId;
use rusqlite::params;
use time::OffsetDateTime;

#[async_trait]
impl ControlStore for SqliteStore {
    async fn record_control(
        &self,
        controller: &AdminId,
        controlled: &AdminId,
        kind: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "INSERT INTO admin_control (controller, controlled, kind, at) VALUES (?, ?, ?, ?)",
                params![controller.as_str(), controlled.as_str(), kind, ts(at)],
            )
        })
        .await?;
        Ok(())
    }

    async fn controls_either(
        &self,
        a: &AdminId,
        b: &AdminId,
        since: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.read(|c| {
            query_opt(
                c,
                "SELECT 1 FROM admin_control
                 WHERE ((controller = ?1 AND controlled = ?2) OR (controller = ?2 AND controlled = ?1))
                   AND at >= ?3
                 LIMIT 1",
                params![a.as_str(), b.as_str(), ts(since)],
                |_| Ok(()),
            )
        })
        .await
        .map(|found| found.is_some())
    }
}
