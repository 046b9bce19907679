//! The breach-scope report as a use-case: checks the request, has the
//! store walk the access records into a [`ScopeBuilder`]
//! (`mamori_domain::breach`) and records that the report was made.

use crate::access::permit::AuditRead;
use crate::access::{Actor, Authorized, ClientContext};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::breach::{
    AccessFilter, BreachScope, ScopeBuilder, ScopeFilter, PERSONAL_DATA_ACTIONS,
};
use mamori_domain::{AuditAction, Outcome};
use time::OffsetDateTime;

impl Services {
    /// Builds the report (and records that it was made).
    pub async fn breach_scope(
        &self,
        by: &Authorized<AuditRead>,
        ctx: &ClientContext,
        from: OffsetDateTime,
        to: OffsetDateTime,
        filter: &ScopeFilter,
    ) -> CoreResult<BreachScope> {
        self.breach_scope_for(by.actor(), ctx, from, to, filter)
            .await
    }

    /// The report for another use-case of this crate (an incident's scope),
    /// which holds its own permission.
    pub(crate) async fn breach_scope_for(
        &self,
        actor: &Actor,
        ctx: &ClientContext,
        from: OffsetDateTime,
        to: OffsetDateTime,
        filter: &ScopeFilter,
    ) -> CoreResult<BreachScope> {
        if to <= from {
            return Err(CoreError::BadRequest(
                "the window must end after it starts".into(),
            ));
        }
        if let Some(t) = &filter.token {
            mamori_domain::TokenId::parse(t)
                .map_err(|_| CoreError::BadRequest("token: not a token ID".into()))?;
        }
        let access = AccessFilter {
            actor: filter.actor.clone(),
            actor_range: filter
                .token
                .as_ref()
                .map(|t| (format!("token:{t}:"), format!("token:{t};"))),
            with_source: filter.network.is_some(),
        };
        let builder = filter
            .network
            .map_or_else(ScopeBuilder::default, ScopeBuilder::within);
        let mut report = self
            .ports
            .audit
            .scan_audit_access(PERSONAL_DATA_ACTIONS, from, to, &access, builder)
            .await?
            .finish(from, to, filter.actor.as_deref());
        report.token.clone_from(&filter.token);
        let mut what = Vec::new();
        if let Some(a) = &filter.actor {
            what.push(format!("actor={a}"));
        }
        if let Some(t) = &filter.token {
            what.push(format!("token={t}"));
        }
        if let Some(n) = &filter.network {
            what.push(format!("network={n}"));
        }
        self.audit(
            self.audit_record(
                &actor.label(),
                ctx,
                AuditAction::ReportBreachScope,
                Outcome::Success,
            )
            .target_opt(filter.actor.as_deref())
            .detail(format!(
                "people affected={}{}{}",
                report.people_affected,
                if what.is_empty() { "" } else { " " },
                what.join(" ")
            )),
        )
        .await?;
        Ok(report)
    }
}
