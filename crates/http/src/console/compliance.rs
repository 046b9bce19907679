//! Compliance in the console: a group's rules (minimum OS versions, no
//! known-exploited OS, passcode, encryption, supervision, days without a
//! check-in, quarantine) and the report of every enrolled device against
//! the rules of its groups, with the reasons of each non-compliant one.

use super::groups::{answer, changed_meanwhile, err, unreadable};
use super::page::{page, PageCtx, Shell};
use crate::auth::Auth;
use crate::extract::{Client, Path};
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use mamori_core::access::permit::{CommandsWrite, DevicesRead};
use mamori_core::fleet::compliance::ComplianceRules;
use mamori_core::{CoreError, Services};
use maud::{html, Markup};
use serde::Deserialize;

/// What the rules were when the form was made (a stale form is refused).
fn fingerprint(rules: Option<&ComplianceRules>) -> String {
    let json = serde_json::to_vec(&rules).unwrap_or_default();
    mamori_crypto::sha256_hex(&json)
}

/// A group's compliance rules, as a form (disabled for a viewer).
pub(super) fn form(
    ctx: &PageCtx,
    csrf: &str,
    rules: Option<&ComplianceRules>,
    base: &str,
    writable: bool,
) -> Markup {
    let r = rules.cloned().unwrap_or_default();
    let min = |p: &str| r.min_os.get(p).cloned().unwrap_or_default();
    let flags = [
        (
            "no_vulnerable_os",
            "compliance-no-vulnerable",
            rules.is_none_or(|r| r.no_vulnerable_os),
        ),
        (
            "require_passcode",
            "compliance-passcode",
            r.require_passcode,
        ),
        (
            "require_encryption",
            "compliance-encryption",
            r.require_encryption,
        ),
        (
            "require_supervised",
            "compliance-supervised",
            r.require_supervised,
        ),
        ("quarantine", "compliance-quarantine", r.quarantine),
    ];
    html! {
        section aria-labelledby="group-compliance" {
            h2 id="group-compliance" { (ctx.t("group-compliance")) }
            p id="compliance-state" { (ctx.t(if rules.is_some() { "compliance-has-rules" } else { "compliance-no-rules" })) }
            form method="post" action={ (base) "/compliance" } id="compliance-form" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="was" value=(fingerprint(rules));
                fieldset disabled[!writable] {
                    legend { (ctx.t("group-compliance")) }
                    label for="min-ios" { (ctx.t("compliance-min-ios")) }
                    input type="text" id="min-ios" name="min_ios" value=(min("iOS")) maxlength="20" placeholder="18.0";
                    label for="min-macos" { (ctx.t("compliance-min-macos")) }
                    input type="text" id="min-macos" name="min_macos" value=(min("macOS")) maxlength="20" placeholder="15.0";
                    label for="max-checkin" { (ctx.t("compliance-max-checkin")) }
                    input type="number" id="max-checkin" name="max_checkin_days" min="1" max="3650"
                        value=[r.max_checkin_days];
                    @for (name, key, on) in flags {
                        label class="inline" {
                            input type="checkbox" name=(name) value="1" checked[on];
                            " " (ctx.t(key))
                        }
                    }
                    div class="actions" {
                        button type="submit" name="action" value="save" { (ctx.t("compliance-save")) }
                        @if rules.is_some() {
                            button type="submit" name="action" value="clear" class="danger" { (ctx.t("compliance-clear")) }
                        }
                    }
                }
            }
        }
    }
}

/// The compliance form.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RulesForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    was: String,
    #[serde(default)]
    min_ios: String,
    #[serde(default)]
    min_macos: String,
    #[serde(default)]
    max_checkin_days: String,
    no_vulnerable_os: Option<String>,
    require_passcode: Option<String>,
    require_encryption: Option<String>,
    require_supervised: Option<String>,
    quarantine: Option<String>,
}

