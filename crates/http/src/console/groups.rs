//! Device groups in the console: the list and a new group (static, or
//! dynamic by a rule over the inventory), and a group's page: its members
//! (added by serial number or UDID), the policies assigned to it, its
//! compliance rules (`compliance`), and how far the reconciler has
//! brought its devices.
//! The same use-cases as `/api/v1/groups`.

use super::page::{notice, page, redirect, titled, PageCtx, Shell};
use crate::auth::Auth;
use crate::extract::{Client, Path};
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use mamori_core::access::permit::{CommandsWrite, DevicesRead};
use mamori_core::access::Authorized;
use mamori_core::fleet::compliance::ComplianceRules;
use mamori_core::fleet::groups::GroupInput;
use mamori_core::{CoreError, Services};
use mamori_domain::{DeviceGroup, GroupRule, Policy};
use maud::{html, Markup};
use serde::Deserialize;

/// The most members a page lists (the count is always shown).
const MEMBERS_SHOWN: usize = 200;
/// The most lines one members form takes.
const MEMBER_LINES: usize = 500;

fn rule_text(ctx: &PageCtx, g: &DeviceGroup) -> String {
    let Some(r) = &g.rule else {
        return super::i18n::text(
            ctx.lang,
            "group-static-count",
            &[("count", g.members.len().into())],
        );
    };
    let mut parts = Vec::new();
    for (key, v) in [
        ("group-rule-model", &r.model),
        ("group-rule-product", &r.product),
        ("group-rule-os", &r.os_version),
        ("group-rule-department", &r.department),
    ] {
        if let Some(v) = v {
            parts.push(format!("{} {v}", ctx.t(key)));
        }
    }
    if parts.is_empty() {
        ctx.t("group-rule-all")
    } else {
        parts.join(" · ")
    }
}

/// A form that could not be read changes nothing.
pub(super) fn unreadable() -> CoreError {
    CoreError::BadRequest("the form could not be read; reload the page and try again".into())
}

/// A form made before another change to the group.
pub(super) fn changed_meanwhile() -> CoreError {
    CoreError::Conflict(
        "the group changed since this page was loaded; reload it and make the change again".into(),
    )
}

pub(super) fn err(e: CoreError) -> Response {
    crate::error::ApiError(e).into_response()
}

/// `?deleted=1` after a delete.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Done {
    deleted: Option<String>,
    saved: Option<String>,
}

/// `GET /console/groups`.
pub(super) async fn list(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Shell { ctx, csrf }: Shell,
    Query(done): Query<Done>,
) -> Response {
    let top = done
        .deleted
        .map(|_| notice("group-deleted", "notice", ctx.t("group-deleted")));
    groups_page(&s, &by, &ctx, &csrf, StatusCode::OK, top).await
}

async fn groups_page(
    s: &Services,
    by: &Authorized<DevicesRead>,
    ctx: &PageCtx,
    csrf: &str,
    status: StatusCode,
    top: Option<Markup>,
) -> Response {
    let (groups, policies) = match (s.groups(by).await, s.policies(by).await) {
        (Ok(g), Ok(p)) => (g, p),
        (Err(e), _) | (_, Err(e)) => return err(e),
    };
    let writable = by.actor().clone().authorize::<CommandsWrite>().is_ok();
    let policy_name = |id: &str| {
        policies
            .iter()
            .find(|p| p.id == id)
            .map_or_else(|| id.to_owned(), |p| p.name.clone())
    };
    let body = html! {
        @if let Some(t) = top { (t) }
        p { (ctx.t("group-intro")) }
        p { a href="/console/policies" { (ctx.t("nav-policies")) } " · " a href="/console/compliance" { (ctx.t("nav-compliance")) } }
        @if groups.is_empty() {
            p id="groups-none" { (ctx.t("group-none")) }
        } @else {
            table id="groups" {
                thead { tr {
                    th scope="col" { (ctx.t("group-name")) }
                    th scope="col" { (ctx.t("group-members")) }
                    th scope="col" { (ctx.t("group-policies")) }
                } }
                tbody {
                    @for g in &groups {
                        tr data-group=(g.id) {
                            td { a href={ "/console/groups/" (g.id) } { (g.name) } }
                            td { (rule_text(ctx, g)) }
                            td {
                                @if g.policies.is_empty() { span class="muted" { (ctx.t("group-no-policies")) } }
                                (g.policies.iter().map(|p| policy_name(p)).collect::<Vec<_>>().join(", "))
                            }
                        }
                    }
                }
            }
        }
        @if writable { (new_group_form(ctx, csrf)) }
    };
    page(ctx, status, "group-title", body)
}

