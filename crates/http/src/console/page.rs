//! The page shell every console page shares: language, title, header with
//! the language switch and sign-out, the main landmark; and the answers a
//! page gives (a page, a redirect).

use super::i18n::{text, Lang, LANG_COOKIE};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

/// What a page knows of the request it answers.
#[derive(Debug, Clone)]
pub(crate) struct PageCtx {
    /// The language of the page.
    pub lang: Lang,
    /// The user chose the language with `?lang=` (remember it).
    pub chosen: bool,
    /// The path of the page (for the language switch).
    pub path: String,
    /// The session's CSRF token, when signed in (for the sign-out form).
    pub csrf: Option<String>,
}

impl PageCtx {
    /// A message in the page's language.
    pub(crate) fn t(&self, key: &str) -> String {
        text(self.lang, key, &[])
    }
}

/// A whole page: `status`, its `<title>` from the catalogue key `title`,
/// and `body` inside `<main>`.
pub(crate) fn page(ctx: &PageCtx, status: StatusCode, title: &str, body: Markup) -> Response {
    let other = ctx.lang.other();
    let markup = html! {
        (DOCTYPE)
        html lang=(ctx.lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (ctx.t(title)) " — " (ctx.t("product")) }
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body {
                a class="skip" href="#main" { (ctx.t("skip-to-content")) }
                header {
                    span class="product" { (ctx.t("product")) }
                    nav {
                        a href={ (ctx.path) "?lang=" (other.tag()) } lang=(other.tag()) hreflang=(other.tag()) {
                            (ctx.t("language-switch"))
                        }
                        @if let Some(csrf) = &ctx.csrf {
                            " "
                            form method="post" action="/console/sign-out" {
                                input type="hidden" name="csrf" value=(csrf);
                                button class="link" type="submit" { (ctx.t("sign-out")) }
                            }
                        }
                    }
                }
                main id="main" {
                    h1 { (ctx.t(title)) }
                    (body)
                }
            }
        }
    };
    let mut resp = (status, markup.into_string()).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if ctx.chosen {
        let cookie = format!(
            "{LANG_COOKIE}={}; Path=/; Secure; SameSite=Strict; Max-Age=31536000",
            ctx.lang.tag()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// The form that takes a 6-digit authenticator code (signing in, setting
/// up TOTP): posted to `action` with the session's CSRF token.
pub(crate) fn code_form(ctx: &PageCtx, csrf: &str, action: &str, button: &str) -> Markup {
    html! {
        form method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            label for="code" { (ctx.t("field-code")) }
            input type="text" id="code" name="code" inputmode="numeric"
                autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required;
            button type="submit" { (ctx.t(button)) }
        }
    }
}

/// `303 See Other` to `to` (after a form, or to the page a session's stage
/// calls for).
pub(crate) fn see_other(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}
