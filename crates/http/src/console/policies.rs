//! Policies in the console: the list (kind, platforms, version, the groups
//! each is assigned to), a new policy of each kind, and a policy's page,
//! whose form is generated from Apple's schema for its payload
//! (`policy_form`). A form that does not check out is shown again with
//! each error next to its field and nothing stored. The same use-cases as
//! `/api/v1/policies`.

use super::page::{notice, page, redirect, titled, PageCtx, Shell};
use super::policy_form::{self, Shown};
use crate::auth::Auth;
use crate::extract::{Client, Path};
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use mamori_core::access::permit::{CommandsWrite, DevicesRead};
use mamori_core::access::{Authorized, ClientContext};
use mamori_core::fleet::policies::{PolicyChange, PolicyInput, PLATFORMS};
use mamori_core::{CoreError, Services};
use mamori_domain::{Policy, PolicyKind};
use mamori_protocol::schema::{check_payload_platform, profile_schema, validate_payload};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::BTreeMap;

fn kind_label(ctx: &PageCtx, kind: PolicyKind) -> String {
    ctx.t(&format!("policy-kind-{}", kind.as_str()))
}

fn platforms_text(ctx: &PageCtx, platforms: &[String]) -> String {
    if platforms.is_empty() {
        ctx.t("policy-all-platforms")
    } else {
        platforms.join(", ")
    }
}

/// Group names by the policies assigned to them.
async fn assignments(
    s: &Services,
    by: &Authorized<DevicesRead>,
) -> Result<BTreeMap<String, Vec<(String, String)>>, CoreError> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for g in s.groups(by).await? {
        for p in &g.policies {
            out.entry(p.clone())
                .or_default()
                .push((g.id.clone(), g.name.clone()));
        }
    }
    Ok(out)
}

/// `?deleted=1` after a delete, `?saved=1` after a save.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Done {
    deleted: Option<String>,
    saved: Option<String>,
}