fn new_group_form(ctx: &PageCtx, csrf: &str) -> Markup {
    html! {
        form method="post" action="/console/groups/new" id="group-form" {
            fieldset {
                legend { (ctx.t("group-new")) }
                input type="hidden" name="csrf" value=(csrf);
                label for="group-name" { (ctx.t("group-name")) }
                input type="text" id="group-name" name="name" maxlength="100" required;
                fieldset {
                    legend { (ctx.t("group-kind")) }
                    label class="inline" { input type="radio" name="kind" value="static" checked; " " (ctx.t("group-static")) }
                    label class="inline" { input type="radio" name="kind" value="dynamic"; " " (ctx.t("group-dynamic")) }
                }
                p class="hint" { (ctx.t("group-rule-hint")) }
                @for (id, key) in [("model", "group-rule-model"), ("product", "group-rule-product"), ("os_version", "group-rule-os"), ("department", "group-rule-department")] {
                    label for={ "rule-" (id) } { (ctx.t(key)) }
                    input type="text" id={ "rule-" (id) } name=(id) maxlength="100";
                }
                button type="submit" { (ctx.t("group-create")) }
            }
        }
    }
}

/// The new group form.
#[derive(Debug, Default, Deserialize)]
pub(super) struct NewGroup {
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    product: String,
    #[serde(default)]
    os_version: String,
    #[serde(default)]
    department: String,
}

/// `POST /console/groups/new`.
pub(super) async fn create(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Client(client): Client,
    shell: Shell,
    form: Result<Form<NewGroup>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/groups");
    let f = form.map(|Form(f)| f).unwrap_or_default();
    let given = |v: &str| {
        let v = v.trim();
        (!v.is_empty()).then(|| v.to_owned())
    };
    let rule = match f.kind.as_str() {
        "static" => None,
        "dynamic" => Some(GroupRule {
            model: given(&f.model),
            product: given(&f.product),
            os_version: given(&f.os_version),
            department: given(&f.department),
        }),
        _ => {
            let top = notice("group-error", "error", ctx.t("group-bad-kind"));
            return reshow(&s, &by, &ctx, &csrf, top).await;
        }
    };
    let input = GroupInput { name: f.name, rule };
    match s.create_group(&by, &client, &input).await {
        Ok(g) => redirect(&format!("/console/groups/{}?saved=1", g.id)),
        Err(CoreError::BadRequest(m) | CoreError::Conflict(m)) => {
            let text = super::i18n::text(ctx.lang, "group-refused", &[("reason", m.into())]);
            reshow(&s, &by, &ctx, &csrf, notice("group-error", "error", text)).await
        }
        Err(e) => err(e),
    }
}

async fn reshow(
    s: &Services,
    by: &Authorized<CommandsWrite>,
    ctx: &PageCtx,
    csrf: &str,
    top: Markup,
) -> Response {
    match by.actor().clone().authorize::<DevicesRead>() {
        Ok(read) => groups_page(s, &read, ctx, csrf, StatusCode::BAD_REQUEST, Some(top)).await,
        Err(e) => err(e),
    }
}

/// `GET /console/groups/{id}`.
pub(super) async fn show(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Shell { ctx, csrf }: Shell,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let top = done
        .saved
        .map(|_| notice("group-saved", "notice", ctx.t("group-saved")));
    group_page(&s, &by, &ctx, &csrf, &id, StatusCode::OK, top).await
}

/// Everything a group's page shows.
struct GroupData {
    group: DeviceGroup,
    policies: Vec<Policy>,
    rules: Option<ComplianceRules>,
}

async fn group_data(
    s: &Services,
    by: &Authorized<DevicesRead>,
    id: &str,
) -> Result<GroupData, CoreError> {
    Ok(GroupData {
        group: s.group(by, id).await?,
        policies: s.policies(by).await?,
        rules: s.group_compliance(by, id).await?,
    })
}

