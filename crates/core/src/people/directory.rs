//! The people directory: personal fields sealed per person (see [`vault`]),
//! pseudonymous by default, plaintext only with `personal_data_read` and
//! every such read recorded (who, whose record, which fields).
//!
//! [`vault`]: crate::people::vault

use crate::access::permit::{CommandsWrite, DevicesRead, PeopleWrite, PersonalDataRead};
use crate::access::Actor;
use crate::access::Authorized;
use crate::access::{AdminActor, ClientContext};
use crate::people::vault::{blind_index, DataKey};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AuditAction, Outcome};
use mamori_domain::{
    DeviceKey, EmploymentStatus, Permission, PersonId, PersonRecord, PersonView, PersonalFields,
};
use mamori_ports::{PeopleConflict, PersonIndex};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// Name of the sealed blind-index key in the secret store (its presence
/// means the database holds personal data).
pub const INDEX_KEY: &str = "people-index-key";
/// A known value sealed with the master key at first start: a different
/// master key fails to open it.
const MASTER_CHECK: &str = "master-key-check";
const MASTER_CHECK_TEXT: &[u8] = b"mamori master key check v1";
/// Associated data binding the wrapped index key.
const INDEX_KEY_AAD: &[u8] = b"mamori/people-index-key";
/// Most people one import may carry.
pub const MAX_IMPORT_ROWS: usize = 200_000;
/// The personal fields, as named in the API, CSV and audit records.
pub const PERSONAL_FIELDS: &str = "name,user_id,email,department,phone";

/// The department's blind index (`""` when there is none): trimmed and
/// case-folded, so "Sales" and " sales" are one department.
pub fn department_index(key: &[u8], department: Option<&str>) -> String {
    match department.map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => blind_index(key, "department", &d.to_lowercase()),
        None => String::new(),
    }
}

/// A new person, or changes to one, as the API takes them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonInput {
    /// Full name.
    pub name: Option<String>,
    /// Company user ID.
    pub user_id: Option<String>,
    /// Company e-mail.
    pub email: Option<String>,
    /// Department (empty string clears it).
    pub department: Option<String>,
    /// Phone (empty string clears it).
    pub phone: Option<String>,
    /// `active`, `on_leave` or `departed`.
    pub status: Option<String>,
}

/// A person in plaintext (for `personal_data_read` only).
#[derive(Debug, Clone, Serialize)]
pub struct PersonPlain {
    /// The pseudonymous part.
    #[serde(flatten)]
    pub view: PersonView,
    /// Full name.
    pub name: String,
    /// Company user ID.
    pub user_id: String,
    /// Company e-mail.
    pub email: String,
    /// Department.
    pub department: Option<String>,
    /// Phone.
    pub phone: Option<String>,
}

/// Whether a person's sealed fields from a backup can be read today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Readability {
    /// The live directory still holds the person's data key and it opens
    /// the backup's fields.
    Readable,
    /// The person was purged since: their data key is destroyed.
    Purged,
    /// The live directory does not know the person (no key).
    NoKey,
    /// A key exists but does not open these fields.
    Mismatch,
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

fn parse_status(s: Option<&str>) -> Result<EmploymentStatus, String> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(EmploymentStatus::Active),
        Some(s) => EmploymentStatus::parse(s)
            .ok_or_else(|| "status must be active, on_leave or departed".to_owned()),
    }
}

fn view(r: &PersonRecord, devices: Vec<DeviceKey>) -> PersonView {
    PersonView {
        id: r.id.clone(),
        status: r.status,
        departed_at: r.departed_at,
        created_at: r.created_at,
        updated_at: r.updated_at,
        devices,
    }
}

fn person_aad(id: &PersonId) -> Vec<u8> {
    format!("mamori/person/{id}").into_bytes()
}

fn key_aad(id: &PersonId) -> Vec<u8> {
    format!("mamori/person-key/{id}").into_bytes()
}

