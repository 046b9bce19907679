//! The audit log in the console: the newest records (or those matching a
//! filter on action, actor or target), paged back through the log; where
//! the hash chain stands (newest record, last signed checkpoint, and a
//! full verification on demand); and each sink's delivery. The same
//! use-cases as `/api/v1/audit*` and `mamori audit verify`.

use super::page::{page, PageCtx, Shell};
use crate::auth::Auth;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mamori_core::access::permit::AuditRead;
use mamori_core::access::Authorized;
use mamori_core::{CoreError, Services};
use mamori_domain::AuditRecord;
use maud::{html, Markup};
use serde::Deserialize;

/// Records on one page.
const PAGE: usize = 100;
/// Records read at most to fill one filtered page.
const SCAN: i64 = 5_000;

/// The log's filters and where the page ends.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Filter {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    target: String,
    /// Show records before this sequence number (older pages).
    before: Option<i64>,
}

impl Filter {
    fn matches(&self, r: &AuditRecord) -> bool {
        let e = &r.event;
        let has = |field: &str, want: &str| want.trim().is_empty() || field.contains(want.trim());
        has(&e.action, &self.action)
            && has(&e.actor, &self.actor)
            && has(e.target.as_deref().unwrap_or(""), &self.target)
    }
}

/// Up to [`PAGE`] matching records before `before`, newest first, reading
/// at most [`SCAN`] records; and where an older page would start.
async fn records(
    s: &Services,
    by: &Authorized<AuditRead>,
    f: &Filter,
    before: i64,
) -> Result<(Vec<AuditRecord>, Option<i64>), CoreError> {
    let mut out = Vec::new();
    // Records with `floor < seq < end` are still to read, newest first.
    let mut end = before;
    let floor = (before - SCAN).max(0);
    while end - 1 > floor && out.len() < PAGE {
        let start = (end - 1 - PAGE as i64).max(floor);
        let limit = u32::try_from(end - 1 - start).unwrap_or(1);
        let mut chunk = s.audit_page(by, start, limit).await?;
        chunk.retain(|r| r.seq < end && f.matches(r));
        chunk.reverse();
        out.extend(chunk);
        end = start + 1;
    }
    let older = if out.len() >= PAGE {
        out.truncate(PAGE);
        out.last().map(|r| r.seq)
    } else {
        (end > 1).then_some(end)
    };
    Ok((out, older))
}

fn filter_form(ctx: &PageCtx, f: &Filter) -> Markup {
    super::page::search_form(
        ctx,
        "/console/audit",
        &[
            ("action", "audit-action", &f.action, "text"),
            ("actor", "audit-actor", &f.actor, "text"),
            ("target", "audit-target", &f.target, "text"),
        ],
        "audit-filter",
    )
}

fn table(ctx: &PageCtx, rows: &[AuditRecord]) -> Markup {
    html! {
        table id="audit" {
            thead { tr {
                th scope="col" { "#" }
                th scope="col" { (ctx.t("audit-at")) }
                th scope="col" { (ctx.t("audit-actor")) }
                th scope="col" { (ctx.t("audit-action")) }
                th scope="col" { (ctx.t("audit-target")) }
                th scope="col" { (ctx.t("audit-outcome")) }
                th scope="col" { (ctx.t("audit-detail")) }
            } }
            tbody {
                @for r in rows {
                    tr data-seq=(r.seq) {
                        td { (r.seq) }
                        td { (ctx.when(r.event.at)) }
                        td { (r.event.actor) br; span class="muted" { (r.event.source.clone().unwrap_or_default()) } }
                        td { code { (r.event.action) } }
                        td { (r.event.target.clone().unwrap_or_default()) }
                        td { (r.event.outcome) }
                        td class="detail" { (r.event.detail.clone().unwrap_or_default()) }
                    }
                }
            }
        }
    }
}

