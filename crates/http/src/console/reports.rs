//! The breach-scope report in the console: which people's data a person,
//! a token or a network read in a window, from the audit trail; shown as
//! a page and downloadable as CSV (pseudonymous IDs: the report names no
//! one). The same use-case as `/api/v1/reports/breach-scope`.

use super::page::{page, PageCtx, Shell};
use crate::auth::Auth;
use crate::extract::Client;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use mamori_core::access::permit::AuditRead;
use mamori_core::{CoreError, Services};
use mamori_domain::breach::{BreachScope, Network, ScopeFilter};
use maud::{html, Markup};
use serde::Deserialize;
use time::OffsetDateTime;

/// The report's form (dates as `YYYY-MM-DD` in the organisation's zone,
/// both days included).
#[derive(Debug, Default, Deserialize)]
pub(super) struct ScopeForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    network: String,
}

/// The longest window one report covers, in days.
const MAX_DAYS: i64 = 400;

/// People listed on the page (the CSV carries them all).
const SHOWN: usize = 200;

impl ScopeForm {
    fn is_empty(&self) -> bool {
        self.from.is_empty() && self.to.is_empty()
    }

    /// The window and filter, or the catalogue key of what is wrong.
    fn parse(
        &self,
        ctx: &PageCtx,
    ) -> Result<(OffsetDateTime, OffsetDateTime, ScopeFilter), &'static str> {
        let from = ctx.day_start(&self.from).ok_or("scope-bad-from")?;
        let to = ctx
            .day_start(&self.to)
            .and_then(|t| t.checked_add(time::Duration::days(1)))
            .ok_or("scope-bad-to")?;
        if to <= from {
            return Err("scope-bad-window");
        }
        // One report reads every access record of its window: at most
        // about a year and a month at a time.
        if to - from > time::Duration::days(MAX_DAYS) {
            return Err("scope-too-long");
        }
        let network = match self.network.trim() {
            "" => None,
            n => Some(Network::parse(n).ok_or("scope-bad-network")?),
        };
        let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok((
            from,
            to,
            ScopeFilter {
                actor: some(&self.actor),
                token: some(&self.token),
                network,
            },
        ))
    }

    fn query(&self) -> String {
        [
            ("from", &self.from),
            ("to", &self.to),
            ("actor", &self.actor),
            ("token", &self.token),
            ("network", &self.network),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencoding::encode(v)))
        .collect::<Vec<_>>()
        .join("&")
    }
}

fn form(ctx: &PageCtx, f: &ScopeForm, error: Option<String>) -> Markup {
    html! {
        p { (ctx.t("scope-intro")) }
        @if let Some(e) = error {
            p class="error" role="alert" id="scope-error" { (e) }
        }
        (super::page::search_form(
            ctx,
            "/console/reports/breach-scope",
            &[
                ("from", "scope-from", &f.from, "date"),
                ("to", "scope-to", &f.to, "date"),
                ("actor", "scope-actor", &f.actor, "text"),
                ("token", "scope-token", &f.token, "text"),
                ("network", "scope-network", &f.network, "text"),
            ],
            "scope-run",
        ))
    }
}