impl Services {
    /// Refuses to run with keys that do not open this database: the master
    /// key (sealed secrets; checked against a value sealed at first start)
    /// and the people key (personal data; checked against the blind-index
    /// key). Called at start.
    pub async fn check_master_key(&self) -> CoreResult<()> {
        match self.ports.people.secret(MASTER_CHECK).await? {
            Some(sealed) => {
                let ok = self
                    .pki
                    .secret_box
                    .open(&sealed, Some(MASTER_CHECK.as_bytes()))
                    .is_ok_and(|v| v.as_slice() == MASTER_CHECK_TEXT);
                if !ok {
                    return Err(CoreError::Internal(
                        "the master key (master.key / MAMORI_MASTER_KEY) does not open this \
                         database's sealed secrets; start with the key the data was written with"
                            .into(),
                    ));
                }
            }
            None => {
                let sealed = self
                    .pki
                    .secret_box
                    .seal(MASTER_CHECK_TEXT, Some(MASTER_CHECK.as_bytes()))
                    .map_err(|e| CoreError::Internal(e.into()))?;
                self.ports
                    .people
                    .put_secret(MASTER_CHECK, &sealed, self.clock.now())
                    .await?;
            }
        }
        if let Some(wrapped) = self.ports.people.secret(INDEX_KEY).await? {
            self.open_index_key(&wrapped).map_err(|_| {
                CoreError::Internal(
                    "the people key (people.key / MAMORI_PEOPLE_KEY) does not open this \
                     database's personal data; start with the key the data was written with"
                        .into(),
                )
            })?;
        }
        Ok(())
    }

