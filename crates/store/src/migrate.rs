//! Schema migrations: the SQL files under `migrations/sqlite/`, embedded and
//! applied in order, each in its own transaction. The applied version is kept
//! in `PRAGMA user_version`.
//!
//! Databases created by the earlier sqlx-based backend record their applied
//! migrations in `_sqlx_migrations` and leave `user_version` at 0; on first
//! open the highest successfully applied version found there is adopted.

use crate::{db, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

/// Every migration, by version, in order.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_core.sql")),
    (
        2,
        include_str!("../migrations/sqlite/0002_enrollment_links.sql"),
    ),
    (3, include_str!("../migrations/sqlite/0003_admins.sql")),
    (
        4,
        include_str!("../migrations/sqlite/0004_password_set_at.sql"),
    ),
    (5, include_str!("../migrations/sqlite/0005_people.sql")),
    (6, include_str!("../migrations/sqlite/0006_offboarding.sql")),
    (7, include_str!("../migrations/sqlite/0007_approvals.sql")),
    (8, include_str!("../migrations/sqlite/0008_audit_chain.sql")),
    (
        9,
        include_str!("../migrations/sqlite/0009_audit_action_index.sql"),
    ),
    (
        11,
        include_str!("../migrations/sqlite/0011_audit_sinks.sql"),
    ),
    (
        12,
        include_str!("../migrations/sqlite/0012_audit_retention.sql"),
    ),
    (
        13,
        include_str!("../migrations/sqlite/0013_approval_params.sql"),
    ),
    (14, include_str!("../migrations/sqlite/0014_incidents.sql")),
    (
        15,
        include_str!("../migrations/sqlite/0015_audit_access_index.sql"),
    ),
    (16, include_str!("../migrations/sqlite/0016_policies.sql")),
    (17, include_str!("../migrations/sqlite/0017_groups.sql")),
    (18, include_str!("../migrations/sqlite/0018_compliance.sql")),
    (19, include_str!("../migrations/sqlite/0019_inventory.sql")),
    (
        20,
        include_str!("../migrations/sqlite/0020_policy_platforms.sql"),
    ),
    (
        21,
        include_str!("../migrations/sqlite/0021_department_index.sql"),
    ),
    (
        22,
        include_str!("../migrations/sqlite/0022_pending_reenrollments.sql"),
    ),
    (
        23,
        include_str!("../migrations/sqlite/0023_admin_suspension.sql"),
    ),
    (
        24,
        include_str!("../migrations/sqlite/0024_admin_control.sql"),
    ),
    (
        25,
        include_str!("../migrations/sqlite/0025_passkey_activation.sql"),
    ),
    (
        26,
        include_str!("../migrations/sqlite/0026_admin_control_backfill.sql"),
    ),
    (27, include_str!("../migrations/sqlite/0027_job_leases.sql")),
    (28, include_str!("../migrations/sqlite/0028_ephemeral.sql")),
    (
        29,
        include_str!("../migrations/sqlite/0029_read_windows.sql"),
    ),
    (
        30,
        include_str!("../migrations/sqlite/0030_people_key_ring.sql"),
    ),
    (
        31,
        include_str!("../migrations/sqlite/0031_queue_budget.sql"),
    ),
];

/// The newest schema version.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Brings the schema up to date.
pub(crate) fn run(conn: &mut Connection) -> StoreResult<()> {
    adopt_sqlx_history(conn)?;
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    for &(version, sql) in MIGRATIONS {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let current = user_version(&tx)?;
        if current > latest {
            return Err(StoreError::new(format!(
                "database schema version {current} is newer than this server ({latest})"
            )));
        }
        if current < version {
            tx.execute_batch(sql)
                .map_err(|e| StoreError::new(format!("migration {version}: {e}")))?;
            tx.pragma_update(None, "user_version", version)
                .map_err(db)?;
        }
        tx.commit().map_err(db)?;
    }
    Ok(())
}

fn user_version(c: &Connection) -> StoreResult<i64> {
    c.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db)
}

/// Sets `user_version` from sqlx's migration table when it exists and
/// `user_version` was never set.
fn adopt_sqlx_history(conn: &mut Connection) -> StoreResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    if user_version(&tx)? == 0 {
        let has_table = tx
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                [],
                |_| Ok(()),
            )
            .optional()
            .map_err(db)?
            .is_some();
        if has_table {
            let applied: i64 = tx
                .query_row(
                    "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
                    [],
                    |r| r.get(0),
                )
                .map_err(db)?;
            tx.pragma_update(None, "user_version", applied)
                .map_err(db)?;
        }
    }
    tx.commit().map_err(db)
}
