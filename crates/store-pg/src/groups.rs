//! Device groups, their policies, and the profiles on each device.
//!
//! # Concurrency
//!
//! Changing a group's members or policies, deleting a group and storing
//! profile rows take the [`Area::Policies`] lock, as SQLite's single
//! writer serialises them: replacing a group's policies (delete, then
//! insert) run twice at once would otherwise leave the union of both
//! lists, a member added while its group is deleted would outlive it, and
//! two batches of profile rows would interleave row by row (or deadlock on
//! each other's rows) instead of one applying after the other.

use crate::{col, db, exec, from_opt_ts, from_ts, lock, query_all, query_opt, ts, Area, PgStore};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use mamori_domain::{DeviceGroup, DeviceProfile, ProfileState};
use mamori_ports::{GroupStore, StoreError, StoreResult};
use std::collections::HashMap;
use tokio_postgres::{IsolationLevel, Row};

/// Profile rows upserted by one statement (one element of each of nine
/// arrays per row).
const PROFILE_CHUNK: usize = 5_000;

fn profile_from_row(r: &Row) -> StoreResult<DeviceProfile> {
    let state: String = col(r, "state")?;
    Ok(DeviceProfile {
        udid: col(r, "udid")?,
        profile_identifier: col(r, "profile_identifier")?,
        policy_id: col(r, "policy_id")?,
        profile_uuid: col(r, "profile_uuid")?,
        state: ProfileState::parse(&state)
            .ok_or_else(|| StoreError::new(format!("unknown profile state {state:?}")))?,
        command_uuid: col(r, "command_uuid")?,
        attempts: col(r, "attempts")?,
        retry_at: from_opt_ts(col(r, "retry_at")?)?,
        updated_at: from_ts(col(r, "updated_at")?)?,
    })
}

fn profiles_from_rows(rows: &[Row]) -> StoreResult<Vec<DeviceProfile>> {
    rows.iter().map(profile_from_row).collect()
}

fn group_from_row(r: &Row) -> StoreResult<DeviceGroup> {
    let rule: Option<String> = col(r, "rule")?;
    Ok(DeviceGroup {
        id: col(r, "id")?,
        name: col(r, "name")?,
        rule: rule
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(StoreError::from_cause)?,
        members: Vec::new(),
        policies: Vec::new(),
        created_at: from_ts(col(r, "created_at")?)?,
    })
}

/// Every `(group_id, <column>)` pair `sql` selects, added to its group.
async fn fill(
    c: &impl GenericClient,
    sql: &str,
    column: &str,
    groups: &mut [DeviceGroup],
    index: &HashMap<String, usize>,
    pick: fn(&mut DeviceGroup) -> &mut Vec<String>,
) -> StoreResult<()> {
    for r in query_all(c, sql, &[]).await? {
        let g: String = col(&r, "group_id")?;
        if let Some(&i) = index.get(&g) {
            pick(&mut groups[i]).push(col(&r, column)?);
        }
    }
    Ok(())
}