    fn open_index_key(&self, stored: &[u8]) -> CoreResult<Zeroizing<Vec<u8>>> {
        // Stored as `<key id>\0<wrapped key>`.
        let pos = stored
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| CoreError::Internal("index key record malformed".into()))?;
        let id = std::str::from_utf8(&stored[..pos])
            .map_err(|_| CoreError::Internal("index key record malformed".into()))?;
        self.vault.unwrap(id, &stored[pos + 1..], INDEX_KEY_AAD)
    }

    /// Master-key rotation: re-wraps every person's data key (and the
    /// blind-index key) that is not yet under the current master key, in
    /// batches. The personal fields themselves are untouched. Returns how
    /// many data keys were re-wrapped.
    pub async fn rewrap_data_keys(&self, actor: &Actor, ctx: &ClientContext) -> CoreResult<u64> {
        let current = self.vault.current_id();
        if let Some(stored) = self.ports.people.secret(INDEX_KEY).await? {
            let pos = stored.iter().position(|b| *b == 0).unwrap_or(0);
            if stored[..pos] != *current.as_bytes() {
                let raw = self.open_index_key(&stored)?;
                let rec = self.wrap_index_key(&raw)?;
                self.ports
                    .people
                    .put_secret(INDEX_KEY, &rec, self.clock.now())
                    .await?;
            }
        }
        let mut total = 0;
        loop {
            let batch = self
                .ports
                .people
                .person_keys_not_under(&current, 1000)
                .await?;
            if batch.is_empty() {
                break;
            }
            let mut out = Vec::with_capacity(batch.len());
            for (person, old, wrapped) in batch {
                let raw = self.vault.unwrap(&old, &wrapped, &key_aad(&person))?;
                let (new, rewrapped) = self.vault.wrap(&raw, &key_aad(&person))?;
                out.push((person, old, new, rewrapped));
            }
            let n = self.ports.people.rewrap_person_keys(&out).await?;
            if n == 0 {
                // Every row changed under us (another rotation?): stop
                // rather than spin; the caller checks what is left.
                break;
            }
            total += n;
        }
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::KeysRewrap,
                Outcome::Success,
            )
            .detail(format!("master key={current} data keys re-wrapped={total}")),
        )
        .await?;
        Ok(total)
    }

    /// Data keys still wrapped by another master key than the current one.
    pub async fn data_keys_not_current(&self) -> CoreResult<usize> {
        Ok(self
            .ports
            .people
            .person_keys_not_under(&self.vault.current_id(), 1)
            .await?
            .len())
    }

    /// The stored form of the blind-index key: `<master key id>\0<wrapped>`
    /// (read by `open_index_key`).
    fn wrap_index_key(&self, raw: &[u8]) -> CoreResult<Vec<u8>> {
        let (id, wrapped) = self.vault.wrap(raw, INDEX_KEY_AAD)?;
        let mut rec = id.into_bytes();
        rec.push(0);
        rec.extend_from_slice(&wrapped);
        Ok(rec)
    }

    /// The blind-index key, created on first use.
    async fn index_key(&self) -> CoreResult<Zeroizing<Vec<u8>>> {
        if let Some(stored) = self.ports.people.secret(INDEX_KEY).await? {
            return self.open_index_key(&stored);
        }
        let raw = Zeroizing::new(
            mamori_crypto::try_random_bytes(32).map_err(|e| CoreError::Internal(e.into()))?,
        );
        let stored = self.wrap_index_key(&raw)?;
        self.ports
            .people
            .put_secret(INDEX_KEY, &stored, self.clock.now())
            .await?;
        // Two first uses racing: whichever wrote last wins; read it back.
        let stored = self
            .ports
            .people
            .secret(INDEX_KEY)
            .await?
            .ok_or_else(|| CoreError::Internal("index key vanished".into()))?;
        self.open_index_key(&stored)
    }

    fn seal_new(
        &self,
        index_key: &[u8],
        mut fields: PersonalFields,
        status: EmploymentStatus,
        now: OffsetDateTime,
    ) -> CoreResult<PersonRecord> {
        validate_fields(&mut fields).map_err(CoreError::BadRequest)?;
        let id = PersonId::parse(&hex::encode(
            mamori_crypto::try_random_bytes(16).map_err(|e| CoreError::Internal(e.into()))?,
        ))
        .map_err(|e| CoreError::Internal(e.into()))?;
        let (key, raw) = DataKey::generate()?;
        let (key_id, wrapped_key) = self.vault.wrap(&raw, &key_aad(&id))?;
        let json =
            Zeroizing::new(serde_json::to_vec(&fields).map_err(|e| CoreError::Internal(e.into()))?);
        Ok(PersonRecord {
            sealed: key.seal(&json, &person_aad(&id))?,
            email_index: blind_index(index_key, "email", &fields.email),
            user_id_index: blind_index(index_key, "user_id", &fields.user_id.to_lowercase()),
            department_index: Some(department_index(index_key, fields.department.as_deref())),
            id,
            status,
            departed_at: (status == EmploymentStatus::Departed).then_some(now),
            created_at: now,
            updated_at: now,
            key_id,
            wrapped_key,
        })
    }

    /// Opens a person's fields.
    pub(crate) fn open_fields(&self, r: &PersonRecord) -> CoreResult<PersonalFields> {
        let raw = self
            .vault
            .unwrap(&r.key_id, &r.wrapped_key, &key_aad(&r.id))?;
        let key = DataKey::from_raw(&raw)?;
        let json = key.open(&r.sealed, &person_aad(&r.id))?;
        serde_json::from_slice(&json).map_err(|e| CoreError::internal("person record", e))
    }

    fn conflict(c: &PeopleConflict) -> String {
        match c {
            PeopleConflict::Duplicate {
                index: PersonIndex::Email,
                ..
            } => "a person with this email exists".into(),
            PeopleConflict::Duplicate {
                index: PersonIndex::UserId,
                ..
            } => "a person with this user_id exists".into(),
        }
    }

    /// Adds one person.
    pub async fn create_person(
        &self,
        proof: &Authorized<PeopleWrite>,
        ctx: &ClientContext,
        input: &PersonInput,
    ) -> CoreResult<PersonView> {
        let actor = proof.actor();
        let fields = PersonalFields {
            name: input.name.clone().unwrap_or_default(),
            user_id: input.user_id.clone().unwrap_or_default(),
            email: input.email.clone().unwrap_or_default(),
            department: input.department.clone(),
            phone: input.phone.clone(),
        };
        let status = parse_status(input.status.as_deref()).map_err(CoreError::BadRequest)?;
        let key = self.index_key().await?;
        let rec = self.seal_new(&key, fields, status, self.clock.now())?;
        if let Err(c) = self
            .ports
            .people
            .insert_people(std::slice::from_ref(&rec))
            .await?
        {
            return Err(CoreError::Conflict(Self::conflict(&c)));
        }
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::PeopleCreate,
                Outcome::Success,
            )
            .target(rec.id.as_str()),
        )
        .await?;
        Ok(view(&rec, Vec::new()))
    }

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
        let mut col = std::collections::HashMap::new();
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
        let get = |rec: &csv::StringRecord, name: &str| -> Option<String> {
            col.get(name).and_then(|i| rec.get(*i)).map(str::to_owned)
        };
        let mut records = Vec::new();
        let mut errors = Vec::new();
        let mut lines = Vec::new();
        let mut seen_email = std::collections::HashMap::new();
        let mut seen_user = std::collections::HashMap::new();
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
                    let why = match e.kind() {
                        csv::ErrorKind::UnequalLengths { .. } => {
                            "wrong number of columns".to_owned()
                        }
                        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
                        _ => "malformed CSV".to_owned(),
                    };
                    errors.push(RowError { line, error: why });
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
            match self.seal_new(&key, fields, status, now) {
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

    /// A page of people, pseudonymous.
    pub async fn list_people(
        &self,
        _by: &Authorized<DevicesRead>,
        after: Option<&str>,
        limit: u32,
    ) -> CoreResult<Vec<PersonView>> {
        let after = after
            .map(PersonId::parse)
            .transpose()
            .map_err(|e| CoreError::BadRequest(e.to_string()))?;
        let recs = self
            .ports
            .people
            .list_people(after.as_ref(), limit.clamp(1, 1000))
            .await?;
        let ids: Vec<PersonId> = recs.iter().map(|r| r.id.clone()).collect();
        let devices = self.ports.people.people_devices(&ids).await?;
        Ok(recs.iter().zip(devices).map(|(r, d)| view(r, d)).collect())
    }

    pub(crate) async fn record(&self, id: &str) -> CoreResult<PersonRecord> {
        let id = PersonId::parse(id).map_err(|e| CoreError::BadRequest(e.to_string()))?;
        self.ports
            .people
            .person(&id)
            .await?
            .ok_or_else(|| CoreError::NotFound("no such person".into()))
    }

    /// One person, pseudonymous.
    pub async fn person(&self, _by: &Authorized<DevicesRead>, id: &str) -> CoreResult<PersonView> {
        let r = self.record(id).await?;
        let devices = self.ports.people.person_devices(&r.id).await?;
        Ok(view(&r, devices))
    }

    /// Records that `actor` asks for personal data (`people.read_intent`,
    /// outcome `attempt`), before anything is read: if the record cannot be
    /// written, nothing is. It discloses nobody; the `people.read` records
    /// written when the data leaves do.
    async fn record_read_intent(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        target: Option<&PersonId>,
        detail: String,
    ) -> CoreResult<()> {
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::PeopleReadIntent,
                Outcome::Attempt,
            )
            .target_opt(target.map(PersonId::as_str))
            .detail(detail),
        )
        .await
    }

    fn require_personal_data(&self, actor: &AdminActor) -> CoreResult<()> {
        if actor.allows(Permission::PersonalDataRead) {
            Ok(())
        } else {
            Err(CoreError::Forbidden(
                "reading personal data needs personal_data_read".into(),
            ))
        }
    }

    fn plain(&self, r: &PersonRecord, devices: Vec<DeviceKey>) -> CoreResult<PersonPlain> {
        let f = self.open_fields(r)?;
        Ok(PersonPlain {
            view: view(r, devices),
            name: f.name.clone(),
            user_id: f.user_id.clone(),
            email: f.email.clone(),
            department: f.department.clone(),
            phone: f.phone.clone(),
        })
    }

    /// One person in plaintext: `personal_data_read`. The request is
    /// recorded first, the read counted against the bulk-read limit before
    /// the fields are opened, and the disclosure recorded before they
    /// leave (if a record cannot be written, nothing is shown).
    pub async fn person_plain(
        &self,
        proof: &Authorized<PersonalDataRead>,
        ctx: &ClientContext,
        id: &str,
    ) -> CoreResult<PersonPlain> {
        let actor = proof.require_admin()?;
        self.require_personal_data(actor)?;
        let id = PersonId::parse(id).map_err(|e| CoreError::BadRequest(e.to_string()))?;
        self.record_read_intent(actor, ctx, Some(&id), format!("fields={PERSONAL_FIELDS}"))
            .await?;
        let r = self
            .ports
            .people
            .person(&id)
            .await?
            .ok_or_else(|| CoreError::NotFound("no such person".into()))?;
        let permit = self.reserve_personal_reads(actor, ctx, 1).await?;
        let devices = self.ports.people.person_devices(&r.id).await?;
        let plain = self.plain(&r, devices)?;
        self.disclose_personal_reads(
            actor,
            ctx,
            &permit,
            std::slice::from_ref(&r.id),
            PERSONAL_FIELDS,
        )
        .await?;
        Ok(plain)
    }

    /// A page of people in plaintext: the request recorded first, the page
    /// counted against the bulk-read limit (all of it or nothing) before
    /// any fields are opened, every person's disclosure recorded before the
    /// page leaves.
    pub async fn list_people_plain(
        &self,
        proof: &Authorized<PersonalDataRead>,
        ctx: &ClientContext,
        after: Option<&str>,
        limit: u32,
    ) -> CoreResult<Vec<PersonPlain>> {
        let actor = proof.require_admin()?;
        self.require_personal_data(actor)?;
        let after = after
            .map(PersonId::parse)
            .transpose()
            .map_err(|e| CoreError::BadRequest(e.to_string()))?;
        let limit = limit.clamp(1, 1000);
        self.record_read_intent(
            actor,
            ctx,
            None,
            format!(
                "after={} limit={limit} fields={PERSONAL_FIELDS}",
                after.as_ref().map_or("none", PersonId::as_str)
            ),
        )
        .await?;
        let recs = self.ports.people.list_people(after.as_ref(), limit).await?;
        let permit = self.reserve_personal_reads(actor, ctx, recs.len()).await?;
        let ids: Vec<PersonId> = recs.iter().map(|r| r.id.clone()).collect();
        let devices = self.ports.people.people_devices(&ids).await?;
        let out = recs
            .iter()
            .zip(devices)
            .map(|(r, d)| self.plain(r, d))
            .collect::<CoreResult<Vec<_>>>()?;
        self.disclose_personal_reads(actor, ctx, &permit, &ids, PERSONAL_FIELDS)
            .await?;
        Ok(out)
    }

    /// Exact-match lookup by e-mail or user ID through the blind index;
    /// answers the pseudonymous view. The looked-up value is never logged.
    pub async fn lookup_person(
        &self,
        proof: &Authorized<PeopleWrite>,
        ctx: &ClientContext,
        email: Option<&str>,
        user_id: Option<&str>,
    ) -> CoreResult<PersonView> {
        let actor = proof.actor();
        let key = self.index_key().await?;
        let (index, hash, by) = match (email, user_id) {
            (Some(e), None) => (
                PersonIndex::Email,
                blind_index(&key, "email", &e.trim().to_lowercase()),
                "email",
            ),
            (None, Some(u)) => (
                PersonIndex::UserId,
                blind_index(&key, "user_id", &u.trim().to_lowercase()),
                "user_id",
            ),
            _ => {
                return Err(CoreError::BadRequest(
                    "give exactly one of email or user_id".into(),
                ))
            }
        };
        let found = self.ports.people.person_by_index(index, &hash).await?;
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::PeopleLookup,
                if found.is_some() {
                    Outcome::Success
                } else {
                    Outcome::Failure
                },
            )
            .target_opt(found.as_ref().map(|r| r.id.as_str()))
            .detail(format!("by={by}")),
        )
        .await?;
        let r = found.ok_or_else(|| CoreError::NotFound("no such person".into()))?;
        let devices = self.ports.people.person_devices(&r.id).await?;
        Ok(view(&r, devices))
    }

    /// Changes a person's fields or status (the server opens and reseals
    /// them; the caller never sees them).
    pub async fn update_person(
        &self,
        proof: &Authorized<PeopleWrite>,
        ctx: &ClientContext,
        id: &str,
        input: &PersonInput,
    ) -> CoreResult<PersonView> {
        let actor = proof.actor();
        let mut r = self.record(id).await?;
        let mut f = self.open_fields(&r)?;
        if let Some(v) = &input.name {
            f.name.clone_from(v);
        }
        if let Some(v) = &input.user_id {
            f.user_id.clone_from(v);
        }
        if let Some(v) = &input.email {
            f.email.clone_from(v);
        }
        if let Some(v) = &input.department {
            f.department = Some(v.clone());
        }
        if let Some(v) = &input.phone {
            f.phone = Some(v.clone());
        }
        validate_fields(&mut f).map_err(CoreError::BadRequest)?;
        let now = self.clock.now();
        if let Some(s) = &input.status {
            let status = parse_status(Some(s)).map_err(CoreError::BadRequest)?;
            if status != r.status {
                r.departed_at = (status == EmploymentStatus::Departed).then_some(now);
                r.status = status;
            }
        }
        let key = self.index_key().await?;
        let raw = self
            .vault
            .unwrap(&r.key_id, &r.wrapped_key, &key_aad(&r.id))?;
        let dk = DataKey::from_raw(&raw)?;
        let json =
            Zeroizing::new(serde_json::to_vec(&f).map_err(|e| CoreError::Internal(e.into()))?);
        r.sealed = dk.seal(&json, &person_aad(&r.id))?;
        r.email_index = blind_index(&key, "email", &f.email);
        r.user_id_index = blind_index(&key, "user_id", &f.user_id.to_lowercase());
        r.department_index = Some(department_index(&key, f.department.as_deref()));
        r.updated_at = now;
        match self.ports.people.update_person(&r).await? {
            Ok(true) => {}
            Ok(false) => return Err(CoreError::NotFound("no such person".into())),
            Err(c) => return Err(CoreError::Conflict(Self::conflict(&c))),
        }
        let changed: Vec<&str> = [
            ("name", input.name.is_some()),
            ("user_id", input.user_id.is_some()),
            ("email", input.email.is_some()),
            ("department", input.department.is_some()),
            ("phone", input.phone.is_some()),
            ("status", input.status.is_some()),
        ]
        .iter()
        .filter(|(_, c)| *c)
        .map(|(n, _)| *n)
        .collect();
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::PeopleUpdate,
                Outcome::Success,
            )
            .target(r.id.as_str())
            .detail(format!("fields={}", changed.join(","))),
        )
        .await?;
        let devices = self.ports.people.person_devices(&r.id).await?;
        Ok(view(&r, devices))
    }

    /// Whether sealed fields taken from a backup open with the data keys
    /// the live directory holds now (backups carry no data keys).
    pub async fn backup_readability(
        &self,
        id: &PersonId,
        sealed: &[u8],
    ) -> CoreResult<Readability> {
        let Some(live) = self.ports.people.person(id).await? else {
            return Ok(if self.ports.people.is_purged(id).await? {
                Readability::Purged
            } else {
                Readability::NoKey
            });
        };
        let raw = self
            .vault
            .unwrap(&live.key_id, &live.wrapped_key, &key_aad(id))?;
        let key = DataKey::from_raw(&raw)?;
        Ok(match key.open(sealed, &person_aad(id)) {
            Ok(_) => Readability::Readable,
            Err(_) => Readability::Mismatch,
        })
    }

    /// The retention job: purges every departed person whose departure is
    /// older than the retention period — data key destroyed (so every copy
    /// of their sealed fields, in the WAL, old backups or replicas, is
    /// unreadable), rows deleted, a tombstone left — then checkpoints the
    /// WAL. Returns how many were purged.
    pub async fn purge_due_people(&self, actor: &Actor, ctx: &ClientContext) -> CoreResult<u64> {
        let now = self.clock.now();
        let before = now - time::Duration::days(i64::from(self.config.people_retention_days));
        let mut total = 0;
        loop {
            let ids = self.ports.people.people_due_for_purge(before, 1000).await?;
            if ids.is_empty() {
                break;
            }
            total += self.purge(actor, ctx, &ids, now).await?;
        }
        if total > 0 {
            self.ports.people.checkpoint().await?;
            tracing::info!(people = total, "departed people purged");
        }
        Ok(total)
    }

    /// Purges one departed person now, whatever the retention period
    /// (step-up in an interactive session, or the command line).
    pub async fn purge_person_now(
        &self,
        proof: &Authorized<PeopleWrite>,
        ctx: &ClientContext,
        id: &str,
    ) -> CoreResult<()> {
        // Destroying a person's key cannot be undone: an administrator
        // must have re-authenticated just now.
        match proof.admin() {
            Some(admin) => self.require_step_up(admin)?,
            None => proof.actor().host_only()?,
        }
        let actor = proof.actor();
        let r = self.record(id).await?;
        if r.status != EmploymentStatus::Departed {
            return Err(CoreError::Conflict(
                "only a departed person can be purged; offboard them first".into(),
            ));
        }
        self.purge(actor, ctx, std::slice::from_ref(&r.id), self.clock.now())
            .await?;
        self.ports.people.checkpoint().await?;
        Ok(())
    }

    async fn purge(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        ids: &[PersonId],
        now: OffsetDateTime,
    ) -> CoreResult<u64> {
        let n = self.ports.people.purge_people(ids, now).await?;
        for id in ids {
            self.audit(
                self.audit_record(
                    &actor.label(),
                    ctx,
                    AuditAction::PeoplePurge,
                    Outcome::Success,
                )
                .target(id.as_str())
                .detail("data key destroyed"),
            )
            .await?;
        }
        Ok(n)
    }

    /// Assigns a device to a person (or unassigns it with `None`). A
    /// departed person gets no new device.
    pub async fn assign_device(
        &self,
        proof: &Authorized<CommandsWrite>,
        ctx: &ClientContext,
        udid: &str,
        person: Option<&str>,
    ) -> CoreResult<()> {
        let actor = proof.actor();
        let device = DeviceKey::parse(udid).map_err(|e| CoreError::BadRequest(e.to_string()))?;
        if self.ports.people.device(&device).await?.is_none() {
            return Err(CoreError::NotFound("no such device".into()));
        }
        let person = match person {
            Some(p) => {
                let r = self.record(p).await?;
                if r.status == EmploymentStatus::Departed {
                    return Err(CoreError::Conflict(
                        "the person has departed; assign the device to someone else".into(),
                    ));
                }
                Some(r.id)
            }
            None => None,
        };
        if !self
            .ports
            .people
            .assign_device(&device, person.as_ref())
            .await?
        {
            return Err(CoreError::NotFound("no such device".into()));
        }
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::DeviceAssign,
                Outcome::Success,
            )
            .target(device.as_str())
            .detail(format!(
                "person={}",
                person.as_ref().map_or("none", |p| p.as_str())
            )),
        )
        .await?;
        Ok(())
    }
}