async fn group_page(
    s: &Services,
    by: &Authorized<DevicesRead>,
    ctx: &PageCtx,
    csrf: &str,
    id: &str,
    status: StatusCode,
    top: Option<Markup>,
) -> Response {
    let d = match group_data(s, by, id).await {
        Ok(d) => d,
        Err(CoreError::NotFound(_)) => {
            let body = html! { p { (ctx.t("group-missing")) } };
            return page(ctx, StatusCode::NOT_FOUND, "not-found-title", body);
        }
        Err(e) => return err(e),
    };
    let writable = by.actor().clone().authorize::<CommandsWrite>().is_ok();
    let g = &d.group;
    let base = format!("/console/groups/{}", g.id);
    let body = html! {
        @if let Some(t) = top { (t) }
        dl class="facts" id="group-facts" {
            dt { (ctx.t("group-members")) } dd { (rule_text(ctx, g)) }
            dt { (ctx.t("group-created")) } dd { (ctx.when(g.created_at)) }
        }
        section aria-labelledby="group-progress" {
            h2 id="group-progress" { (ctx.t("group-progress")) }
            p { a href={ (base) "/progress" } id="progress-link" { (ctx.t("group-progress-open")) } }
        }
        @if g.rule.is_none() { (members(ctx, csrf, g, &base, writable)) }
        (policies_form(ctx, csrf, g, &d.policies, &base, writable))
        (super::compliance::form(ctx, csrf, d.rules.as_ref(), &base, writable))
        @if writable {
            form method="post" action={ (base) "/delete" } id="group-delete" {
                input type="hidden" name="csrf" value=(csrf);
                p class="muted" { (ctx.t("group-delete-hint")) }
                button type="submit" class="danger" { (ctx.t("group-delete")) }
            }
        }
    };
    titled(ctx, status, &g.name, body)
}

fn members(ctx: &PageCtx, csrf: &str, g: &DeviceGroup, base: &str, writable: bool) -> Markup {
    html! {
        section aria-labelledby="group-member-list" {
            h2 id="group-member-list" { (ctx.t("group-members")) }
            form method="post" action={ (base) "/members" } id="members-form" {
                input type="hidden" name="csrf" value=(csrf);
                @if g.members.is_empty() {
                    p { (ctx.t("group-members-none")) }
                } @else {
                    ul id="members" {
                        @for m in g.members.iter().take(MEMBERS_SHOWN) {
                            li {
                                @if writable {
                                    label class="inline" {
                                        input type="checkbox" name="remove" value=(m);
                                        " " (ctx.t("group-remove")) " "
                                    }
                                }
                                a href={ "/console/devices/" (m) } { code { (m) } }
                            }
                        }
                    }
                    @if g.members.len() > MEMBERS_SHOWN { p class="muted" { (ctx.t("group-members-more")) } }
                }
                @if writable {
                    label for="members-add" { (ctx.t("group-add")) }
                    textarea id="members-add" name="add" rows="3" aria-describedby="members-add-hint" {}
                    p class="hint" id="members-add-hint" { (ctx.t("group-add-hint")) }
                    button type="submit" { (ctx.t("group-members-save")) }
                }
            }
        }
    }
}

fn policies_form(
    ctx: &PageCtx,
    csrf: &str,
    g: &DeviceGroup,
    all: &[Policy],
    base: &str,
    writable: bool,
) -> Markup {
    html! {
        section aria-labelledby="group-policy-list" {
            h2 id="group-policy-list" { (ctx.t("group-policies")) }
            @if all.is_empty() {
                p { (ctx.t("policy-none")) " " a href="/console/policies" { (ctx.t("nav-policies")) } }
            } @else {
                form method="post" action={ (base) "/policies" } id="policies-form" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="was" value=(g.policies.join(","));
                    fieldset disabled[!writable] {
                        legend { (ctx.t("group-policies-pick")) }
                        @for p in all {
                            label class="inline" {
                                input type="checkbox" name="policy" value=(p.id)
                                    checked[g.policies.contains(&p.id)];
                                " " (p.name)
                            }
                        }
                        button type="submit" { (ctx.t("group-policies-save")) }
                    }
                }
            }
        }
    }
}

