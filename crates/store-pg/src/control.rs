//! Who created, reset or changed the role of which administrator account
//! (`mamori_core::admin::approvals`: accounts linked by such rows, directly, in a
//! chain or through a shared controller, are one person for a while).

use crate::{exec, query_opt, ts, PgStore};
use async_trait::async_trait;
use mamori_domain::AdminId;
use mamori_ports::{ControlStore, StoreResult};
use time::OffsetDateTime;

/// How many control rows a chain may climb from each of the two accounts
/// (A created B, B created C, ...): enough for any puppet hierarchy one
/// person bothers to build, small enough to stay a handful of lookups.
const CONTROL_HOPS: i64 = 4;

#[async_trait]
impl ControlStore for PgStore {
    async fn record_control(
        &self,
        controller: &AdminId,
        controlled: &AdminId,
        kind: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        let c = self.conn().await?;
        exec(
            &c,
            "INSERT INTO admin_control (controller, controlled, kind, at) VALUES ($1, $2, $3, $4)",
            &[&controller.as_str(), &controlled.as_str(), &kind, &ts(at)],
        )
        .await?;
        Ok(())
    }

    async fn controls_either(
        &self,
        a: &AdminId,
        b: &AdminId,
        since: OffsetDateTime,
    ) -> StoreResult<bool> {
        // Each side climbs to the accounts that control it, directly or
        // through a chain (A created B, B created C: A controls C), within
        // the window and at most CONTROL_HOPS rows up. The two are one
        // person when the climbs meet: one controls the other, or the same
        // account controls both (A created B and C).
        //
        // The starting rows are typed as the table's columns (text in the
        // "C" collation, BIGINT hops): PostgreSQL refuses a recursive CTE
        // whose two terms disagree on either.
        let c = self.conn().await?;
        let found = query_opt(
            &c,
            "WITH RECURSIVE
               up_a(id, hops) AS (
                 SELECT $1::text COLLATE \"C\", 0::BIGINT
                 UNION
                 SELECT k.controller, up_a.hops + 1
                 FROM admin_control k JOIN up_a ON k.controlled = up_a.id
                 WHERE k.at >= $3 AND up_a.hops < $4
               ),
               up_b(id, hops) AS (
                 SELECT $2::text COLLATE \"C\", 0::BIGINT
                 UNION
                 SELECT k.controller, up_b.hops + 1
                 FROM admin_control k JOIN up_b ON k.controlled = up_b.id
                 WHERE k.at >= $3 AND up_b.hops < $4
               )
             SELECT 1 AS found FROM up_a JOIN up_b ON up_a.id = up_b.id LIMIT 1",
            &[&a.as_str(), &b.as_str(), &ts(since), &CONTROL_HOPS],
        )
        .await?;
        Ok(found.is_some())
    }
}
