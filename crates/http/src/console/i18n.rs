//! The console's languages: Japanese and English, every string from a
//! Fluent catalogue embedded at build time (`crates/http/console/locales/`).
//! The language is chosen by `?lang=`, then the `mamori_lang` cookie the
//! switch sets, then the browser's `Accept-Language`; Japanese otherwise.

use axum::http::{header, HeaderMap};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use std::sync::OnceLock;

/// The cookie that keeps the language the user chose.
pub(crate) const LANG_COOKIE: &str = "mamori_lang";

const EN: &str = include_str!("../../console/locales/en.ftl");
const JA: &str = include_str!("../../console/locales/ja.ftl");

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    /// 日本語.
    Ja,
    /// English.
    En,
}

impl Lang {
    /// The language's tag (`lang` attribute, cookie value).
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Self::Ja => "ja",
            Self::En => "en",
        }
    }

    /// The other language (for the switch).
    pub(crate) fn other(self) -> Self {
        match self {
            Self::Ja => Self::En,
            Self::En => Self::Ja,
        }
    }

    fn parse(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "ja" => Some(Self::Ja),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The language of a request: `?lang=`, the cookie, `Accept-Language`
    /// (highest weight first), then Japanese.
    pub(crate) fn negotiate(query: Option<&str>, headers: &HeaderMap) -> Self {
        if let Some(l) = query.and_then(Self::parse) {
            return l;
        }
        if let Some(l) = crate::auth::cookie_value(headers, LANG_COOKIE).and_then(Self::parse) {
            return l;
        }
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        accept_language(accept).unwrap_or(Self::Ja)
    }
}

/// The first language of ours in an `Accept-Language` value, by weight
/// (`q`), ties in the order given. At most 32 entries are read.
fn accept_language(value: &str) -> Option<Lang> {
    let mut best: Option<(u16, Lang)> = None;
    for item in value.split(',').take(32) {
        let mut parts = item.split(';');
        let Some(lang) = parts.next().and_then(Lang::parse) else {
            continue;
        };
        let weight = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map_or(1000, |q| {
                q.trim()
                    .parse::<f32>()
                    .map_or(0, |w| (w.clamp(0.0, 1.0) * 1000.0).round() as u16)
            });
        if weight > 0 && best.is_none_or(|(w, _)| weight > w) {
            best = Some((weight, lang));
        }
    }
    best.map(|(_, l)| l)
}

struct Catalogues {
    ja: FluentBundle<FluentResource>,
    en: FluentBundle<FluentResource>,
}

fn bundle(tag: &str, source: &str) -> Result<FluentBundle<FluentResource>, String> {
    let id = tag.parse().map_err(|e| format!("language {tag}: {e:?}"))?;
    let resource = FluentResource::try_new(source.to_owned())
        .map_err(|(_, errors)| format!("catalogue {tag}: {errors:?}"))?;
    let mut b = FluentBundle::new_concurrent(vec![id]);
    // No Unicode isolation marks around arguments: the pages set `lang`
    // and the arguments are names and numbers.
    b.set_use_isolating(false);
    b.add_resource(resource)
        .map_err(|errors| format!("catalogue {tag}: {errors:?}"))?;
    Ok(b)
}

fn catalogues() -> Option<&'static Catalogues> {
    static CATALOGUES: OnceLock<Result<Catalogues, String>> = OnceLock::new();
    let loaded = CATALOGUES.get_or_init(|| {
        Ok(Catalogues {
            ja: bundle("ja", JA)?,
            en: bundle("en", EN)?,
        })
    });
    match loaded {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(error = %e, "console message catalogues do not load");
            None
        }
    }
}

/// The message `key` in `lang`, with its arguments. A key missing from the
/// catalogue (a test keeps that from shipping) shows as itself.
pub(crate) fn text(lang: Lang, key: &str, args: &[(&str, FluentValue<'_>)]) -> String {
    let Some(c) = catalogues() else {
        return key.to_owned();
    };
    let bundle = match lang {
        Lang::Ja => &c.ja,
        Lang::En => &c.en,
    };
    let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) else {
        tracing::error!(key, lang = lang.tag(), "console message missing");
        return key.to_owned();
    };
    let mut fargs = FluentArgs::new();
    for (name, value) in args {
        fargs.set(*name, value.clone());
    }
    let mut errors = Vec::new();
    let out = bundle.format_pattern(pattern, Some(&fargs), &mut errors);
    if !errors.is_empty() {
        tracing::error!(key, lang = lang.tag(), ?errors, "console message arguments");
    }
    out.into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn keys(source: &str) -> std::collections::BTreeSet<String> {
        source
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with(' '))
            .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim().to_owned()))
            .collect()
    }

    #[test]
    fn both_catalogues_load_and_hold_the_same_keys() {
        assert!(catalogues().is_some(), "the catalogues parse");
        assert_eq!(keys(JA), keys(EN), "ja.ftl and en.ftl differ in their keys");
        assert!(keys(EN).len() > 20);
        for key in keys(EN) {
            for lang in [Lang::Ja, Lang::En] {
                let shown = text(lang, &key, &[]);
                assert!(!shown.is_empty() && shown != key, "{key} in {lang:?}");
            }
        }
    }

    #[test]
    fn every_alert_rule_has_a_name_in_both_languages() {
        let en = keys(EN);
        for action in mamori_core::audit::alerts::alert_actions() {
            let rule = action.trim_start_matches("alert.");
            assert!(en.contains(&format!("alert-rule-{rule}")), "{action}");
        }
    }

    #[test]
    fn arguments_are_filled_in() {
        let s = text(Lang::En, "sign-in-throttled", &[("seconds", 30.into())]);
        assert!(s.contains("30 seconds"), "{s}");
        let s = text(
            Lang::Ja,
            "devices-found",
            &[("count", 2.into()), ("shown", 1.into())],
        );
        assert!(s.contains("2 台が該当し、1 台を表示"), "{s}");
    }

    #[test]
    fn the_language_follows_the_query_the_cookie_then_the_browser() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::negotiate(None, &h), Lang::Ja, "default");
        h.insert(
            header::ACCEPT_LANGUAGE,
            "fr-FR, en-US;q=0.8, ja;q=0.5".parse().unwrap(),
        );
        assert_eq!(Lang::negotiate(None, &h), Lang::En, "by weight");
        h.insert(header::ACCEPT_LANGUAGE, "ja-JP,en;q=0.9".parse().unwrap());
        assert_eq!(Lang::negotiate(None, &h), Lang::Ja);
        h.insert(header::ACCEPT_LANGUAGE, "en;q=0, de".parse().unwrap());
        assert_eq!(Lang::negotiate(None, &h), Lang::Ja, "q=0 means not wanted");
        h.insert(header::COOKIE, "a=b; mamori_lang=en".parse().unwrap());
        assert_eq!(Lang::negotiate(None, &h), Lang::En, "the cookie wins");
        assert_eq!(Lang::negotiate(Some("ja"), &h), Lang::Ja, "the query wins");
        assert_eq!(
            Lang::negotiate(Some("xx"), &h),
            Lang::En,
            "unknown query ignored"
        );
    }
}