fn result(ctx: &PageCtx, f: &ScopeForm, r: &BreachScope) -> Markup {
    html! {
        section aria-labelledby="scope-result" {
            h2 id="scope-result" { (ctx.t("scope-result")) }
            dl class="figures" {
                div class="figure" id="scope-records" { dt { (ctx.t("scope-records")) } dd { (r.records) } }
                div class="figure" id="scope-people" { dt { (ctx.t("scope-people")) } dd { (r.people_affected) } }
            }
            p { a id="scope-csv" href={ "/console/reports/breach-scope.csv?" (f.query()) } download="breach-scope.csv" {
                (ctx.t("scope-download"))
            } }
            @if !r.by_field.is_empty() {
                h3 { (ctx.t("scope-by-field")) }
                dl class="facts" {
                    @for (field, n) in &r.by_field { dt { (field) } dd { (n) } }
                }
            }
            @if !r.by_actor.is_empty() {
                h3 { (ctx.t("scope-by-actor")) }
                table id="scope-actors" {
                    thead { tr {
                        th scope="col" { (ctx.t("scope-actor")) }
                        th scope="col" { (ctx.t("scope-people")) }
                        th scope="col" { (ctx.t("scope-records")) }
                    } }
                    tbody { @for a in &r.by_actor { tr { td { (a.actor) } td { (a.people) } td { (a.reads) } } } }
                }
            }
            @if !r.people.is_empty() {
                h3 { (ctx.t("scope-people-list")) }
                table id="scope-people-table" {
                    thead { tr {
                        th scope="col" { (ctx.t("person-id")) }
                        th scope="col" { (ctx.t("scope-fields")) }
                        th scope="col" { (ctx.t("scope-records")) }
                        th scope="col" { (ctx.t("scope-first")) }
                        th scope="col" { (ctx.t("scope-last")) }
                    } }
                    tbody {
                        @for p in r.people.iter().take(SHOWN) {
                            tr {
                                td { a href={ "/console/people/" (p.person) } { code { (p.person) } } }
                                td { (p.fields.join(", ")) }
                                td { (p.reads) }
                                td { (ctx.when(p.first)) }
                                td { (ctx.when(p.last)) }
                            }
                        }
                    }
                }
                @if r.people.len() > SHOWN {
                    p { (super::i18n::text(ctx.lang, "scope-more", &[("count", r.people.len().into())])) }
                }
            }
        }
    }
}

async fn run(
    s: &Services,
    ctx: &PageCtx,
    by: &mamori_core::access::Authorized<AuditRead>,
    client: &mamori_core::access::ClientContext,
    f: &ScopeForm,
) -> Result<BreachScope, Result<&'static str, CoreError>> {
    let (from, to, filter) = f.parse(ctx).map_err(Ok)?;
    s.breach_scope(by, client, from, to, &filter)
        .await
        .map_err(Err)
}

/// `GET /console/reports/breach-scope`.
pub(super) async fn breach_scope(
    State(s): State<Services>,
    Auth(by): Auth<AuditRead>,
    Client(client): Client,
    Shell { ctx, .. }: Shell,
    Query(f): Query<ScopeForm>,
) -> Response {
    if f.is_empty() {
        return page(&ctx, StatusCode::OK, "scope-title", form(&ctx, &f, None));
    }
    match run(&s, &ctx, &by, &client, &f).await {
        Ok(r) => {
            let body = html! { (form(&ctx, &f, None)) (result(&ctx, &f, &r)) };
            page(&ctx, StatusCode::OK, "scope-title", body)
        }
        Err(Ok(key)) => page(
            &ctx,
            StatusCode::BAD_REQUEST,
            "scope-title",
            form(&ctx, &f, Some(ctx.t(key))),
        ),
        Err(Err(CoreError::BadRequest(m))) => page(
            &ctx,
            StatusCode::BAD_REQUEST,
            "scope-title",
            form(&ctx, &f, Some(m)),
        ),
        Err(Err(e)) => crate::error::ApiError(e).into_response(),
    }
}

/// One CSV cell: quoted, quotes doubled, and a leading `=`, `+`, `-` or
/// `@` defused so a spreadsheet never reads it as a formula.
fn cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `GET /console/reports/breach-scope.csv`: every person in scope.
pub(super) async fn breach_scope_csv(
    State(s): State<Services>,
    Auth(by): Auth<AuditRead>,
    Client(client): Client,
    Shell { ctx, .. }: Shell,
    Query(f): Query<ScopeForm>,
) -> Response {
    let r = match run(&s, &ctx, &by, &client, &f).await {
        Ok(r) => r,
        Err(Ok(key)) => return (StatusCode::BAD_REQUEST, ctx.t(key)).into_response(),
        Err(Err(e)) => return crate::error::ApiError(e).into_response(),
    };
    let mut out = String::from("person,fields,reads,first,last,actors\r\n");
    for p in &r.people {
        out.push_str(&format!(
            "{},{},{},{},{},{}\r\n",
            cell(&p.person),
            cell(&p.fields.join(" ")),
            p.reads,
            cell(&rfc3339(p.first)),
            cell(&rfc3339(p.last)),
            cell(&p.actors.join(" "))
        ));
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"breach-scope.csv\"",
            ),
        ],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn a_csv_cell_is_quoted_and_never_a_formula() {
        assert_eq!(cell("p-1"), "\"p-1\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("+1"), "\"'+1\"");
        assert_eq!(cell("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(cell("\t=1"), "\"'\t=1\"");
    }
}
