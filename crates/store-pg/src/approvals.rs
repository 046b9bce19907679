//! Requests waiting for a second administrator.

use crate::{col, exec, from_opt_ts, from_ts, query_all, query_opt, ts, PgStore};
use async_trait::async_trait;
use mamori_domain::{Approval, ApprovalStatus, DeviceKey};
use mamori_ports::{ApprovalStore, StoreError, StoreResult};
use time::OffsetDateTime;
use tokio_postgres::Row;

fn approval_from_row(r: &Row) -> StoreResult<Approval> {
    let devices: String = col(r, "devices")?;
    let devices: Vec<String> = serde_json::from_str(&devices).map_err(StoreError::from_cause)?;
    let status: String = col(r, "status")?;
    Ok(Approval {
        id: col(r, "id")?,
        action: col(r, "action")?,
        devices: devices
            .iter()
            .map(|d| DeviceKey::parse(d).map_err(StoreError::from_cause))
            .collect::<StoreResult<_>>()?,
        reason: col(r, "reason")?,
        requested_by: col(r, "requested_by")?,
        requested_by_admin: col(r, "requested_by_admin")?,
        requested_at: from_ts(col(r, "requested_at")?)?,
        expires_at: from_ts(col(r, "expires_at")?)?,
        status: ApprovalStatus::parse(&status)
            .ok_or_else(|| StoreError::new(format!("unknown approval status {status:?}")))?,
        decided_by: col(r, "decided_by")?,
        decided_at: from_opt_ts(col(r, "decided_at")?)?,
        params: match col::<Option<String>>(r, "params")? {
            Some(p) => serde_json::from_str(&p).map_err(StoreError::from_cause)?,
            None => serde_json::Value::Null,
        },
        used_at: from_opt_ts(col(r, "used_at")?)?,
    })
}

#[async_trait]
impl ApprovalStore for PgStore {
    async fn insert_approval(&self, a: &Approval) -> StoreResult<()> {
        let devices: Vec<&str> = a.devices.iter().map(DeviceKey::as_str).collect();
        let devices = serde_json::to_string(&devices).map_err(StoreError::from_cause)?;
        let p = (!a.params.is_null())
            .then(|| serde_json::to_string(&a.params))
            .transpose()
            .map_err(StoreError::from_cause)?;
        let c = self.conn().await?;
        exec(
            &c,
            "INSERT INTO approvals (id, action, devices, reason, requested_by,
                requested_by_admin, requested_at, expires_at, status, decided_by, decided_at,
                params, used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            &[
                &a.id,
                &a.action,
                &devices,
                &a.reason,
                &a.requested_by,
                &a.requested_by_admin,
                &ts(a.requested_at),
                &ts(a.expires_at),
                &a.status.as_str(),
                &a.decided_by,
                &a.decided_at.map(ts),
                &p,
                &a.used_at.map(ts),
            ],
        )
        .await?;
        Ok(())
    }

    async fn approval(&self, id: &str) -> StoreResult<Option<Approval>> {
        let c = self.conn().await?;
        query_opt(&c, "SELECT * FROM approvals WHERE id = $1", &[&id])
            .await?
            .as_ref()
            .map(approval_from_row)
            .transpose()
    }

    async fn pending_approvals(&self, now: OffsetDateTime) -> StoreResult<Vec<Approval>> {
        let c = self.conn().await?;
        query_all(
            &c,
            "SELECT * FROM approvals WHERE status = 'pending' AND expires_at > $1
             ORDER BY requested_at, id",
            &[&ts(now)],
        )
        .await?
        .iter()
        .map(approval_from_row)
        .collect()
    }

    async fn decide_approval(
        &self,
        id: &str,
        status: ApprovalStatus,
        decided_by: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        // One statement: of two deciders at once, the second re-checks
        // `status = 'pending'` on the row the first committed and changes
        // nothing.
        let c = self.conn().await?;
        let n = exec(
            &c,
            "UPDATE approvals SET status = $1, decided_by = $2, decided_at = $3
             WHERE id = $4 AND status = 'pending' AND expires_at > $3",
            &[&status.as_str(), &decided_by, &ts(now), &id],
        )
        .await?;
        Ok(n == 1)
    }

    async fn use_approval(&self, id: &str, now: OffsetDateTime) -> StoreResult<bool> {
        // One statement, as `decide_approval`: a request is used once.
        let c = self.conn().await?;
        let n = exec(
            &c,
            "UPDATE approvals SET used_at = $1
             WHERE id = $2 AND status = 'approved' AND used_at IS NULL",
            &[&ts(now), &id],
        )
        .await?;
        Ok(n == 1)
    }
}