impl Services {
    /// The people in a department (by its blind index; nobody is
    /// decrypted).
    pub(crate) async fn people_in_department(&self, department: &str) -> CoreResult<Vec<PersonId>> {
        let key = self.index_key().await?;
        let idx = department_index(&key, Some(department));
        if idx.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.ports.people.people_in_department(&idx).await?)
    }

    /// Indexes the departments of people stored before the index existed
    /// (run at start; recorded as one system record, no plaintext leaves).
    pub async fn index_departments(&self) -> CoreResult<usize> {
        let mut batch = self
            .ports
            .people
            .people_without_department_index(500)
            .await?;
        if batch.is_empty() {
            // Nothing to do: the index key is not even read (nor created).
            return Ok(0);
        }
        let key = self.index_key().await?;
        let mut done = 0;
        while !batch.is_empty() {
            for r in &batch {
                let f = self.open_fields(r)?;
                self.ports
                    .people
                    .set_department_index(&r.id, &department_index(&key, f.department.as_deref()))
                    .await?;
            }
            done += batch.len();
            batch = self
                .ports
                .people
                .people_without_department_index(500)
                .await?;
        }
        self.audit(
            self.audit_record(
                "system",
                &ClientContext::default(),
                AuditAction::PeopleIndex,
                Outcome::Success,
            )
            .detail(format!("department index built for {done} people")),
        )
        .await?;
        Ok(done)
    }
}
