//! Keeping people's blind indexes unique: naming the index another person
//! holds, and the all-or-nothing batch insert that names the first
//! conflicting row.
//!
//! A failed statement aborts a PostgreSQL transaction, so nothing is
//! learnt from a UNIQUE violation after the fact: under the
//! [`Area::People`] lock (every writer of the indexes takes it) the batch
//! is checked against the stored people first, as SQLite would find it
//! inserting row after row, and only then inserted, whole.

use deadpool_postgres::GenericClient;
use mamori_domain::PersonRecord;
use mamori_ports::{PeopleConflict, PersonIndex, StoreError, StoreResult};
use std::collections::{HashMap, HashSet};

use crate::{col, db, exec, lock, query_all, query_opt, ts, Area};

/// Rows inserted by one statement (each row binds one element of each of
/// nine arrays: the parameter limit never applies, the message size does).
const INSERT_CHUNK: usize = 5_000;

/// Which of `rec`'s blind indexes another person (not `rec.id`) already
/// holds, e-mail first; `None` when neither.
pub(super) async fn taken_index(
    c: &impl GenericClient,
    rec: &PersonRecord,
) -> StoreResult<Option<PersonIndex>> {
    if held_by_other(
        c,
        "SELECT 1 AS found FROM people WHERE email_index = $1 AND id <> $2",
        &rec.email_index,
        rec.id.as_str(),
    )
    .await?
    {
        return Ok(Some(PersonIndex::Email));
    }
    if held_by_other(
        c,
        "SELECT 1 AS found FROM people WHERE user_id_index = $1 AND id <> $2",
        &rec.user_id_index,
        rec.id.as_str(),
    )
    .await?
    {
        return Ok(Some(PersonIndex::UserId));
    }
    Ok(None)
}

/// Whether `sql` (an index in `$1`, the person to leave out in `$2`)
/// finds a row.
async fn held_by_other(
    c: &impl GenericClient,
    sql: &str,
    hash: &str,
    id: &str,
) -> StoreResult<bool> {
    Ok(query_opt(c, sql, &[&hash, &id]).await?.is_some())
}

/// The first row of the batch that repeats an earlier row's index, if any.
fn first_in_batch_duplicate(people: &[PersonRecord]) -> Option<usize> {
    let mut emails = HashSet::with_capacity(people.len());
    let mut user_ids = HashSet::with_capacity(people.len());
    people.iter().position(|p| {
        let dup_email = !emails.insert(p.email_index.as_str());
        let dup_user = !user_ids.insert(p.user_id_index.as_str());
        dup_email || dup_user
    })
}

/// Who holds what: person IDs, and the person holding each index.
#[derive(Default)]
struct Holders {
    ids: HashSet<String>,
    emails: HashMap<String, String>,
    user_ids: HashMap<String, String>,
}

impl Holders {
    fn add(&mut self, id: &str, email: &str, user_id: &str) {
        self.ids.insert(id.to_owned());
        self.emails.insert(email.to_owned(), id.to_owned());
        self.user_ids.insert(user_id.to_owned(), id.to_owned());
    }
}

/// The stored people holding any of the batch's IDs or indexes.
async fn stored_holders(c: &impl GenericClient, people: &[PersonRecord]) -> StoreResult<Holders> {
    let ids: Vec<&str> = people.iter().map(|p| p.id.as_str()).collect();
    let emails: Vec<&str> = people.iter().map(|p| p.email_index.as_str()).collect();
    let user_ids: Vec<&str> = people.iter().map(|p| p.user_id_index.as_str()).collect();
    let rows = query_all(
        c,
        "SELECT id, email_index, user_id_index FROM people
         WHERE id = ANY($1) OR email_index = ANY($2) OR user_id_index = ANY($3)",
        &[&ids, &emails, &user_ids],
    )
    .await?;
    let mut h = Holders::default();
    for r in &rows {
        h.add(
            &col::<String>(r, "id")?,
            &col::<String>(r, "email_index")?,
            &col::<String>(r, "user_id_index")?,
        );
    }
    Ok(h)
}

