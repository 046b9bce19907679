//! Compliance rules per group.

use crate::{col, exec, query_all, SqliteStore};
use async_trait::async_trait;
use mamori_ports::{ComplianceStore, StoreError, StoreResult};
use rusqlite::params;

#[async_trait]
impl ComplianceStore for SqliteStore {
    async fn set_group_compliance(
        &self,
        group: &str,
        rules: Option<&serde_json::Value>,
    ) -> StoreResult<()> {
        let text = rules
            .map(serde_json::to_string)
            .transpose()
            .map_err(StoreError::from_cause)?;
        self.write(|c| match &text {
            Some(t) => exec(
                c,
                "INSERT INTO group_compliance (group_id, rules) VALUES (?, ?)
                 ON CONFLICT (group_id) DO UPDATE SET rules = excluded.rules",
                params![group, t],
            ),
            None => exec(
                c,
                "DELETE FROM group_compliance WHERE group_id = ?",
                [group],
            ),
        })
        .await?;
        Ok(())
    }

    async fn group_compliance(&self) -> StoreResult<Vec<(String, serde_json::Value)>> {
        self.read(|c| {
            query_all(c, "SELECT group_id, rules FROM group_compliance", [], |r| {
                let t: String = col(r, "rules")?;
                Ok((
                    col(r, "group_id")?,
                    serde_json::from_str(&t).map_err(StoreError::from_cause)?,
                ))
            })
        })
        .await
    }
}
