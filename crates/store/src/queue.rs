//! The command queue.

use crate::{col, db, exec, from_ts, json_col, query_opt, ts, SqliteStore};
use async_trait::async_trait;
use mamori_domain::{AuditEvent, CommandRecord, CommandState, CommandUuid, DeviceKey};
use mamori_ports::{
    ChainLinker, DeliveredCommand, NewCommand, QueueBudget, QueueStore, ResultOutcome, StoreError,
    StoreResult,
};
use rusqlite::{params, TransactionBehavior};
use time::OffsetDateTime;

/// Inserts `commands` as Queued, in their order.
fn insert_commands(
    tx: &rusqlite::Transaction<'_>,
    commands: &[NewCommand],
    now: OffsetDateTime,
) -> StoreResult<()> {
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO commands (command_uuid, udid, request_type, payload, state, queued_at, updated_at)
             VALUES (?, ?, ?, ?, 'Queued', ?, ?)",
        )
        .map_err(db)?;
    for cmd in commands {
        stmt.execute(params![
            cmd.command_uuid.as_str(),
            cmd.device.as_str(),
            cmd.request_type,
            cmd.payload,
            ts(now),
            ts(now)
        ])
        .map_err(db)?;
    }
    Ok(())
}

#[async_trait]
impl QueueStore for SqliteStore {
    async fn enqueue(&self, commands: &[NewCommand], now: OffsetDateTime) -> StoreResult<()> {
        // Up to tens of thousands of rows: off the runtime threads.
        let commands = commands.to_vec();
        self.write_blocking(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            insert_commands(&tx, &commands, now)?;
            tx.commit().map_err(db)
        })
        .await
    }

    async fn enqueue_within(
        &self,
        commands: &[NewCommand],
        budget: QueueBudget<'_>,
        audit: &AuditEvent,
        linker: &dyn ChainLinker,
        now: OffsetDateTime,
    ) -> StoreResult<Option<u64>> {
        let name = budget.name;
        let (window, at_most) = (budget.window, budget.at_most);
        // One writer: judged and spent in one transaction (within the
        // per-request threshold: a few commands, written inline).
        self.write(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            // Rows a window older than the window are removed: a server
            // whose clock runs ahead cannot take others' spending away.
            exec(
                &tx,
                "DELETE FROM queue_budget WHERE name = ? AND at <= ?",
                params![name, ts(now - window - window)],
            )?;
            let spent: i64 = query_opt(
                &tx,
                "SELECT COUNT(*) AS n FROM queue_budget WHERE name = ? AND at > ?",
                params![name, ts(now - window)],
                |row| col(row, "n"),
            )?
            .unwrap_or(0);
            let spent = u64::try_from(spent).unwrap_or(0);
            let more = u64::try_from(commands.len()).unwrap_or(u64::MAX);
            if spent.saturating_add(more) > at_most {
                return Ok(Some(spent));
            }
            insert_commands(&tx, commands, now)?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO queue_budget (name, command_uuid, at) VALUES (?, ?, ?)",
                    )
                    .map_err(db)?;
                for cmd in commands {
                    stmt.execute(params![name, cmd.command_uuid.as_str(), ts(now)])
                        .map_err(db)?;
                }
            }
            crate::audit::append_linked(&tx, std::slice::from_ref(audit), linker)?;
            tx.commit().map_err(db)?;
            Ok(None)
        })
        .await
    }

    async fn next_command(
        &self,
        device: &DeviceKey,
        include_not_now: bool,
        now: OffsetDateTime,
    ) -> StoreResult<Option<DeliveredCommand>> {
        // Read first: an idle device with an empty queue (the common case)
        // costs one indexed read on a reader connection and no write.
        let row = self
            .read(|c| {
                query_opt(
                    c,
                    "SELECT seq, command_uuid, payload FROM commands
                     WHERE udid = ? AND (state IN ('Queued', 'Delivered') OR (? AND state = 'NotNow'))
                     ORDER BY seq LIMIT 1",
                    params![device.as_str(), include_not_now],
                    |r| {
                        Ok((
                            col::<i64>(r, "seq")?,
                            col::<String>(r, "command_uuid")?,
                            col::<Vec<u8>>(r, "payload")?,
                        ))
                    },
                )
            })
            .await?;
        let Some((seq, uuid, payload)) = row else {
            return Ok(None);
        };
        self.write(|c| {
            exec(
                c,
                "UPDATE commands SET state = 'Delivered', updated_at = ? WHERE seq = ? AND state IN ('Queued', 'Delivered', 'NotNow')",
                params![ts(now), seq],
            )
        })
        .await?;
        Ok(Some(DeliveredCommand {
            command_uuid: CommandUuid::parse(&uuid).map_err(StoreError::from_cause)?,
            payload,
        }))
    }

    async fn record_result(
        &self,
        device: &DeviceKey,
        command: &CommandUuid,
        state: CommandState,
        result: &serde_json::Value,
        error_chain: Option<&serde_json::Value>,
        now: OffsetDateTime,
    ) -> StoreResult<ResultOutcome> {
        let result = result.to_string();
        let error_chain = error_chain.map(ToString::to_string);
        // Only an outstanding command of this very device can be answered.
        let request_type = self
            .write(|c| {
                query_opt(
                    c,
                    "UPDATE commands SET state = ?, result = ?, error_chain = ?, updated_at = ?
                     WHERE udid = ? AND command_uuid = ? AND state IN ('Queued', 'Delivered', 'NotNow')
                     RETURNING request_type",
                    params![
                        state.as_str(),
                        result,
                        error_chain,
                        ts(now),
                        device.as_str(),
                        command.as_str()
                    ],
                    |r| col::<String>(r, "request_type"),
                )
            })
            .await?;
        Ok(match request_type {
            Some(request_type) => ResultOutcome::Recorded { request_type },
            None => ResultOutcome::UnknownCommand,
        })
    }

    async fn device_commands(
        &self,
        device: &DeviceKey,
        limit: u32,
    ) -> StoreResult<Vec<CommandRecord>> {
        let device = device.clone();
        self.read(move |c| {
            crate::query_all(
                c,
                "SELECT command_uuid, udid, request_type, state, queued_at, updated_at, error_chain
                 FROM commands WHERE udid = ? ORDER BY queued_at DESC, seq DESC LIMIT ?",
                params![device.as_str(), i64::from(limit)],
                |r| {
                    let state: String = col(r, "state")?;
                    let uuid: String = col(r, "command_uuid")?;
                    Ok(CommandRecord {
                        command_uuid: CommandUuid::parse(&uuid).map_err(StoreError::from_cause)?,
                        udid: device.clone(),
                        request_type: col(r, "request_type")?,
                        state: CommandState::parse(&state).ok_or_else(|| {
                            StoreError::new(format!("unknown command state {state}"))
                        })?,
                        queued_at: from_ts(col(r, "queued_at")?)?,
                        updated_at: from_ts(col(r, "updated_at")?)?,
                        result: None,
                        error_chain: json_col(col(r, "error_chain")?)?,
                    })
                },
            )
        })
        .await
    }

    async fn command(&self, command: &CommandUuid) -> StoreResult<Option<CommandRecord>> {
        self.read(|c| {
            query_opt(
                c,
                "SELECT command_uuid, udid, request_type, state, queued_at, updated_at, result, error_chain
                 FROM commands WHERE command_uuid = ?",
                [command.as_str()],
                |r| {
                    let state: String = col(r, "state")?;
                    let udid: String = col(r, "udid")?;
                    Ok(CommandRecord {
                        command_uuid: command.clone(),
                        udid: DeviceKey::parse(&udid).map_err(StoreError::from_cause)?,
                        request_type: col(r, "request_type")?,
                        state: CommandState::parse(&state)
                            .ok_or_else(|| StoreError::new(format!("unknown command state {state}")))?,
                        queued_at: from_ts(col(r, "queued_at")?)?,
                        updated_at: from_ts(col(r, "updated_at")?)?,
                        result: json_col(col(r, "result")?)?,
                        error_chain: json_col(col(r, "error_chain")?)?,
                    })
                },
            )
        })
        .await
    }
}