async fn chain_and_sinks(
    s: &Services,
    by: &Authorized<AuditRead>,
    ctx: &PageCtx,
    csrf: &str,
) -> Result<(i64, Markup), CoreError> {
    let (last, checkpoint) = s.audit_head(by).await?;
    let sinks = s.audit_sink_status(by).await?;
    Ok((
        last,
        html! {
            section aria-labelledby="audit-chain" {
                h2 id="audit-chain" { (ctx.t("audit-chain")) }
                dl class="facts" {
                    dt { (ctx.t("audit-newest")) } dd id="audit-newest" { (last) }
                    dt { (ctx.t("audit-checkpoint")) }
                    dd id="audit-checkpoint" {
                        @match checkpoint {
                            Some((seq, at)) => { "#" (seq) " — " (ctx.when(at)) },
                            None => { (ctx.t("audit-no-checkpoint")) },
                        }
                    }
                }
                form method="post" action="/console/audit/verify" id="verify-form" {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { (ctx.t("audit-verify")) }
                }
            }
            section aria-labelledby="audit-sinks" {
                h2 id="audit-sinks" { (ctx.t("audit-sinks")) }
                @if sinks.is_empty() { p { (ctx.t("audit-no-sinks")) } }
                ul {
                    @for x in &sinks {
                        li {
                            strong { (x.sink.name) } " (" (x.sink.kind) ") — "
                            (super::i18n::text(ctx.lang, "audit-sink-behind", &[("count", x.behind.into())]))
                            @if let Some(e) = &x.last_error { " — " span class="error" { (e) } }
                        }
                    }
                }
            }
        },
    ))
}

async fn audit_page(
    s: &Services,
    by: &Authorized<AuditRead>,
    ctx: &PageCtx,
    csrf: &str,
    f: &Filter,
    top: Option<Markup>,
) -> Response {
    let (last, head) = match chain_and_sinks(s, by, ctx, csrf).await {
        Ok(x) => x,
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let before = f.before.unwrap_or(last + 1).clamp(1, last + 1);
    let (rows, older) = match records(s, by, f, before).await {
        Ok(x) => x,
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let older_link = older.map(|b| {
        format!(
            "/console/audit?action={}&actor={}&target={}&before={b}",
            urlencoding::encode(&f.action),
            urlencoding::encode(&f.actor),
            urlencoding::encode(&f.target)
        )
    });
    let body = html! {
        @if let Some(t) = top { (t) }
        (head)
        section aria-labelledby="audit-records" {
            h2 id="audit-records" { (ctx.t("audit-records")) }
            (filter_form(ctx, f))
            @if rows.is_empty() { p id="audit-none" { (ctx.t("audit-none")) } } @else { (table(ctx, &rows)) }
            @if let Some(href) = older_link { p { a rel="next" href=(href) { (ctx.t("audit-older")) } } }
        }
    };
    page(ctx, StatusCode::OK, "audit-title", body)
}

/// `GET /console/audit`.
pub(super) async fn index(
    State(s): State<Services>,
    Auth(by): Auth<AuditRead>,
    Shell { ctx, csrf }: Shell,
    Query(f): Query<Filter>,
) -> Response {
    audit_page(&s, &by, &ctx, &csrf, &f, None).await
}

/// One verification at a time in this process: each reads the whole log.
static VERIFYING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `POST /console/audit/verify`: the whole chain checked now (one at a
/// time: another press while one runs is told so).
pub(super) async fn verify(
    State(s): State<Services>,
    Auth(by): Auth<AuditRead>,
    shell: Shell,
) -> Response {
    let Shell { ctx, csrf } = shell.at("/console/audit");
    let Ok(_one) = VERIFYING.try_lock() else {
        let top = html! { p class="notice" role="status" id="verify-busy" { (ctx.t("audit-verify-busy")) } };
        return audit_page(&s, &by, &ctx, &csrf, &Filter::default(), Some(top)).await;
    };
    let top = match s.verify_audit().await {
        Ok(v) => match &v.fault {
            None => html! { p class="notice" role="status" id="verify-ok" {
                (super::i18n::text(ctx.lang, "audit-verified", &[
                    ("records", v.records.into()),
                    ("checkpoints", v.checkpoints.into()),
                    ("unchained", v.unchained.into()),
                    ("truncated", v.truncated_up_to.unwrap_or(0).into()),
                ]))
            } },
            Some(fault) => html! { p class="error" role="alert" id="verify-fault" {
                (super::i18n::text(ctx.lang, "audit-fault", &[("fault", fault.as_str().into())]))
            } },
        },
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    audit_page(&s, &by, &ctx, &csrf, &Filter::default(), Some(top)).await
}