/// The first row that inserting `people` one after another onto `held`
/// would refuse, with the index to name (`None`: its ID is taken, or only
/// the index it already holds itself, which is no index conflict).
///
/// As SQLite refuses a row: its UNIQUE indexes are checked before its
/// primary key, and a UNIQUE failure names the index another person
/// (stored, or an earlier row of the batch) holds, e-mail first.
fn first_refused(
    people: &[PersonRecord],
    mut held: Holders,
) -> Option<(usize, Option<PersonIndex>)> {
    for (row, p) in people.iter().enumerate() {
        let id = p.id.as_str();
        let email = held.emails.get(&p.email_index).map(String::as_str);
        let user_id = held.user_ids.get(&p.user_id_index).map(String::as_str);
        if email.is_some() || user_id.is_some() {
            let index = if email.is_some_and(|o| o != id) {
                Some(PersonIndex::Email)
            } else if user_id.is_some_and(|o| o != id) {
                Some(PersonIndex::UserId)
            } else {
                None
            };
            return Some((row, index));
        }
        if held.ids.contains(id) {
            return Some((row, None));
        }
        held.add(id, &p.email_index, &p.user_id_index);
    }
    None
}

/// Inserts a batch in one transaction, committed only when every row went
/// in; otherwise names the first row whose index is taken.
pub(super) async fn insert_batch(
    c: &mut deadpool_postgres::Object,
    people: &[PersonRecord],
) -> StoreResult<Result<(), PeopleConflict>> {
    // A row repeating an earlier row's index must fail; rows after it need
    // not be tried (an earlier row may still collide with a stored person,
    // and that one is the first offender).
    let in_batch = first_in_batch_duplicate(people);
    let upto = in_batch.map_or(people.len(), |i| i + 1);
    let people = &people[..upto];
    let tx = c.transaction().await.map_err(db)?;
    // Nobody else changes the stored indexes until this commits.
    lock(&tx, &[Area::People]).await?;
    let held = stored_holders(&tx, people).await?;
    if let Some((row, index)) = first_refused(people, held) {
        // Dropping the transaction rolls it back (nothing was written).
        return match index {
            Some(index) => Ok(Err(PeopleConflict::Duplicate { row, index })),
            None => Err(StoreError::new(format!(
                "batch row {row}: person {} already exists",
                people[row].id
            ))),
        };
    }
    if let Some(row) = in_batch {
        // The repeating row must have been refused above; never commit.
        return Err(StoreError::new(format!(
            "batch row {row} repeats an earlier row's index but was not refused"
        )));
    }
    for chunk in people.chunks(INSERT_CHUNK) {
        insert_chunk(&tx, chunk).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(Ok(()))
}

/// Inserts rows and their keys, one statement each, from arrays.
async fn insert_chunk(c: &impl GenericClient, people: &[PersonRecord]) -> StoreResult<()> {
    let ids: Vec<&str> = people.iter().map(|p| p.id.as_str()).collect();
    let status: Vec<&str> = people.iter().map(|p| p.status.as_str()).collect();
    let departed: Vec<Option<i64>> = people.iter().map(|p| p.departed_at.map(ts)).collect();
    let created: Vec<i64> = people.iter().map(|p| ts(p.created_at)).collect();
    let updated: Vec<i64> = people.iter().map(|p| ts(p.updated_at)).collect();
    let sealed: Vec<&[u8]> = people.iter().map(|p| p.sealed.as_slice()).collect();
    let emails: Vec<&str> = people.iter().map(|p| p.email_index.as_str()).collect();
    let user_ids: Vec<&str> = people.iter().map(|p| p.user_id_index.as_str()).collect();
    let departments: Vec<Option<&str>> = people
        .iter()
        .map(|p| p.department_index.as_deref())
        .collect();
    exec(
        c,
        "INSERT INTO people
         (id, status, departed_at, created_at, updated_at, sealed, email_index,
          user_id_index, department_index)
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[],
                              $5::BIGINT[], $6::BYTEA[], $7::TEXT[], $8::TEXT[], $9::TEXT[])",
        &[
            &ids,
            &status,
            &departed,
            &created,
            &updated,
            &sealed,
            &emails,
            &user_ids,
            &departments,
        ],
    )
    .await?;
    let key_ids: Vec<&str> = people.iter().map(|p| p.key_id.as_str()).collect();
    let wrapped: Vec<&[u8]> = people.iter().map(|p| p.wrapped_key.as_slice()).collect();
    exec(
        c,
        "INSERT INTO person_keys (person_id, key_id, wrapped_key)
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BYTEA[])",
        &[&ids, &key_ids, &wrapped],
    )
    .await?;
    Ok(())
}