/// Upserts profile rows (distinct keys) from arrays.
async fn upsert_profiles(c: &impl GenericClient, rows: &[&DeviceProfile]) -> StoreResult<()> {
    let udids: Vec<&str> = rows.iter().map(|r| r.udid.as_str()).collect();
    let idents: Vec<&str> = rows.iter().map(|r| r.profile_identifier.as_str()).collect();
    let policies: Vec<&str> = rows.iter().map(|r| r.policy_id.as_str()).collect();
    let uuids: Vec<&str> = rows.iter().map(|r| r.profile_uuid.as_str()).collect();
    let states: Vec<&str> = rows.iter().map(|r| r.state.as_str()).collect();
    let commands: Vec<Option<&str>> = rows.iter().map(|r| r.command_uuid.as_deref()).collect();
    let attempts: Vec<i64> = rows.iter().map(|r| r.attempts).collect();
    let retry: Vec<Option<i64>> = rows.iter().map(|r| r.retry_at.map(ts)).collect();
    let updated: Vec<i64> = rows.iter().map(|r| ts(r.updated_at)).collect();
    exec(
        c,
        "INSERT INTO device_profiles (udid, profile_identifier, policy_id, profile_uuid,
            state, command_uuid, attempts, retry_at, updated_at)
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                              $6::TEXT[], $7::BIGINT[], $8::BIGINT[], $9::BIGINT[])
         ON CONFLICT (udid, profile_identifier) DO UPDATE SET
            policy_id = excluded.policy_id, profile_uuid = excluded.profile_uuid,
            state = excluded.state, command_uuid = excluded.command_uuid,
            attempts = excluded.attempts, retry_at = excluded.retry_at,
            updated_at = excluded.updated_at",
        &[
            &udids, &idents, &policies, &uuids, &states, &commands, &attempts, &retry, &updated,
        ],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl GroupStore for PgStore {
    async fn insert_group(&self, g: &DeviceGroup) -> StoreResult<bool> {
        let rule = g
            .rule
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(StoreError::from_cause)?;
        let c = self.conn().await?;
        // Atomic: a taken ID or name inserts nothing (false).
        let n = exec(
            &c,
            "INSERT INTO device_groups (id, name, rule, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&g.id, &g.name, &rule, &ts(g.created_at)],
        )
        .await?;
        Ok(n == 1)
    }

    async fn list_groups(&self) -> StoreResult<Vec<DeviceGroup>> {
        let mut c = self.conn().await?;
        // One snapshot for the three reads: no member of a group that
        // another server deletes between them.
        let tx = c
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let mut groups = query_all(&tx, "SELECT * FROM device_groups ORDER BY name", &[])
            .await?
            .iter()
            .map(group_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let index: HashMap<String, usize> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.id.clone(), i))
            .collect();
        fill(
            &tx,
            "SELECT group_id, udid FROM device_group_members ORDER BY udid",
            "udid",
            &mut groups,
            &index,
            |g| &mut g.members,
        )
        .await?;
        fill(
            &tx,
            "SELECT group_id, policy_id FROM group_policies ORDER BY policy_id",
            "policy_id",
            &mut groups,
            &index,
            |g| &mut g.policies,
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(groups)
    }

    async fn delete_group(&self, id: &str) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        lock(&tx, &[Area::Policies]).await?;
        exec(
            &tx,
            "DELETE FROM device_group_members WHERE group_id = $1",
            &[&id],
        )
        .await?;
        exec(
            &tx,
            "DELETE FROM group_policies WHERE group_id = $1",
            &[&id],
        )
        .await?;
        let n = exec(&tx, "DELETE FROM device_groups WHERE id = $1", &[&id]).await?;
        tx.commit().await.map_err(db)?;
        Ok(n == 1)
    }

    async fn change_group_members(
        &self,
        id: &str,
        add: &[String],
        remove: &[String],
    ) -> StoreResult<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        lock(&tx, &[Area::Policies]).await?;
        // Arrays, not one statement per device: a repeated device is
        // inserted once (DO NOTHING), a missing one removes nothing.
        exec(
            &tx,
            "INSERT INTO device_group_members (group_id, udid)
             SELECT $1, u FROM UNNEST($2::TEXT[]) AS u
             ON CONFLICT DO NOTHING",
            &[&id, &add],
        )
        .await?;
        exec(
            &tx,
            "DELETE FROM device_group_members WHERE group_id = $1 AND udid = ANY($2)",
            &[&id, &remove],
        )
        .await?;
        tx.commit().await.map_err(db)
    }

    async fn set_group_policies(&self, id: &str, policies: &[String]) -> StoreResult<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        lock(&tx, &[Area::Policies]).await?;
        exec(
            &tx,
            "DELETE FROM group_policies WHERE group_id = $1",
            &[&id],
        )
        .await?;
        exec(
            &tx,
            "INSERT INTO group_policies (group_id, policy_id)
             SELECT $1, p FROM UNNEST($2::TEXT[]) AS p
             ON CONFLICT DO NOTHING",
            &[&id, &policies],
        )
        .await?;
        tx.commit().await.map_err(db)
    }

    async fn device_profiles(&self) -> StoreResult<Vec<DeviceProfile>> {
        let c = self.conn().await?;
        let rows = query_all(
            &c,
            "SELECT * FROM device_profiles ORDER BY udid, profile_identifier",
            &[],
        )
        .await?;
        profiles_from_rows(&rows)
    }

    async fn profiles_of_device(&self, udid: &str) -> StoreResult<Vec<DeviceProfile>> {
        let c = self.conn().await?;
        let rows = query_all(
            &c,
            "SELECT * FROM device_profiles WHERE udid = $1 ORDER BY profile_identifier",
            &[&udid],
        )
        .await?;
        profiles_from_rows(&rows)
    }

    async fn put_device_profiles(&self, rows: &[DeviceProfile]) -> StoreResult<()> {
        // SQLite upserts row after row, so of two rows for one (device,
        // profile) the later wins; one statement may not touch a row twice,
        // so only that later one is sent.
        let mut last: HashMap<(&str, &str), usize> = HashMap::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            last.insert((r.udid.as_str(), r.profile_identifier.as_str()), i);
        }
        let kept: Vec<&DeviceProfile> = rows
            .iter()
            .enumerate()
            .filter(|(i, r)| last.get(&(r.udid.as_str(), r.profile_identifier.as_str())) == Some(i))
            .map(|(_, r)| r)
            .collect();
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        lock(&tx, &[Area::Policies]).await?;
        for chunk in kept.chunks(PROFILE_CHUNK) {
            upsert_profiles(&tx, chunk).await?;
        }
        tx.commit().await.map_err(db)
    }

    async fn device_profile_by_command(
        &self,
        command_uuid: &str,
    ) -> StoreResult<Option<DeviceProfile>> {
        // Command UUIDs are not unique in the schema: the first row, as
        // SQLite's lookup returns (ordered here, so always the same one).
        let c = self.conn().await?;
        query_opt(
            &c,
            "SELECT * FROM device_profiles WHERE command_uuid = $1
             ORDER BY udid, profile_identifier LIMIT 1",
            &[&command_uuid],
        )
        .await?
        .as_ref()
        .map(profile_from_row)
        .transpose()
    }

    async fn delete_device_profile(&self, udid: &str, profile_identifier: &str) -> StoreResult<()> {
        let c = self.conn().await?;
        exec(
            &c,
            "DELETE FROM device_profiles WHERE udid = $1 AND profile_identifier = $2",
            &[&udid, &profile_identifier],
        )
        .await?;
        Ok(())
    }
}
