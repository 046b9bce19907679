//! Export of personal data: the one way to take everyone's personal data
//! out in one piece, so it is behind the two-person rule. A security
//! officer asks (after a fresh re-authentication), another security
//! officer approves, and the requester downloads the CSV once, within
//! [`EXPORT_TTL`] of the approval. Every person in it is recorded as a
//! `people.export` audit record with the fields — before the file leaves —
//! so the breach-scope report counts an export like reads.

use crate::access::permit::PersonalDataRead;
use crate::access::Authorized;
use crate::access::ClientContext;
use crate::admin::approvals::{Dangerous, EXPORT_TTL};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{Approval, ApprovalStatus, PersonId};
use mamori_domain::{AuditAction, Outcome};
use zeroize::Zeroizing;

/// The fields an export can hold.
pub const EXPORT_FIELDS: &[&str] = &["name", "user_id", "email", "department", "phone"];

/// Checks the requested fields (all when none).
pub fn export_fields(requested: Option<&[String]>) -> CoreResult<Vec<String>> {
    let Some(requested) = requested else {
        return Ok(EXPORT_FIELDS.iter().map(|f| (*f).to_owned()).collect());
    };
    if requested.is_empty() {
        return Err(CoreError::BadRequest("fields must not be empty".into()));
    }
    let mut out: Vec<String> = Vec::new();
    for f in requested {
        if !EXPORT_FIELDS.contains(&f.as_str()) {
            return Err(CoreError::BadRequest(format!(
                "unknown field {f:?}; fields: {}",
                EXPORT_FIELDS.join(", ")
            )));
        }
        if !out.contains(f) {
            out.push(f.clone());
        }
    }
    Ok(out)
}

/// A spreadsheet opens a cell starting with `=`, `+`, `-`, `@` (or a tab
/// or carriage return) as a formula: such values are prefixed with `'`.
fn cell(v: &str) -> std::borrow::Cow<'_, str> {
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}").into()
    } else {
        v.into()
    }
}

impl Services {
    /// Asks for an export of `fields` (default: all) of every person.
    pub async fn request_export(
        &self,
        proof: &Authorized<PersonalDataRead>,
        ctx: &ClientContext,
        fields: Option<&[String]>,
    ) -> CoreResult<Approval> {
        let actor = proof.require_admin()?;
        self.require_step_up(actor)?;
        let fields = export_fields(fields)?;
        let reason = format!("export of {}", fields.join(","));
        self.request_approval(
            proof.actor(),
            ctx,
            Dangerous::ExportPersonalData { fields },
            &reason,
        )
        .await
    }

    /// One of the caller's own export requests (its state: waiting,
    /// approved, rejected, downloaded); someone else's is not found.
    pub async fn export_request(
        &self,
        proof: &Authorized<PersonalDataRead>,
        id: &str,
    ) -> CoreResult<Approval> {
        let actor = proof.require_admin()?;
        self.ports
            .people
            .approval(id)
            .await?
            .filter(|a| a.action == "export_personal_data")
            .filter(|a| a.requested_by_admin.as_deref() == Some(actor.admin.id.as_str()))
            .ok_or_else(|| CoreError::NotFound("no such export".into()))
    }

    /// The approved export as CSV, for its requester, once.
    pub async fn download_export(
        &self,
        proof: &Authorized<PersonalDataRead>,
        ctx: &ClientContext,
        id: &str,
    ) -> CoreResult<Zeroizing<Vec<u8>>> {
        let actor = proof.require_admin()?;
        let a = self.export_request(proof, id).await?;
        let now = self.clock.now();
        if a.status != ApprovalStatus::Approved {
            return Err(CoreError::Conflict(
                "the export has not been approved by a second administrator".into(),
            ));
        }
        if a.used_at.is_some() || a.decided_at.is_none_or(|d| now - d > EXPORT_TTL) {
            return Err(CoreError::Conflict(
                "the export was downloaded already or has expired; ask again".into(),
            ));
        }
        let fields: Vec<String> = a
            .params
            .get("fields")
            .and_then(|f| serde_json::from_value(f.clone()).ok())
            .ok_or_else(|| CoreError::Internal("export without fields".into()))?;
        let fields = export_fields(Some(&fields))?;
        if !self.ports.people.use_approval(&a.id, now).await? {
            return Err(CoreError::Conflict(
                "the export was downloaded already or has expired; ask again".into(),
            ));
        }
        let (out, people) = self.export_csv(&fields).await?;
        // Recorded before the file leaves; if a record cannot be written,
        // nothing is sent.
        let detail = format!("fields={}", fields.join(","));
        for id in &people {
            self.audit(
                self.audit_record(
                    &actor.label(),
                    ctx,
                    AuditAction::PeopleExport,
                    Outcome::Success,
                )
                .target(id.as_str())
                .detail(detail.clone()),
            )
            .await?;
        }
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::ExportDownload,
                Outcome::Success,
            )
            .target(&a.id)
            .detail(format!(
                "people={} approved by {}",
                people.len(),
                a.decided_by.as_deref().unwrap_or("?")
            )),
        )
        .await?;
        Ok(out)
    }
}

impl Services {
    /// Every person's chosen fields as CSV (cells that a spreadsheet would
    /// run as formulas neutralised), and whose rows it holds.
    async fn export_csv(
        &self,
        fields: &[String],
    ) -> CoreResult<(Zeroizing<Vec<u8>>, Vec<PersonId>)> {
        let mut csv = csv::Writer::from_writer(Vec::new());
        let mut header = vec!["person_id"];
        header.extend(fields.iter().map(String::as_str));
        csv.write_record(&header)
            .map_err(|e| CoreError::Internal(e.into()))?;
        let mut people = Vec::new();
        let mut after = None;
        loop {
            let page = self.ports.people.list_people(after.as_ref(), 1000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for r in &page {
                let f = self.open_fields(r)?;
                let mut row: Vec<String> = vec![r.id.to_string()];
                for name in fields {
                    let v = match name.as_str() {
                        "name" => f.name.as_str(),
                        "user_id" => f.user_id.as_str(),
                        "email" => f.email.as_str(),
                        "department" => f.department.as_deref().unwrap_or(""),
                        _ => f.phone.as_deref().unwrap_or(""),
                    };
                    row.push(cell(v).into_owned());
                }
                csv.write_record(&row)
                    .map_err(|e| CoreError::Internal(e.into()))?;
                row.iter_mut().for_each(zeroize::Zeroize::zeroize);
                people.push(r.id.clone());
            }
        }
        let out = Zeroizing::new(
            csv.into_inner()
                .map_err(|e| CoreError::Internal(e.into()))?,
        );
        Ok((out, people))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fields_are_checked_and_formulas_defused() {
        assert_eq!(export_fields(None).unwrap().len(), 5);
        assert_eq!(
            export_fields(Some(&["email".into(), "email".into()])).unwrap(),
            vec!["email".to_owned()]
        );
        assert!(export_fields(Some(&[])).is_err());
        assert!(export_fields(Some(&["salary".into()])).is_err());
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("+81-3"), "'+81-3");
        assert_eq!(cell("Taro"), "Taro");
    }
}
