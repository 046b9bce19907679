//! The department blind index of people.

use crate::{col, exec, query_all, PgStore};
use async_trait::async_trait;
use mamori_domain::{PersonId, PersonRecord};
use mamori_ports::{DepartmentStore, StoreError, StoreResult};

#[async_trait]
impl DepartmentStore for PgStore {
    async fn people_in_department(&self, index: &str) -> StoreResult<Vec<PersonId>> {
        let c = self.conn().await?;
        let rows = query_all(
            &c,
            "SELECT id FROM people WHERE department_index = $1 ORDER BY id",
            &[&index],
        )
        .await?;
        rows.iter()
            .map(|r| PersonId::parse(&col::<String>(r, "id")?).map_err(StoreError::from_cause))
            .collect()
    }

    async fn people_without_department_index(&self, limit: u32) -> StoreResult<Vec<PersonRecord>> {
        let c = self.conn().await?;
        let rows = query_all(
            &c,
            concat!(
                crate::people::person_select_sql!(),
                " WHERE p.department_index IS NULL ORDER BY p.id LIMIT $1"
            ),
            &[&i64::from(limit)],
        )
        .await?;
        crate::people::people_from_rows(&rows)
    }

    async fn set_department_index(&self, person: &PersonId, index: &str) -> StoreResult<()> {
        // One statement: the last of two servers indexing at once wins, as
        // in SQLite (both compute the same index from the same fields).
        let c = self.conn().await?;
        exec(
            &c,
            "UPDATE people SET department_index = $1 WHERE id = $2",
            &[&index, &person.as_str()],
        )
        .await?;
        Ok(())
    }
}
