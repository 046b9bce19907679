//! The people directory: personal fields sealed per person (see [`vault`]),
//! pseudonymous by default, plaintext only with `personal_data_read` and
//! every such read recorded (who, whose record, which fields).
//!
//! [`vault`]: crate::people::vault

use super::*;
use crate::access::permit::{CommandsWrite, DevicesRead, PeopleWrite, PersonalDataRead};
use crate::access::Authorized;
use crate::access::Operator;
use crate::access::{AdminActor, ClientContext};
use crate::people::vault::{blind_index, DataKey};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AuditAction, Outcome};
use mamori_domain::{
    DeviceKey, EmploymentStatus, Permission, PersonId, PersonRecord, PersonView, PersonalFields,
};
use mamori_ports::{PeopleConflict, PersonIndex};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::import::parse_status;
use super::keys::{key_aad, person_aad};

/// The personal fields, as named in the API, CSV and audit records.
pub const PERSONAL_FIELDS: &str = "name,user_id,email,department,phone";

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

impl Services {
    pub(super) fn conflict(c: &PeopleConflict) -> String {
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
        self.reveal_person(proof, ctx, id, None).await
    }

    /// As [`Self::person_plain`], with the reason the reader stated (1-200
    /// printable characters), kept in the audit record of the request.
    pub async fn reveal_person(
        &self,
        proof: &Authorized<PersonalDataRead>,
        ctx: &ClientContext,
        id: &str,
        reason: Option<&str>,
    ) -> CoreResult<PersonPlain> {
        let actor = proof.require_admin()?;
        self.require_personal_data(actor)?;
        let id = PersonId::parse(id).map_err(|e| CoreError::BadRequest(e.to_string()))?;
        let mut detail = format!("fields={PERSONAL_FIELDS}");
        if let Some(reason) = reason {
            let reason = reason.trim();
            if reason.is_empty()
                || reason.chars().count() > 200
                || reason.chars().any(char::is_control)
            {
                return Err(CoreError::BadRequest(
                    "the reason must be 1-200 printable characters".into(),
                ));
            }
            detail.push_str(&format!(" reason={reason:?}"));
        }
        self.record_read_intent(actor, ctx, Some(&id), detail)
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
    pub async fn index_departments(&self, _by: &Operator) -> CoreResult<usize> {
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
