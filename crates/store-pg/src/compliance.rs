//! Compliance rules per group.

use crate::{col, exec, query_all, PgStore};
use async_trait::async_trait;
use mamori_ports::{ComplianceStore, StoreError, StoreResult};

#[async_trait]
impl ComplianceStore for PgStore {
    async fn set_group_compliance(
        &self,
        group: &str,
        rules: Option<&serde_json::Value>,
    ) -> StoreResult<()> {
        let text = rules
            .map(serde_json::to_string)
            .transpose()
            .map_err(StoreError::from_cause)?;
        // One statement either way (an upsert or a delete): no lock.
        let c = self.conn().await?;
        match &text {
            Some(t) => {
                exec(
                    &c,
                    "INSERT INTO group_compliance (group_id, rules) VALUES ($1, $2)
                     ON CONFLICT (group_id) DO UPDATE SET rules = excluded.rules",
                    &[&group, t],
                )
                .await?
            }
            None => {
                exec(
                    &c,
                    "DELETE FROM group_compliance WHERE group_id = $1",
                    &[&group],
                )
                .await?
            }
        };
        Ok(())
    }

    async fn group_compliance(&self) -> StoreResult<Vec<(String, serde_json::Value)>> {
        let c = self.conn().await?;
        let rows = query_all(
            &c,
            "SELECT group_id, rules FROM group_compliance ORDER BY group_id",
            &[],
        )
        .await?;
        rows.iter()
            .map(|r| {
                let t: String = col(r, "rules")?;
                Ok((
                    col(r, "group_id")?,
                    serde_json::from_str(&t).map_err(StoreError::from_cause)?,
                ))
            })
            .collect()
    }
}
