//! One consistent view of the whole database, read out while servers go on
//! writing (`mamori backup create` on PostgreSQL): [`PgSnapshot`] reads
//! through the copy port like [`PgStore`] does, but every read runs in one
//! REPEATABLE READ, READ ONLY transaction on a connection of its own, so
//! every table is seen as it stood at one instant — a device with its
//! commands, the audit chain with its checkpoints — whatever committed
//! since.

use crate::copy::{count_rows, read_rows, schema_tables, shape};
use crate::{db, PgStore};
use async_trait::async_trait;
use deadpool_postgres::Object;
use mamori_ports::{
    Cell, CopyCursor, CopyStart, CopyStore, CopyTable, StoreError, StoreResult, TableShape,
};

/// A snapshot of the database, read through [`CopyStore`]; it cannot be
/// written into (`begin_copy` is refused). End it with
/// [`PgSnapshot::finish`]; dropped instead, its connection is closed,
/// which ends the transaction too.
pub struct PgSnapshot {
    /// The connection whose transaction holds the snapshot; `None` once
    /// finished.
    conn: Option<Object>,
    /// Tables read as empty, never queried.
    withheld: Vec<&'static str>,
}

impl std::fmt::Debug for PgSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSnapshot")
            .field("open", &self.conn.is_some())
            .field("withheld", &self.withheld)
            .finish()
    }
}

impl PgStore {
    /// Takes a snapshot of the database as it stands now (its transaction
    /// begins, and its view is fixed, before this returns).
    pub async fn snapshot(&self) -> StoreResult<PgSnapshot> {
        let mut snapshot = PgSnapshot {
            conn: Some(self.conn().await?),
            withheld: Vec::new(),
        };
        // A REPEATABLE READ transaction takes its snapshot at its first
        // statement: the SELECT fixes it here, not at the first read.
        let begun = snapshot
            .client()?
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT 1")
            .await
            .map_err(db);
        if let Err(e) = begun {
            snapshot.abandon();
            return Err(e);
        }
        Ok(snapshot)
    }
}

impl PgSnapshot {
    /// This snapshot, reading `table` as empty without ever querying it
    /// (nor locking it: what is never read cannot be written out, and a
    /// rewrite of that table never waits for this transaction).
    pub fn withholding(mut self, table: CopyTable) -> Self {
        self.withheld.push(table.name);
        self
    }

    fn withholds(&self, table: CopyTable) -> bool {
        self.withheld.contains(&table.name)
    }

    fn client(&self) -> StoreResult<&Object> {
        self.conn
            .as_ref()
            .ok_or_else(|| StoreError::new("the snapshot has ended"))
    }

    /// Closes the connection instead of pooling it: PostgreSQL ends its
    /// transaction.
    fn abandon(&mut self) {
        if let Some(c) = self.conn.take() {
            drop(Object::take(c));
        }
    }

    /// Ends the snapshot (its transaction), giving the connection back.
    pub async fn finish(mut self) -> StoreResult<()> {
        let ended = match self.client() {
            Ok(c) => c.batch_execute("ROLLBACK").await.map_err(db),
            Err(e) => Err(e),
        };
        match ended {
            Ok(()) => {
                // Back to the pool, outside any transaction.
                self.conn = None;
                Ok(())
            }
            Err(e) => {
                self.abandon();
                Err(e)
            }
        }
    }
}

impl Drop for PgSnapshot {
    fn drop(&mut self) {
        self.abandon();
    }
}

#[async_trait]
impl CopyStore for PgSnapshot {
    async fn schema_tables(&self) -> StoreResult<Vec<String>> {
        schema_tables(self.client()?).await
    }

    async fn table_shape(&self, table: CopyTable) -> StoreResult<TableShape> {
        shape(self.client()?, table).await
    }

    async fn count_rows(&self, table: CopyTable) -> StoreResult<u64> {
        if self.withholds(table) {
            return Ok(0);
        }
        count_rows(self.client()?, table).await
    }

    async fn read_rows(
        &self,
        table: CopyTable,
        columns: &[String],
        from: &CopyCursor,
        limit: usize,
    ) -> StoreResult<Vec<Vec<Cell>>> {
        if self.withholds(table) {
            return Ok(Vec::new());
        }
        read_rows(self.client()?, table, columns, from, limit).await
    }

    async fn begin_copy(&self) -> StoreResult<CopyStart> {
        Err(StoreError::new("a snapshot is read only"))
    }
}
