//! Bulk import of people from HR's CSV: every row checked before
//! anything is written, with an error per row.

use super::*;
use crate::access::permit::PeopleWrite;
use crate::access::Authorized;
use crate::access::ClientContext;
use crate::{CoreError, CoreResult, Services};
use mamori_domain::PersonRecord;
use mamori_domain::{AuditAction, Outcome};
use mamori_domain::{EmploymentStatus, PersonalFields};
use mamori_ports::PeopleConflict;
use serde::Serialize;
use std::collections::HashMap;
use time::OffsetDateTime;

/// Most people one import may carry.
pub const MAX_IMPORT_ROWS: usize = 200_000;

/// What an import would do (see `Services::preview_people_csv`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportPreview {
    /// People it would add (when no row is refused).
    pub people: usize,
    /// Of them, marked departed.
    pub departed: usize,
    /// Rows refused, and why; with any, nothing is imported.
    pub errors: Vec<RowError>,
}

/// One refused row of an import (1-based, after the header; the text never
/// repeats the row's values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// Line number in the file (the header is line 1).
    pub line: usize,
    /// What is wrong.
    pub error: String,
}

fn clean(v: &str) -> String {
    v.trim().to_owned()
}

fn printable(v: &str, what: &str, max: usize) -> Result<(), String> {
    if v.chars().count() > max {
        return Err(format!("{what} is longer than {max} characters"));
    }
    if v.chars().any(char::is_control) {
        return Err(format!("{what} contains control characters"));
    }
    Ok(())
}

fn check_email(v: &str) -> Result<(), String> {
    printable(v, "email", 254)?;
    let ok = match v.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !v.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err("email is not a valid address".into())
    }
}

/// Validates and normalises a complete set of fields.
pub fn validate_fields(f: &mut PersonalFields) -> Result<(), String> {
    f.name = clean(&f.name);
    f.user_id = clean(&f.user_id);
    f.email = clean(&f.email).to_lowercase();
    f.department = f.department.as_deref().map(clean).filter(|d| !d.is_empty());
    f.phone = f.phone.as_deref().map(clean).filter(|p| !p.is_empty());
    if f.name.is_empty() {
        return Err("name is required".into());
    }
    printable(&f.name, "name", 200)?;
    if f.user_id.is_empty() {
        return Err("user_id is required".into());
    }
    printable(&f.user_id, "user_id", 64)?;
    if f.user_id.chars().any(char::is_whitespace) {
        return Err("user_id contains spaces".into());
    }
    if f.email.is_empty() {
        return Err("email is required".into());
    }
    check_email(&f.email)?;
    if let Some(d) = &f.department {
        printable(d, "department", 100)?;
    }
    if let Some(p) = &f.phone {
        printable(p, "phone", 32)?;
        if !p
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')' | '.'))
        {
            return Err("phone may hold only digits, spaces and + - ( ) .".into());
        }
    }
    Ok(())
}

pub(super) fn parse_status(s: Option<&str>) -> Result<EmploymentStatus, String> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(EmploymentStatus::Active),
        Some(s) => EmploymentStatus::parse(s)
            .ok_or_else(|| "status must be active, on_leave or departed".to_owned()),
    }
}