impl RulesForm {
    fn rules(&self) -> Result<ComplianceRules, CoreError> {
        let mut min_os = std::collections::BTreeMap::new();
        for (platform, v) in [("iOS", &self.min_ios), ("macOS", &self.min_macos)] {
            if !v.trim().is_empty() {
                min_os.insert(platform.to_owned(), v.trim().to_owned());
            }
        }
        let days = self.max_checkin_days.trim();
        let max_checkin_days = if days.is_empty() {
            None
        } else {
            Some(
                days.parse::<u32>()
                    .ok()
                    .filter(|d| (1..=3650).contains(d))
                    .ok_or_else(|| {
                        CoreError::BadRequest(
                            "days without a check-in: a whole number from 1 to 3650".into(),
                        )
                    })?,
            )
        };
        Ok(ComplianceRules {
            min_os,
            no_vulnerable_os: self.no_vulnerable_os.is_some(),
            require_passcode: self.require_passcode.is_some(),
            require_encryption: self.require_encryption.is_some(),
            require_supervised: self.require_supervised.is_some(),
            max_checkin_days,
            quarantine: self.quarantine.is_some(),
        })
    }
}

/// `POST /console/groups/{id}/compliance`: save or clear the rules.
pub(super) async fn set_compliance(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Client(client): Client,
    shell: Shell,
    Path(id): Path<String>,
    form: Result<Form<RulesForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return answer(&s, &by, shell, &id, Err(unreadable())).await;
    };
    let result = async {
        let read = by.actor().clone().authorize::<DevicesRead>()?;
        if f.was != fingerprint(s.group_compliance(&read, &id).await?.as_ref()) {
            return Err(changed_meanwhile());
        }
        let rules = match f.action.as_str() {
            "clear" => None,
            _ => Some(f.rules()?),
        };
        s.set_group_compliance(&by, &client, &id, rules.as_ref())
            .await
    }
    .await;
    answer(&s, &by, shell, &id, result).await
}

/// `GET /console/compliance`: the report, the quarantined devices and why.
pub(super) async fn report(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Shell { ctx, .. }: Shell,
) -> Response {
    let r = match s.compliance_report(&by).await {
        Ok(r) => r,
        Err(e) => return err(e),
    };
    let body = html! {
        p { (ctx.t("compliance-intro")) }
        dl class="figures" id="compliance-figures" {
            div class="figure" { dt { (ctx.t("compliance-devices")) } dd data-figure="devices" { (r.devices) } }
            div class="figure" { dt { (ctx.t("compliance-compliant")) } dd data-figure="compliant" { (r.compliant) } }
            div class="figure" { dt { (ctx.t("compliance-quarantined")) } dd data-figure="quarantined" { (r.quarantined) } }
        }
        p class="muted" { (ctx.t("compliance-list-date")) " " (r.vulnerable_os_list) " · " (ctx.when(r.at)) }
        @if !r.by_reason.is_empty() {
            h2 { (ctx.t("compliance-by-reason")) }
            table id="by-reason" {
                thead { tr { th scope="col" { (ctx.t("compliance-reason")) } th scope="col" { (ctx.t("compliance-count")) } } }
                tbody {
                    @for (reason, n) in &r.by_reason {
                        tr { td { code { (reason) } } td { (n) } }
                    }
                }
            }
        }
        h2 { (ctx.t("compliance-non-compliant")) }
        @if r.non_compliant.is_empty() {
            p id="compliance-all-good" { (ctx.t("compliance-all-good")) }
        } @else {
            table id="non-compliant" {
                thead { tr {
                    th scope="col" { (ctx.t("compliance-device")) }
                    th scope="col" { (ctx.t("compliance-os")) }
                    th scope="col" { (ctx.t("compliance-quarantined")) }
                    th scope="col" { (ctx.t("compliance-reasons")) }
                } }
                tbody {
                    @for d in r.non_compliant.iter().take(500) {
                        tr data-device=(d.udid) {
                            td { a href={ "/console/devices/" (d.udid) } { code { (d.udid) } } }
                            td { (d.platform) " " (d.os_version.as_deref().unwrap_or("")) }
                            td { (ctx.t(if d.quarantined { "yes" } else { "no" })) }
                            td class="detail" { (d.reasons.join("; ")) }
                        }
                    }
                }
            }
            @if r.non_compliant.len() > 500 { p class="muted" { (ctx.t("compliance-more")) } }
        }
    };
    page(&ctx, StatusCode::OK, "compliance-title", body)
}