/// `GET /console/policies`.
pub(super) async fn list(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    Shell { ctx, .. }: Shell,
    Query(done): Query<Done>,
) -> Response {
    let (policies, assigned) = match (s.policies(&by).await, assignments(&s, &by).await) {
        (Ok(p), Ok(a)) => (p, a),
        (Err(e), _) | (_, Err(e)) => return crate::error::ApiError(e).into_response(),
    };
    let writable = by.actor().clone().authorize::<CommandsWrite>().is_ok();
    let body = html! {
        @if done.deleted.is_some() { (notice("policy-deleted", "notice", ctx.t("policy-deleted"))) }
        p { (ctx.t("policy-intro")) }
        @if writable {
            nav aria-label=(ctx.t("policy-new")) class="actions" {
                @for kind in PolicyKind::ALL {
                    a href={ "/console/policies/new?kind=" (kind.as_str()) } id={ "new-" (kind.as_str()) } {
                        (ctx.t("policy-new")) ": " (kind_label(&ctx, *kind))
                    }
                }
            }
        }
        @if policies.is_empty() {
            p id="policies-none" { (ctx.t("policy-none")) }
        } @else {
            table id="policies" {
                thead { tr {
                    th scope="col" { (ctx.t("policy-name")) }
                    th scope="col" { (ctx.t("policy-kind")) }
                    th scope="col" { (ctx.t("policy-platforms")) }
                    th scope="col" { (ctx.t("policy-version")) }
                    th scope="col" { (ctx.t("policy-updated")) }
                    th scope="col" { (ctx.t("policy-groups")) }
                } }
                tbody {
                    @for p in &policies {
                        tr data-policy=(p.id) {
                            td { a href={ "/console/policies/" (p.id) } { (p.name) } }
                            td { (kind_label(&ctx, p.kind)) }
                            td { (platforms_text(&ctx, &p.platforms)) }
                            td { (p.version) }
                            td { (ctx.when(p.updated_at)) }
                            td {
                                @match assigned.get(&p.id) {
                                    Some(groups) => {
                                        @for (i, (id, name)) in groups.iter().enumerate() {
                                            @if i > 0 { ", " }
                                            a href={ "/console/groups/" (id) } { (name) }
                                        }
                                    }
                                    None => span class="muted" { (ctx.t("policy-unassigned")) },
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(&ctx, StatusCode::OK, "policy-title", body)
}

/// What the editor shows.
struct Editor<'a> {
    kind: PolicyKind,
    /// Where the form posts.
    action: String,
    name: &'a str,
    settings: &'a Json,
    secrets: &'a [String],
    platforms: &'a [String],
    /// The version the form was made from (None: a new policy).
    version: Option<i64>,
    errors: &'a BTreeMap<String, String>,
    /// Whether the viewer may change policies.
    writable: bool,
}

fn editor(ctx: &PageCtx, csrf: &str, e: &Editor<'_>) -> Markup {
    let Some(schema) = profile_schema(e.kind.payload_type()) else {
        return html! { p class="error" { (ctx.t("policy-no-schema")) } };
    };
    let shown = Shown {
        settings: e.settings,
        secrets: e.secrets,
        errors: e.errors,
    };
    let name_error = e.errors.get("name");
    html! {
        @if !e.errors.is_empty() {
            div role="alert" id="policy-errors" {
                p class="error" { (ctx.t("policy-errors")) }
                ul class="errors" {
                    @for (field, message) in e.errors {
                        li { code { (field.strip_prefix("s.").unwrap_or(field)) } ": " (message) }
                    }
                }
            }
        }
        form method="post" action=(e.action) id="policy-form" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="kind" value=(e.kind.as_str());
            @if let Some(v) = e.version { input type="hidden" name="version" value=(v); }
            fieldset disabled[!e.writable] {
                legend { (kind_label(ctx, e.kind)) " " code { (e.kind.payload_type()) } }
                div class="field" {
                    label for="policy-name" { (ctx.t("policy-name")) }
                    input type="text" id="policy-name" name="name" value=(e.name) maxlength="100"
                        required aria-invalid=[name_error.map(|_| "true")];
                    @if let Some(m) = name_error { p class="field-error" { (m) } }
                }
                fieldset id="policy-platforms" {
                    legend { (ctx.t("policy-platforms")) }
                    p class="hint" { (ctx.t("policy-platforms-hint")) }
                    @for p in PLATFORMS.iter().filter(|p| !schema.unsupported_on.iter().any(|u| u == *p)) {
                        label class="inline" {
                            input type="checkbox" name="platform" value=(p)
                                checked[e.platforms.iter().any(|x| x == p)];
                            " " (p)
                        }
                    }
                    @if let Some(m) = e.errors.get("platform") { p class="field-error" { (m) } }
                }
                p class="hint" lang="en" { (schema.title) }
                (policy_form::fields(ctx, &schema.keys, &shown))
                button type="submit" { (ctx.t(if e.version.is_some() { "policy-save" } else { "policy-create" })) }
            }
        }
    }
}

/// `?kind=` of a new policy.
#[derive(Debug, Default, Deserialize)]
pub(super) struct KindQuery {
    kind: Option<String>,
}

/// `GET /console/policies/new?kind=passcode`.
pub(super) async fn new_form(
    Auth(_by): Auth<CommandsWrite>,
    Shell { ctx, csrf }: Shell,
    Query(q): Query<KindQuery>,
) -> Response {
    let Some(kind) = q.kind.as_deref().and_then(PolicyKind::parse) else {
        let body = html! { p class="error" { (ctx.t("policy-bad-kind")) } };
        return page(&ctx, StatusCode::NOT_FOUND, "policy-title", body);
    };
    let e = Editor {
        kind,
        action: "/console/policies/new".into(),
        name: "",
        settings: &Json::Object(serde_json::Map::new()),
        secrets: &[],
        platforms: &[],
        version: None,
        errors: &BTreeMap::new(),
        writable: true,
    };
    let body = editor(&ctx, &csrf, &e);
    page(&ctx, StatusCode::OK, "policy-new-title", body)
}

/// A policy form as posted, read and checked against the schema.
struct Posted {
    kind: PolicyKind,
    name: String,
    settings: Json,
    platforms: Vec<String>,
    version: Option<i64>,
    errors: BTreeMap<String, String>,
}

/// Reads a posted form; `kept` are the secrets already set. None: the
/// form is not a policy form at all.
fn posted(ctx: &PageCtx, pairs: &[(String, String)], kept: &[String]) -> Option<Posted> {
    let answers = policy_form::answers(pairs);
    let kind = PolicyKind::parse(answers.get("kind")?)?;
    let schema = profile_schema(kind.payload_type())?;
    let read = policy_form::read(ctx, &schema.keys, &answers, kept);
    let mut errors = read.errors;
    let platforms: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "platform")
        .map(|(_, v)| v.clone())
        .collect();
    if errors.is_empty() {
        // The same checks core makes, here to put each error next to its
        // field (core checks again).
        let full = policy_form::with_kept_secrets(&read.settings, kept);
        let mut checks = vec![validate_payload(kind.payload_type(), &full).err()];
        for p in &platforms {
            checks.push(check_payload_platform(kind.payload_type(), &full, p).err());
        }
        for e in checks.into_iter().flatten() {
            let field = policy_form::error_field(kind.payload_type(), &e)
                .unwrap_or_else(|| "platform".to_owned());
            errors.entry(field).or_insert_with(|| e.to_string());
        }
    }
    Some(Posted {
        kind,
        name: answers.get("name").copied().unwrap_or("").to_owned(),
        settings: read.settings,
        platforms,
        version: answers.get("version").and_then(|v| v.parse().ok()),
        errors,
    })
}

/// Where core's refusal goes: a name conflict by the name, the rest on top.
fn refusal(e: CoreError, errors: &mut BTreeMap<String, String>) -> Result<(), CoreError> {
    match e {
        CoreError::Conflict(m) | CoreError::BadRequest(m) => {
            let field = if m.starts_with("invalid settings") || m.starts_with("platforms") {
                "platform"
            } else if m.starts_with("the policy changed") {
                "version"
            } else {
                "name"
            };
            errors.insert(field.to_owned(), m);
            Ok(())
        }
        other => Err(other),
    }
}

fn bad_form(ctx: &PageCtx) -> Response {
    let body = html! { p class="error" { (ctx.t("policy-bad-kind")) } };
    page(ctx, StatusCode::BAD_REQUEST, "policy-title", body)
}

/// `POST /console/policies/new`.
pub(super) async fn create(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Client(client): Client,
    shell: Shell,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/policies/new");
    let pairs = form.map(|Form(f)| f).unwrap_or_default();
    let Some(mut p) = posted(&ctx, &pairs, &[]) else {
        return bad_form(&ctx);
    };
    if p.errors.is_empty() {
        let input = PolicyInput {
            name: p.name.clone(),
            kind: p.kind.as_str().to_owned(),
            settings: p.settings.clone(),
            platforms: p.platforms.clone(),
        };
        match s.create_policy(&by, &client, &input).await {
            Ok(created) => return redirect(&format!("/console/policies/{}?saved=1", created.id)),
            Err(e) => {
                if let Err(e) = refusal(e, &mut p.errors) {
                    return crate::error::ApiError(e).into_response();
                }
            }
        }
    }
    let e = Editor {
        kind: p.kind,
        action: "/console/policies/new".into(),
        name: &p.name,
        settings: &p.settings,
        secrets: &[],
        platforms: &p.platforms,
        version: None,
        errors: &p.errors,
        writable: true,
    };
    let body = editor(&ctx, &csrf, &e);
    page(&ctx, StatusCode::BAD_REQUEST, "policy-new-title", body)
}

/// A policy's page: `top` above its form, where it is assigned, and its
/// delete button.
async fn policy_page(
    s: &Services,
    by: &Authorized<DevicesRead>,
    shell: &Shell,
    status: StatusCode,
    policy: &Policy,
    edited: Option<&Posted>,
    top: Option<Markup>,
) -> Response {
    let (ctx, csrf) = (&shell.ctx, shell.csrf.as_str());
    let assigned = match assignments(s, by).await {
        Ok(a) => a.get(&policy.id).cloned().unwrap_or_default(),
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let writable = by.actor().clone().authorize::<CommandsWrite>().is_ok();
    let none = BTreeMap::new();
    let action = format!("/console/policies/{}/save", policy.id);
    let e = match edited {
        Some(p) => Editor {
            kind: policy.kind,
            action,
            name: &p.name,
            settings: &p.settings,
            secrets: &policy.secrets,
            platforms: &p.platforms,
            version: p.version.or(Some(policy.version)),
            errors: &p.errors,
            writable,
        },
        None => Editor {
            kind: policy.kind,
            action,
            name: &policy.name,
            settings: &policy.settings,
            secrets: &policy.secrets,
            platforms: &policy.platforms,
            version: Some(policy.version),
            errors: &none,
            writable,
        },
    };
    let body = html! {
        @if let Some(top) = top { (top) }
        dl class="facts" id="policy-facts" {
            dt { (ctx.t("policy-version")) } dd { (policy.version) }
            dt { (ctx.t("policy-updated")) } dd { (ctx.when(policy.updated_at)) }
            dt { (ctx.t("policy-identifier")) } dd { code { (policy.profile_identifier) } }
            dt { (ctx.t("policy-groups")) }
            dd {
                @if assigned.is_empty() { span class="muted" { (ctx.t("policy-unassigned")) } }
                @for (i, (id, name)) in assigned.iter().enumerate() {
                    @if i > 0 { ", " }
                    a href={ "/console/groups/" (id) } { (name) }
                }
            }
        }
        (editor(ctx, csrf, &e))
        @if writable {
            form method="post" action={ "/console/policies/" (policy.id) "/delete" } id="policy-delete" {
                input type="hidden" name="csrf" value=(csrf);
                p class="muted" { (ctx.t("policy-delete-hint")) }
                button type="submit" class="danger" { (ctx.t("policy-delete")) }
            }
        }
    };
    titled(ctx, status, &policy.name, body)
}

async fn load(
    s: &Services,
    by: &Authorized<DevicesRead>,
    ctx: &PageCtx,
    id: &str,
) -> Result<Policy, Response> {
    match s.policy(by, id).await {
        Ok(p) => Ok(p),
        Err(CoreError::NotFound(_)) => {
            let body = html! { p { (ctx.t("policy-missing")) } };
            Err(page(ctx, StatusCode::NOT_FOUND, "not-found-title", body))
        }
        Err(e) => Err(crate::error::ApiError(e).into_response()),
    }
}

/// `GET /console/policies/{id}`.
pub(super) async fn show(
    State(s): State<Services>,
    Auth(by): Auth<DevicesRead>,
    shell: Shell,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let ctx = &shell.ctx;
    let policy = match load(&s, &by, ctx, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let top = done
        .saved
        .map(|_| notice("policy-saved", "notice", ctx.t("policy-saved")));
    policy_page(&s, &by, &shell, StatusCode::OK, &policy, None, top).await
}

/// `POST /console/policies/{id}/save`.
pub(super) async fn save(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Client(client): Client,
    shell: Shell,
    Path(id): Path<String>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let read_proof = match by.actor().clone().authorize::<DevicesRead>() {
        Ok(p) => p,
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let shell = shell.at(&format!("/console/policies/{id}"));
    let ctx = &shell.ctx;
    let policy = match load(&s, &read_proof, ctx, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let pairs = form.map(|Form(f)| f).unwrap_or_default();
    let Some(mut p) = posted(ctx, &pairs, &policy.secrets) else {
        return bad_form(ctx);
    };
    if p.kind != policy.kind {
        return bad_form(ctx);
    }
    if p.errors.is_empty() {
        match update(&s, &by, &client, &policy, &p).await {
            Ok(()) => return redirect(&format!("/console/policies/{}?saved=1", policy.id)),
            Err(e) => {
                if let Err(e) = refusal(e, &mut p.errors) {
                    return crate::error::ApiError(e).into_response();
                }
            }
        }
    }
    let top = notice("policy-error", "error", ctx.t("policy-not-saved"));
    policy_page(
        &s,
        &read_proof,
        &shell,
        StatusCode::BAD_REQUEST,
        &policy,
        Some(&p),
        Some(top),
    )
    .await
}

async fn update(
    s: &Services,
    by: &Authorized<CommandsWrite>,
    client: &ClientContext,
    policy: &Policy,
    p: &Posted,
) -> Result<(), CoreError> {
    let change = PolicyChange {
        name: Some(p.name.clone()),
        settings: Some(p.settings.clone()),
        platforms: Some(p.platforms.clone()),
        expected_version: p.version,
    };
    s.update_policy(by, client, &policy.id, &change).await?;
    Ok(())
}

/// `POST /console/policies/{id}/delete`.
pub(super) async fn delete(
    State(s): State<Services>,
    Auth(by): Auth<CommandsWrite>,
    Client(client): Client,
    Path(id): Path<String>,
) -> Response {
    match s.delete_policy(&by, &client, &id).await {
        // Deleted, or already gone (a second submit): the list says so.
        Ok(()) | Err(CoreError::NotFound(_)) => redirect("/console/policies?deleted=1"),
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}