impl Services {
    /// Imports people from CSV (header: name,user_id,email,department,phone,status
    /// in any order; department, phone and status optional). All rows are
    /// checked first; any bad row refuses the whole file (nothing stored)
    /// and every bad row is reported.
    pub async fn import_people_csv(
        &self,
        proof: &Authorized<PeopleWrite>,
        ctx: &ClientContext,
        data: &[u8],
    ) -> CoreResult<usize> {
        let actor = proof.actor();
        let (records, lines, mut errors) = self.parse_import(data).await?;
        if errors.is_empty() {
            if let Err(c) = self.ports.people.insert_people(&records).await? {
                let PeopleConflict::Duplicate { row, .. } = &c;
                errors.push(RowError {
                    line: lines.get(*row).copied().unwrap_or(0),
                    error: Self::conflict(&c),
                });
            }
        }
        if !errors.is_empty() {
            self.audit(
                self.audit_record(
                    &actor.label(),
                    ctx,
                    AuditAction::PeopleImport,
                    Outcome::Failure,
                )
                .detail(format!("rows refused={}", errors.len())),
            )
            .await?;
            tracing::warn!(rows = errors.len(), "people import refused");
            return Err(CoreError::Rows(
                errors.into_iter().map(|e| (e.line, e.error)).collect(),
            ));
        }
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::PeopleImport,
                Outcome::Success,
            )
            .detail(format!("people={}", records.len())),
        )
        .await?;
        Ok(records.len())
    }

    /// Reads an import: its header, then every row checked and sealed.
    async fn parse_import(
        &self,
        data: &[u8],
    ) -> CoreResult<(Vec<PersonRecord>, Vec<usize>, Vec<RowError>)> {
        let key = self.index_key().await?;
        let now = self.clock.now();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(data);
        let headers = reader
            .headers()
            .map_err(|e| CoreError::BadRequest(format!("CSV header: {e}")))?
            .clone();
        let col = csv_columns(&headers)?;
        self.check_rows(&mut reader, &col, &key, now)
    }

    /// What importing `data` would do, nothing written: the people it
    /// would add (and how many of them departed), and every row it would
    /// refuse and why, conflicts with people already known included.
    ///
    /// Recorded (how many rows, how many refused; no value), as the check
    /// tells whether an e-mail or user ID is known.
    pub async fn preview_people_csv(
        &self,
        by: &Authorized<PeopleWrite>,
        ctx: &ClientContext,
        data: &[u8],
    ) -> CoreResult<ImportPreview> {
        let (records, lines, mut errors) = self.parse_import(data).await?;
        let rows = records.len() + errors.len();
        for (rec, line) in records.iter().zip(&lines) {
            let known = [
                (mamori_ports::PersonIndex::Email, &rec.email_index, "email"),
                (
                    mamori_ports::PersonIndex::UserId,
                    &rec.user_id_index,
                    "user_id",
                ),
            ];
            for (index, hash, what) in known {
                if self
                    .ports
                    .people
                    .person_by_index(index, hash)
                    .await?
                    .is_some()
                {
                    errors.push(RowError {
                        line: *line,
                        error: format!("a person with this {what} exists"),
                    });
                    break;
                }
            }
        }
        errors.sort_by_key(|e| e.line);
        self.audit(
            self.audit_record(
                &by.label(),
                ctx,
                AuditAction::PeopleImport,
                Outcome::Success,
            )
            .detail(format!(
                "check only, nothing written: rows={rows} refused={}",
                errors.len()
            )),
        )
        .await?;
        Ok(ImportPreview {
            people: records.len(),
            departed: records
                .iter()
                .filter(|r| r.status == EmploymentStatus::Departed)
                .count(),
            errors,
        })
    }

    /// Checks every row of an import and seals the good ones; returns the
    /// records, the line of each, and an error per bad row.
    fn check_rows(
        &self,
        reader: &mut csv::Reader<&[u8]>,
        col: &HashMap<String, usize>,
        key: &[u8],
        now: OffsetDateTime,
    ) -> CoreResult<(Vec<PersonRecord>, Vec<usize>, Vec<RowError>)> {
        let get = |rec: &csv::StringRecord, name: &str| -> Option<String> {
            col.get(name).and_then(|i| rec.get(*i)).map(str::to_owned)
        };
        let mut records = Vec::new();
        let mut errors = Vec::new();
        let mut lines = Vec::new();
        let mut seen_email = HashMap::new();
        let mut seen_user = HashMap::new();
        for (n, row) in reader.records().enumerate() {
            let line = n + 2;
            if records.len() + errors.len() >= MAX_IMPORT_ROWS {
                return Err(CoreError::BadRequest(format!(
                    "at most {MAX_IMPORT_ROWS} people per import"
                )));
            }
            let row = match row {
                Ok(r) => r,
                Err(e) => {
                    errors.push(RowError {
                        line,
                        error: row_error(&e),
                    });
                    continue;
                }
            };
            let fields = PersonalFields {
                name: get(&row, "name").unwrap_or_default(),
                user_id: get(&row, "user_id").unwrap_or_default(),
                email: get(&row, "email").unwrap_or_default(),
                department: get(&row, "department"),
                phone: get(&row, "phone"),
            };
            let status = match parse_status(get(&row, "status").as_deref()) {
                Ok(s) => s,
                Err(e) => {
                    errors.push(RowError { line, error: e });
                    continue;
                }
            };
            match self.seal_new(key, fields, status, now) {
                Ok(rec) => {
                    if let Some(first) = seen_email.insert(rec.email_index.clone(), line) {
                        errors.push(RowError {
                            line,
                            error: format!("same email as line {first}"),
                        });
                        continue;
                    }
                    if let Some(first) = seen_user.insert(rec.user_id_index.clone(), line) {
                        errors.push(RowError {
                            line,
                            error: format!("same user_id as line {first}"),
                        });
                        continue;
                    }
                    lines.push(line);
                    records.push(rec);
                }
                Err(CoreError::BadRequest(e)) => errors.push(RowError { line, error: e }),
                Err(e) => return Err(e),
            }
        }
        Ok((records, lines, errors))
    }
}

/// The columns of an import's header row, by name: only known ones, none
/// twice, the required ones present.
fn csv_columns(headers: &csv::StringRecord) -> CoreResult<HashMap<String, usize>> {
    let mut col = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        let h = h.trim().trim_start_matches('\u{feff}').to_lowercase();
        if !matches!(
            h.as_str(),
            "name" | "user_id" | "email" | "department" | "phone" | "status"
        ) {
            return Err(CoreError::BadRequest(format!(
                "CSV header: unknown column {h:?}; columns: {PERSONAL_FIELDS},status"
            )));
        }
        if col.insert(h.clone(), i).is_some() {
            return Err(CoreError::BadRequest(format!(
                "CSV header: column {h:?} twice"
            )));
        }
    }
    for required in ["name", "user_id", "email"] {
        if !col.contains_key(required) {
            return Err(CoreError::BadRequest(format!(
                "CSV header: column {required:?} is missing"
            )));
        }
    }
    Ok(col)
}

/// Why a row could not be read, without echoing its content.
fn row_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { .. } => "wrong number of columns".to_owned(),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
        _ => "malformed CSV".to_owned(),
    }
}
