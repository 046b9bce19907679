//! The command queue.
//!
//! # Concurrency
//!
//! - `enqueue` takes the [`Area::Queue`] lock before it draws sequence
//!   numbers, so batches commit in the order of their numbers, as under
//!   SQLite's single writer: a device never receives a command and then,
//!   later, an older one that was still being queued.
//! - `next_command` picks and marks the command in one statement, locking
//!   the row it picks (`FOR UPDATE`): a command answered meanwhile by
//!   another server's request is re-checked after that request commits and
//!   skipped, so a final answer is never followed by a redelivery. (A
//!   Delivered command is redelivered to a device that asks again before
//!   answering, on any server, as under SQLite.)
//! - `record_result` is one `UPDATE … WHERE state IN (outstanding)`: of two
//!   answers at once, the second re-checks the state the first committed.

use crate::{col, db, exec, from_ts, json_col, lock, query_all, query_opt, ts, Area, PgStore};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use mamori_domain::{AuditEvent, CommandRecord, CommandState, CommandUuid, DeviceKey};
use mamori_ports::{
    ChainLinker, DeliveredCommand, NewCommand, QueueBudget, QueueStore, ResultOutcome, StoreError,
    StoreResult,
};
use time::OffsetDateTime;

/// Commands inserted per statement (their payloads travel in one message).
const ENQUEUE_CHUNK: usize = 1000;

fn state_of(state: &str) -> StoreResult<CommandState> {
    CommandState::parse(state)
        .ok_or_else(|| StoreError::new(format!("unknown command state {state}")))
}

/// Inserts `commands` as Queued, in their order (the caller holds the
/// [`Area::Queue`] lock).
async fn insert_commands(
    tx: &impl GenericClient,
    commands: &[NewCommand],
    now: OffsetDateTime,
) -> StoreResult<()> {
    for chunk in commands.chunks(ENQUEUE_CHUNK) {
        let uuids: Vec<&str> = chunk.iter().map(|c| c.command_uuid.as_str()).collect();
        let udids: Vec<&str> = chunk.iter().map(|c| c.device.as_str()).collect();
        let types: Vec<&str> = chunk.iter().map(|c| c.request_type.as_str()).collect();
        let payloads: Vec<&[u8]> = chunk.iter().map(|c| c.payload.as_slice()).collect();
        // In the batch's order: its sequence numbers follow it.
        exec(
            tx,
            "INSERT INTO commands (command_uuid, udid, request_type, payload, state, queued_at, updated_at)
             SELECT u, d, r, p, 'Queued', $5::bigint, $5::bigint
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bytea[])
                 WITH ORDINALITY AS t(u, d, r, p, n)
             ORDER BY n",
            &[&uuids, &udids, &types, &payloads, &ts(now)],
        )
        .await?;
    }
    Ok(())
}

