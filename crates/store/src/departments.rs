//! The department blind index of people.

use crate::{col, exec, query_all, SqliteStore};
use async_trait::async_trait;
use mamori_domain::{PersonId, PersonRecord};
use mamori_ports::{DepartmentStore, StoreError, StoreResult};
use rusqlite::params;

#[async_trait]
impl DepartmentStore for SqliteStore {
    async fn people_in_department(&self, index: &str) -> StoreResult<Vec<PersonId>> {
        let index = index.to_owned();
        let ids = self
            .read(move |c| {
                query_all(
                    c,
                    "SELECT id FROM people WHERE department_index = ? ORDER BY id",
                    [&index],
                    |r| col::<String>(r, "id"),
                )
            })
            .await?;
        ids.iter()
            .map(|i| PersonId::parse(i).map_err(StoreError::from_cause))
            .collect()
    }

    async fn people_without_department_index(&self, limit: u32) -> StoreResult<Vec<PersonRecord>> {
        self.read(move |c| {
            query_all(
                c,
                concat!(
                    crate::people::person_select_sql!(),
                    " WHERE p.department_index IS NULL ORDER BY p.id LIMIT ?"
                ),
                params![i64::from(limit)],
                crate::people::person_from_row,
            )
        })
        .await
    }

    async fn set_department_index(&self, person: &PersonId, index: &str) -> StoreResult<()> {
        self.write(|c| {
            exec(
                c,
                "UPDATE people SET department_index = ? WHERE id = ?",
                params![index, person.as_str()],
            )
        })
        .await?;
        Ok(())
    }
}
