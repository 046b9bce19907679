//! Device groups, their policies, and the profiles on each device.

use crate::{col, db, exec, from_opt_ts, from_ts, query_all, query_opt, ts, SqliteStore};
use async_trait::async_trait;
use mamori_domain::{DeviceGroup, DeviceProfile, ProfileState};
use mamori_ports::{GroupStore, StoreError, StoreResult};
use rusqlite::{params, Row};
use std::collections::HashMap;

fn profile_from_row(r: &Row<'_>) -> StoreResult<DeviceProfile> {
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

#[async_trait]
impl GroupStore for SqliteStore {
    async fn insert_group(&self, g: &DeviceGroup) -> StoreResult<bool> {
        let rule = g
            .rule
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(StoreError::from_cause)?;
        let n = self
            .write(|c| {
                exec(
                    c,
                    "INSERT INTO device_groups (id, name, rule, created_at) VALUES (?, ?, ?, ?)
                     ON CONFLICT DO NOTHING",
                    params![g.id, g.name, rule, ts(g.created_at)],
                )
            })
            .await?;
        Ok(n == 1)
    }

    async fn list_groups(&self) -> StoreResult<Vec<DeviceGroup>> {
        self.read_blocking(|c| {
            let mut groups = query_all(c, "SELECT * FROM device_groups ORDER BY name", [], |r| {
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
            })?;
            let index: HashMap<String, usize> = groups
                .iter()
                .enumerate()
                .map(|(i, g)| (g.id.clone(), i))
                .collect();
            for (g, udid) in query_all(
                c,
                "SELECT group_id, udid FROM device_group_members ORDER BY udid",
                [],
                |r| Ok((col::<String>(r, "group_id")?, col::<String>(r, "udid")?)),
            )? {
                if let Some(&i) = index.get(&g) {
                    groups[i].members.push(udid);
                }
            }
            for (g, p) in query_all(
                c,
                "SELECT group_id, policy_id FROM group_policies ORDER BY policy_id",
                [],
                |r| {
                    Ok((
                        col::<String>(r, "group_id")?,
                        col::<String>(r, "policy_id")?,
                    ))
                },
            )? {
                if let Some(&i) = index.get(&g) {
                    groups[i].policies.push(p);
                }
            }
            Ok(groups)
        })
        .await
    }

    async fn delete_group(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |c| {
            let tx = c.transaction().map_err(db)?;
            exec(
                &tx,
                "DELETE FROM device_group_members WHERE group_id = ?",
                [&id],
            )?;
            exec(&tx, "DELETE FROM group_policies WHERE group_id = ?", [&id])?;
            let n = exec(&tx, "DELETE FROM device_groups WHERE id = ?", [&id])?;
            tx.commit().map_err(db)?;
            Ok(n == 1)
        })
        .await
    }

    async fn change_group_members(
        &self,
        id: &str,
        add: &[String],
        remove: &[String],
    ) -> StoreResult<()> {
        let (id, add, remove) = (id.to_owned(), add.to_vec(), remove.to_vec());
        self.write(move |c| {
            let tx = c.transaction().map_err(db)?;
            {
                let mut ins = tx
                    .prepare_cached(
                        "INSERT INTO device_group_members (group_id, udid) VALUES (?, ?)
                         ON CONFLICT DO NOTHING",
                    )
                    .map_err(db)?;
                for u in &add {
                    ins.execute(params![id, u]).map_err(db)?;
                }
                let mut del = tx
                    .prepare_cached(
                        "DELETE FROM device_group_members WHERE group_id = ? AND udid = ?",
                    )
                    .map_err(db)?;
                for u in &remove {
                    del.execute(params![id, u]).map_err(db)?;
                }
            }
            tx.commit().map_err(db)
        })
        .await
    }

    async fn set_group_policies(&self, id: &str, policies: &[String]) -> StoreResult<()> {
        let (id, policies) = (id.to_owned(), policies.to_vec());
        self.write(move |c| {
            let tx = c.transaction().map_err(db)?;
            exec(&tx, "DELETE FROM group_policies WHERE group_id = ?", [&id])?;
            {
                let mut ins = tx
                    .prepare_cached(
                        "INSERT INTO group_policies (group_id, policy_id) VALUES (?, ?)
                         ON CONFLICT DO NOTHING",
                    )
                    .map_err(db)?;
                for p in &policies {
                    ins.execute(params![id, p]).map_err(db)?;
                }
            }
            tx.commit().map_err(db)
        })
        .await
    }

    async fn device_profiles(&self) -> StoreResult<Vec<DeviceProfile>> {
        self.read_blocking(|c| {
            query_all(
                c,
                "SELECT * FROM device_profiles ORDER BY udid, profile_identifier",
                [],
                profile_from_row,
            )
        })
        .await
    }

    async fn profiles_of_device(&self, udid: &str) -> StoreResult<Vec<DeviceProfile>> {
        self.read(|c| {
            query_all(
                c,
                "SELECT * FROM device_profiles WHERE udid = ? ORDER BY profile_identifier",
                [udid],
                profile_from_row,
            )
        })
        .await
    }

    async fn put_device_profiles(&self, rows: &[DeviceProfile]) -> StoreResult<()> {
        let rows = rows.to_vec();
        self.write(move |c| {
            let tx = c.transaction().map_err(db)?;
            {
                let mut st = tx
                    .prepare_cached(
                        "INSERT INTO device_profiles (udid, profile_identifier, policy_id, profile_uuid,
                            state, command_uuid, attempts, retry_at, updated_at)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                         ON CONFLICT (udid, profile_identifier) DO UPDATE SET
                            policy_id = excluded.policy_id, profile_uuid = excluded.profile_uuid,
                            state = excluded.state, command_uuid = excluded.command_uuid,
                            attempts = excluded.attempts, retry_at = excluded.retry_at,
                            updated_at = excluded.updated_at",
                    )
                    .map_err(db)?;
                for r in &rows {
                    st.execute(params![
                        r.udid,
                        r.profile_identifier,
                        r.policy_id,
                        r.profile_uuid,
                        r.state.as_str(),
                        r.command_uuid,
                        r.attempts,
                        r.retry_at.map(ts),
                        ts(r.updated_at)
                    ])
                    .map_err(db)?;
                }
            }
            tx.commit().map_err(db)
        })
        .await
    }

    async fn device_profile_by_command(
        &self,
        command_uuid: &str,
    ) -> StoreResult<Option<DeviceProfile>> {
        self.read(|c| {
            query_opt(
                c,
                "SELECT * FROM device_profiles WHERE command_uuid = ?",
                [command_uuid],
                profile_from_row,
            )
        })
        .await
    }

    async fn delete_device_profile(&self, udid: &str, profile_identifier: &str) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "DELETE FROM device_profiles WHERE udid = ? AND profile_identifier = ?",
                params![udid, profile_identifier],
            )
        })
        .await?;
        Ok(())
    }
}