#[async_trait]
impl QueueStore for PgStore {
    async fn enqueue(&self, commands: &[NewCommand], now: OffsetDateTime) -> StoreResult<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        lock(&tx, &[Area::Queue]).await?;
        insert_commands(&tx, commands, now).await?;
        tx.commit().await.map_err(db)
    }

    async fn enqueue_within(
        &self,
        commands: &[NewCommand],
        budget: QueueBudget<'_>,
        audit: &AuditEvent,
        linker: &dyn ChainLinker,
        now: OffsetDateTime,
    ) -> StoreResult<Option<u64>> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        // The queue's lock also serialises every server's spending.
        lock(&tx, &[Area::Queue]).await?;
        // Rows a window older than the window are removed: a server whose
        // clock runs ahead cannot take others' spending away.
        exec(
            &tx,
            "DELETE FROM queue_budget WHERE name = $1 AND at <= $2",
            &[&budget.name, &ts(now - budget.window - budget.window)],
        )
        .await?;
        let spent: i64 = match query_opt(
            &tx,
            "SELECT COUNT(*)::BIGINT AS n FROM queue_budget WHERE name = $1 AND at > $2",
            &[&budget.name, &ts(now - budget.window)],
        )
        .await?
        {
            Some(row) => col(&row, "n")?,
            None => 0,
        };
        let spent = u64::try_from(spent).unwrap_or(0);
        let more = u64::try_from(commands.len()).unwrap_or(u64::MAX);
        if spent.saturating_add(more) > budget.at_most {
            return Ok(Some(spent));
        }
        insert_commands(&tx, commands, now).await?;
        let uuids: Vec<&str> = commands.iter().map(|c| c.command_uuid.as_str()).collect();
        exec(
            &tx,
            "INSERT INTO queue_budget (name, command_uuid, at)
             SELECT $1, u, $3 FROM UNNEST($2::text[]) AS u",
            &[&budget.name, &uuids, &ts(now)],
        )
        .await?;
        // `Area::Audit` comes after `Area::Queue` in the locking order.
        crate::audit::append_linked(&tx, std::slice::from_ref(audit), linker).await?;
        tx.commit().await.map_err(db)?;
        Ok(None)
    }

    async fn next_command(
        &self,
        device: &DeviceKey,
        include_not_now: bool,
        now: OffsetDateTime,
    ) -> StoreResult<Option<DeliveredCommand>> {
        // One statement: an idle device with an empty queue (the common
        // case) costs one indexed read and writes nothing.
        let c = self.conn().await?;
        let row = query_opt(
            &c,
            "UPDATE commands SET state = 'Delivered', updated_at = $3
             WHERE seq = (
                 SELECT seq FROM commands
                 WHERE udid = $1
                   AND (state IN ('Queued', 'Delivered') OR ($2 AND state = 'NotNow'))
                 ORDER BY seq LIMIT 1
                 FOR UPDATE)
             RETURNING command_uuid, payload",
            &[&device.as_str(), &include_not_now, &ts(now)],
        )
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let uuid: String = col(&r, "command_uuid")?;
        Ok(Some(DeliveredCommand {
            command_uuid: CommandUuid::parse(&uuid).map_err(StoreError::from_cause)?,
            payload: col(&r, "payload")?,
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
        let c = self.conn().await?;
        let row = query_opt(
            &c,
            "UPDATE commands SET state = $1, result = $2, error_chain = $3, updated_at = $4
             WHERE udid = $5 AND command_uuid = $6
               AND state IN ('Queued', 'Delivered', 'NotNow')
             RETURNING request_type",
            &[
                &state.as_str(),
                &result,
                &error_chain,
                &ts(now),
                &device.as_str(),
                &command.as_str(),
            ],
        )
        .await?;
        Ok(match row {
            Some(r) => ResultOutcome::Recorded {
                request_type: col(&r, "request_type")?,
            },
            None => ResultOutcome::UnknownCommand,
        })
    }

    async fn device_commands(
        &self,
        device: &DeviceKey,
        limit: u32,
    ) -> StoreResult<Vec<CommandRecord>> {
        let c = self.conn().await?;
        query_all(
            &c,
            "SELECT command_uuid, udid, request_type, state, queued_at, updated_at, error_chain
             FROM commands WHERE udid = $1 ORDER BY queued_at DESC, seq DESC LIMIT $2",
            &[&device.as_str(), &i64::from(limit)],
        )
        .await?
        .iter()
        .map(|r| {
            let state: String = col(r, "state")?;
            let uuid: String = col(r, "command_uuid")?;
            Ok(CommandRecord {
                command_uuid: CommandUuid::parse(&uuid).map_err(StoreError::from_cause)?,
                udid: device.clone(),
                request_type: col(r, "request_type")?,
                state: state_of(&state)?,
                queued_at: from_ts(col(r, "queued_at")?)?,
                updated_at: from_ts(col(r, "updated_at")?)?,
                result: None,
                error_chain: json_col(col(r, "error_chain")?)?,
            })
        })
        .collect()
    }

    async fn command(&self, command: &CommandUuid) -> StoreResult<Option<CommandRecord>> {
        let c = self.conn().await?;
        let row = query_opt(
            &c,
            "SELECT command_uuid, udid, request_type, state, queued_at, updated_at, result, error_chain
             FROM commands WHERE command_uuid = $1",
            &[&command.as_str()],
        )
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let state: String = col(&r, "state")?;
        let udid: String = col(&r, "udid")?;
        Ok(Some(CommandRecord {
            command_uuid: command.clone(),
            udid: DeviceKey::parse(&udid).map_err(StoreError::from_cause)?,
            request_type: col(&r, "request_type")?,
            state: state_of(&state)?,
            queued_at: from_ts(col(&r, "queued_at")?)?,
            updated_at: from_ts(col(&r, "updated_at")?)?,
            result: json_col(col(&r, "result")?)?,
            error_chain: json_col(col(&r, "error_chain")?)?,
        }))
    }
}
