//! The command queue.

use crate::{db, from_ts, json_col, ts, SqliteStore};
use async_trait::async_trait;
use mamori_core::ports::{
    DeliveredCommand, NewCommand, QueueStore, ResultOutcome, StoreError, StoreResult,
};
use mamori_domain::{CommandRecord, CommandState, CommandUuid, DeviceKey};
use sqlx::Row;
use time::OffsetDateTime;

#[async_trait]
impl QueueStore for SqliteStore {
    async fn enqueue(&self, commands: &[NewCommand], now: OffsetDateTime) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        for c in commands {
            sqlx::query(
                "INSERT INTO commands (command_uuid, udid, request_type, payload, state, queued_at, updated_at)
                 VALUES (?, ?, ?, ?, 'Queued', ?, ?)",
            )
            .bind(c.command_uuid.as_str())
            .bind(c.device.as_str())
            .bind(&c.request_type)
            .bind(&c.payload)
            .bind(ts(now))
            .bind(ts(now))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn next_command(
        &self,
        device: &DeviceKey,
        include_not_now: bool,
        now: OffsetDateTime,
    ) -> StoreResult<Option<DeliveredCommand>> {
        // Read first: an idle device with an empty queue (the common case)
        // costs one indexed read and no write transaction.
        let row = sqlx::query(
            "SELECT seq, command_uuid, payload FROM commands
             WHERE udid = ? AND (state IN ('Queued', 'Delivered') OR (? AND state = 'NotNow'))
             ORDER BY seq LIMIT 1",
        )
        .bind(device.as_str())
        .bind(include_not_now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some(r) = row else { return Ok(None) };
        let seq: i64 = r.try_get("seq").map_err(db)?;
        sqlx::query("UPDATE commands SET state = 'Delivered', updated_at = ? WHERE seq = ? AND state IN ('Queued', 'Delivered', 'NotNow')")
            .bind(ts(now))
            .bind(seq)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        let uuid: String = r.try_get("command_uuid").map_err(db)?;
        Ok(Some(DeliveredCommand {
            command_uuid: CommandUuid::parse(&uuid).map_err(|e| StoreError(e.to_string()))?,
            payload: r.try_get("payload").map_err(db)?,
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
        // Only an outstanding command of this very device can be answered.
        let row = sqlx::query(
            "UPDATE commands SET state = ?, result = ?, error_chain = ?, updated_at = ?
             WHERE udid = ? AND command_uuid = ? AND state IN ('Queued', 'Delivered', 'NotNow')
             RETURNING request_type",
        )
        .bind(state.as_str())
        .bind(result.to_string())
        .bind(error_chain.map(|e| e.to_string()))
        .bind(ts(now))
        .bind(device.as_str())
        .bind(command.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        match row {
            Some(r) => Ok(ResultOutcome::Recorded {
                request_type: r.try_get("request_type").map_err(db)?,
            }),
            None => Ok(ResultOutcome::UnknownCommand),
        }
    }

    async fn command(&self, command: &CommandUuid) -> StoreResult<Option<CommandRecord>> {
        let row = sqlx::query(
            "SELECT command_uuid, udid, request_type, state, queued_at, updated_at, result, error_chain
             FROM commands WHERE command_uuid = ?",
        )
        .bind(command.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some(r) = row else { return Ok(None) };
        let state: String = r.try_get("state").map_err(db)?;
        let udid: String = r.try_get("udid").map_err(db)?;
        Ok(Some(CommandRecord {
            command_uuid: command.clone(),
            udid: DeviceKey::parse(&udid).map_err(|e| StoreError(e.to_string()))?,
            request_type: r.try_get("request_type").map_err(db)?,
            state: CommandState::parse(&state)
                .ok_or_else(|| StoreError(format!("unknown command state {state}")))?,
            queued_at: from_ts(r.try_get("queued_at").map_err(db)?)?,
            updated_at: from_ts(r.try_get("updated_at").map_err(db)?)?,
            result: json_col(r.try_get("result").map_err(db)?)?,
            error_chain: json_col(r.try_get("error_chain").map_err(db)?)?,
        }))
    }
}
