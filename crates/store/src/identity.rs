//! Identity changes: SQLite serves one process, whose own cache is told
//! directly by the services; there is no other server to tell.

use crate::SqliteStore;
use async_trait::async_trait;
use mamori_ports::{IdentityChange, IdentityFeed, IdentityListener, StoreResult};

#[async_trait]
impl IdentityFeed for SqliteStore {
    async fn announce_identity_change(&self, _change: &IdentityChange) -> StoreResult<()> {
        Ok(())
    }

    fn watch_identity_changes(&self, _listener: IdentityListener) -> bool {
        false
    }
}
