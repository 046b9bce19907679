//! Keeping people's blind indexes unique: recognising a UNIQUE violation,
//! naming the index another person holds, and the all-or-nothing batch
//! insert that names the first conflicting row.

use mamori_domain::PersonRecord;
use mamori_ports::{PeopleConflict, PersonIndex, StoreError, StoreResult};
use rusqlite::{params, Connection, ErrorCode, TransactionBehavior};
use std::collections::HashSet;

use crate::{db, query_opt, ts};

/// Whether the statement failed on a UNIQUE constraint (not the primary key).
pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == ErrorCode::ConstraintViolation
                && f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

/// Which of `rec`'s blind indexes another person (not `rec.id`) already
/// holds, e-mail first; `None` when neither.
pub(super) fn taken_index(c: &Connection, rec: &PersonRecord) -> StoreResult<Option<PersonIndex>> {
    let taken = |sql: &str, hash: &str| {
        query_opt(c, sql, params![hash, rec.id.as_str()], |_| Ok(())).map(|o| o.is_some())
    };
    if taken(
        "SELECT 1 FROM people WHERE email_index = ? AND id <> ?",
        &rec.email_index,
    )? {
        return Ok(Some(PersonIndex::Email));
    }
    if taken(
        "SELECT 1 FROM people WHERE user_id_index = ? AND id <> ?",
        &rec.user_id_index,
    )? {
        return Ok(Some(PersonIndex::UserId));
    }
    Ok(None)
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

/// Inserts a batch in one transaction, committed only when every row went
/// in; otherwise names the first row whose index is taken.
pub(super) fn insert_batch(
    c: &mut Connection,
    people: &[PersonRecord],
) -> StoreResult<Result<(), PeopleConflict>> {
    // A row repeating an earlier row's index must fail; rows after it need
    // not be tried (an earlier row may still collide with a stored person,
    // and that one is the first offender).
    let in_batch = first_in_batch_duplicate(people);
    let upto = in_batch.map_or(people.len(), |i| i + 1);
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    {
        let mut person = tx
            .prepare_cached(
                "INSERT INTO people
                 (id, status, departed_at, created_at, updated_at, sealed, email_index,
                  user_id_index, department_index)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .map_err(db)?;
        let mut key = tx
            .prepare_cached(
                "INSERT INTO person_keys (person_id, key_id, wrapped_key) VALUES (?, ?, ?)",
            )
            .map_err(db)?;
        for (row, p) in people[..upto].iter().enumerate() {
            let inserted = person.execute(params![
                p.id.as_str(),
                p.status.as_str(),
                p.departed_at.map(ts),
                ts(p.created_at),
                ts(p.updated_at),
                p.sealed,
                p.email_index,
                p.user_id_index,
                p.department_index
            ]);
            match inserted {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    // Dropping the transaction rolls back every earlier row.
                    return match taken_index(&tx, p)? {
                        Some(index) => Ok(Err(PeopleConflict::Duplicate { row, index })),
                        None => Err(db(e)),
                    };
                }
                Err(e) => return Err(db(e)),
            }
            key.execute(params![p.id.as_str(), p.key_id, p.wrapped_key])
                .map_err(db)?;
        }
    }
    if let Some(row) = in_batch {
        // The repeating row's insert must have failed above; never commit.
        return Err(StoreError::new(format!(
            "batch row {row} repeats an earlier row's index but was not refused"
        )));
    }
    tx.commit().map_err(db)?;
    Ok(Ok(()))
}