/// A group's sub-forms answer with the group's page (an error) or a
/// redirect to it (done).
pub(super) async fn answer(
    s: &Services,
    by: &Authorized<CommandsWrite>,
    shell: Shell,
    id: &str,
    result: Result<(), CoreError>,
) -> Response {
    let base = format!("/console/groups/{id}");
    let Shell { ctx, csrf } = shell.at(&base);
    let m = match result {
        Ok(()) => return redirect(&format!("{base}?saved=1")),
        Err(CoreError::BadRequest(m) | CoreError::Conflict(m)) => m,
        Err(CoreError::NotFound(m)) if m.starts_with("no device") || m.starts_with("no policy") => {
            m
        }
        Err(e) => return err(e),
    };
    let text = super::i18n::text(ctx.lang, "group-refused", &[("reason", m.into())]);
    let top = notice("group-error", "error", text);
    match by.actor().clone().authorize::<DevicesRead>() {
        Ok(read) => {
            group_page(
                s,
                &read,
                &ctx,
                &csrf,
                id,
                StatusCode::BAD_REQUEST,
                Some(top),
            )
            .await
        }
        Err(e) => err(e),
    }
}

/// `POST /console/groups/{id}/members`: `add` (serial numbers or UDIDs,
/// one per line) and `remove` (UDIDs).
pub(super) async fn change_members(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Client(client): Client,
    shell: Shell,
    Path(id): Path<String>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let Ok(Form(pairs)) = form else {
        return answer(&s, &by, shell, &id, Err(unreadable())).await;
    };
    let result = async {
        let lines: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == "add")
            .flat_map(|(_, v)| v.lines())
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.len() > MEMBER_LINES {
            return Err(CoreError::BadRequest(format!(
                "at most {MEMBER_LINES} devices at a time"
            )));
        }
        let read = by.actor().clone().authorize::<DevicesRead>()?;
        let add = resolve(&s, &read, &lines).await?;
        let remove: Vec<String> = pairs
            .iter()
            .filter(|(k, _)| k == "remove")
            .map(|(_, v)| v.clone())
            .take(MEMBER_LINES)
            .collect();
        if add.is_empty() && remove.is_empty() {
            return Err(CoreError::BadRequest(
                "name a device to add, or tick one to remove".into(),
            ));
        }
        s.change_group_members(&by, &client, &id, &add, &remove)
            .await
            .map(|_| ())
    }
    .await;
    answer(&s, &by, shell, &id, result).await
}

/// Each line a serial number (exactly one device has it) or, when no
/// device has it as its serial number, a UDID: looked up in one pass.
async fn resolve(
    s: &Services,
    by: &Authorized<DevicesRead>,
    lines: &[&str],
) -> Result<Vec<String>, CoreError> {
    let serials: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    let found = s.udids_by_serial(by, &serials).await?;
    lines
        .iter()
        .map(|line| match found.get(*line).map(Vec::as_slice) {
            None => Ok((*line).to_owned()),
            Some([one]) => Ok(one.to_string()),
            Some(_) => Err(CoreError::BadRequest(format!(
                "{line:?}: several devices have this serial number; give the UDID"
            ))),
        })
        .collect()
}

/// `POST /console/groups/{id}/policies`: the ticked `policy` IDs.
pub(super) async fn set_policies(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Client(client): Client,
    shell: Shell,
    Path(id): Path<String>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let Ok(Form(pairs)) = form else {
        return answer(&s, &by, shell, &id, Err(unreadable())).await;
    };
    let mut chosen: Vec<String> = Vec::new();
    for (k, v) in &pairs {
        if k == "policy" && !chosen.contains(v) {
            chosen.push(v.clone());
        }
    }
    let was = pairs
        .iter()
        .find(|(k, _)| k == "was")
        .map(|(_, v)| v.as_str());
    let result = async {
        let read = by.actor().clone().authorize::<DevicesRead>()?;
        // A form made before someone else's change must not undo it (the
        // reconciler would take those profiles off the devices).
        if was != Some(s.group(&read, &id).await?.policies.join(",").as_str()) {
            return Err(changed_meanwhile());
        }
        s.set_group_policies(&by, &client, &id, &chosen)
            .await
            .map(|_| ())
    }
    .await;
    answer(&s, &by, shell, &id, result).await
}

/// `POST /console/groups/{id}/delete`.
pub(super) async fn delete(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Client(client): Client,
    Path(id): Path<String>,
) -> Response {
    match s.delete_group(&by, &client, &id).await {
        // Deleted, or already gone (a second submit).
        Ok(()) | Err(CoreError::NotFound(_)) => redirect("/console/groups?deleted=1"),
        Err(e) => err(e),
    }
}
