//! A policy's form, generated from Apple's schema for its payload: one
//! field per key with Apple's title and description, its type (a choice
//! for booleans and listed values, a number with its range, text, one item
//! per line for simple arrays, JSON for the rest), the platforms it does
//! not exist on, and its default. Reading the form back gives the settings
//! object core takes, or the errors per field; core validates again.
//!
//! Field names are the key's path under `s.` (`s.minLength`,
//! `s.IKEv2.RemoteAddress`), so a schema error's path names its field.

use super::page::PageCtx;
use mamori_protocol::schema::{KeySchema, RangeValue, SchemaError, ValueType, BUILDER_KEYS};
use maud::{html, Markup};
use serde_json::{Map, Value as Json};
use std::collections::{BTreeMap, HashMap};

/// Keys whose values are secrets (the form never shows them back).
fn is_secret(key: &str) -> bool {
    mamori_core::fleet::policies::SECRET_KEYS.contains(&key)
}

/// The JSON-pointer escape of a key.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// What a field's place is: its form name and the settings' JSON pointer.
#[derive(Clone)]
struct Place {
    /// `minLength`, `IKEv2.RemoteAddress`.
    path: String,
    /// `/minLength`, `/IKEv2/RemoteAddress`.
    pointer: String,
}

impl Place {
    fn root() -> Self {
        Self {
            path: String::new(),
            pointer: String::new(),
        }
    }

    fn child(&self, key: &str) -> Self {
        Self {
            path: if self.path.is_empty() {
                key.to_owned()
            } else {
                format!("{}.{key}", self.path)
            },
            pointer: format!("{}/{}", self.pointer, escape(key)),
        }
    }

    fn name(&self) -> String {
        format!("s.{}", self.path)
    }

    fn id(&self) -> String {
        let safe: String = self
            .path
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("f-{safe}")
    }
}

/// How a key is edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Widget {
    /// Not set / true / false.
    Flag,
    /// One of the schema's listed values.
    Choice,
    /// A number (integer or real).
    Number,
    /// A line of text.
    Text,
    /// A secret: never shown, kept when left empty.
    Secret,
    /// One item per line (an array of strings or integers).
    Lines,
    /// A dictionary with named keys: its own fields.
    Group,
    /// Anything else: JSON.
    Json,
}

fn widget(k: &KeySchema) -> Widget {
    let simple_items = |k: &KeySchema| {
        k.subkeys.len() == 1
            && matches!(
                k.subkeys[0].value_type,
                ValueType::String | ValueType::Integer
            )
    };
    let holds_one_value = !matches!(k.value_type, ValueType::Dictionary | ValueType::Array);
    match k.value_type {
        _ if is_secret(&k.name) && holds_one_value => Widget::Secret,
        ValueType::Boolean => Widget::Flag,
        ValueType::String | ValueType::Integer if !k.rangelist.is_empty() => Widget::Choice,
        ValueType::Integer | ValueType::Real => Widget::Number,
        // Data as its base64 text, a date as RFC 3339 text (what core takes).
        ValueType::String | ValueType::Data | ValueType::Date => Widget::Text,
        ValueType::Array if simple_items(k) => Widget::Lines,
        ValueType::Dictionary
            if !k.subkeys.is_empty() && !k.subkeys.iter().any(|s| s.name == "ANY") =>
        {
            Widget::Group
        }
        _ => Widget::Json,
    }
}

/// The keys a policy sets (the profile builder sets the `Payload…` ones).
fn own_keys(keys: &[KeySchema]) -> impl Iterator<Item = &KeySchema> {
    keys.iter()
        .filter(|k| !BUILDER_KEYS.contains(&k.name.as_str()) && k.name != "ANY")
}

/// What the form shows: the settings (secrets left out), which secrets
/// are set (JSON pointers), and the errors per field name.
pub(super) struct Shown<'a> {
    pub settings: &'a Json,
    pub secrets: &'a [String],
    pub errors: &'a BTreeMap<String, String>,
}

/// Payloads with more keys than this (restrictions: 188) show the first
/// sentence of each description, to keep the page inside its weight.
const BRIEF_ABOVE: usize = 100;

/// The first sentence of a description.
fn first_sentence(text: &str) -> &str {
    let line = text.lines().next().unwrap_or("");
    match line.find(". ") {
        Some(i) => &line[..=i],
        None => line,
    }
}

/// The fields of every key of a payload.
pub(super) fn fields(ctx: &PageCtx, keys: &[KeySchema], shown: &Shown<'_>) -> Markup {
    let brief = keys.len() > BRIEF_ABOVE;
    fields_at(ctx, keys, &Place::root(), shown, brief)
}

fn fields_at(
    ctx: &PageCtx,
    keys: &[KeySchema],
    at: &Place,
    shown: &Shown<'_>,
    brief: bool,
) -> Markup {
    html! {
        @for k in own_keys(keys) {
            (field(ctx, k, &at.child(&k.name), shown, brief))
        }
    }
}

fn range_text(v: &RangeValue) -> String {
    match v {
        RangeValue::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A field's facts: key, type, range, default, required, platforms.
fn facts(ctx: &PageCtx, k: &KeySchema) -> Markup {
    let range = match k.range {
        (None, None) => None,
        (min, max) => Some(format!(
            "{}–{}",
            min.map(|v| v.to_string()).unwrap_or_default(),
            max.map(|v| v.to_string()).unwrap_or_default()
        )),
    };
    html! {
        span class="facts" {
            code { (k.name) }
            @if k.required { " · " (ctx.t("policy-required")) }
            @if let Some(r) = range { " · " (ctx.t("policy-range")) " " (r) }
            @if let Some(d) = &k.default { " · " (ctx.t("policy-default")) " " (range_text(d)) }
            @if !k.unsupported_on.is_empty() {
                " · " (ctx.t("policy-not-on")) " " (k.unsupported_on.join(", "))
            }
        }
    }
}

fn label_text(k: &KeySchema) -> &str {
    if k.title.is_empty() {
        &k.name
    } else {
        &k.title
    }
}

/// The text of a current value for a text-like field.
fn current_text(v: Option<&Json>, w: Widget) -> String {
    match (v, w) {
        (None | Some(Json::Null), _) => String::new(),
        // JSON shows JSON (a string with its quotes), so it reads back.
        (Some(other), Widget::Json) => serde_json::to_string_pretty(other).unwrap_or_default(),
        (Some(Json::String(s)), _) => s.clone(),
        (Some(Json::Array(items)), Widget::Lines) => items
            .iter()
            .map(|i| match i {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        (Some(Json::Number(n)), _) => n.to_string(),
        (Some(other), _) => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

// Length: one arm per widget; they share the label, the facts, the
// description and the error, which read best around them in one place.
fn field(ctx: &PageCtx, k: &KeySchema, at: &Place, shown: &Shown<'_>, brief: bool) -> Markup {
    let w = widget(k);
    let id = at.id();
    let name = at.name();
    let hint = format!("{id}-hint");
    let err_id = format!("{id}-err");
    let error = shown.errors.get(&name);
    let described = if error.is_some() {
        format!("{hint} {err_id}")
    } else {
        hint.clone()
    };
    let current = shown.settings.pointer(&at.pointer);
    let invalid = error.map(|_| "true");
    if w == Widget::Group {
        let open = current.is_some() || shown.errors.keys().any(|e| e.starts_with(&name));
        return html! {
            details class="group" open[open] {
                summary { (label_text(k)) " " code { (k.name) } }
                p class="hint" id=(hint) lang="en" { (k.description) }
                (fields_at(ctx, &k.subkeys, at, shown, brief))
            }
        };
    }
    let text = current_text(current, w);
    html! {
        div class="field" {
            label for=(id) { (label_text(k)) }
            @match w {
                Widget::Flag => {
                    select id=(id) name=(name) aria-describedby=(described) aria-invalid=[invalid] {
                        option value="" selected[current.is_none()] { (ctx.t("policy-unset")) }
                        option value="true" selected[current == Some(&Json::Bool(true))] { (ctx.t("policy-true")) }
                        option value="false" selected[current == Some(&Json::Bool(false))] { (ctx.t("policy-false")) }
                    }
                }
                Widget::Choice => {
                    select id=(id) name=(name) aria-describedby=(described) aria-invalid=[invalid] {
                        option value="" selected[current.is_none()] { (ctx.t("policy-unset")) }
                        @for v in &k.rangelist {
                            @let t = range_text(v);
                            option value=(t) selected[text == t] { (t) }
                        }
                    }
                }
                Widget::Number => {
                    input type="number" id=(id) name=(name) value=(text)
                        min=[k.range.0] max=[k.range.1]
                        step=(if k.value_type == ValueType::Real { "any" } else { "1" })
                        aria-describedby=(described) aria-invalid=[invalid];
                }
                Widget::Text => {
                    input type="text" id=(id) name=(name) value=(text) maxlength="1024"
                        aria-describedby=(described) aria-invalid=[invalid];
                }
                Widget::Secret => {
                    @let set = shown.secrets.contains(&at.pointer);
                    input type="password" id=(id) name=(name) autocomplete="new-password"
                        placeholder=(if set { ctx.t("policy-secret-set") } else { String::new() })
                        maxlength="1024" aria-describedby=(described) aria-invalid=[invalid];
                    @if set {
                        label class="inline" {
                            input type="checkbox" name={ "clear." (name) } value="1";
                            " " (ctx.t("policy-secret-clear"))
                        }
                    }
                }
                Widget::Lines | Widget::Json => {
                    textarea id=(id) name=(name) rows="3" aria-describedby=(described)
                        aria-invalid=[invalid] { (text) }
                }
                Widget::Group => {}
            }
            p class="hint" id=(hint) {
                (facts(ctx, k))
                @if w == Widget::Lines { " · " (ctx.t("policy-one-per-line")) }
                @if w == Widget::Json { " · " (ctx.t("policy-json")) }
                @if !k.description.is_empty() {
                    br;
                    span lang="en" { (if brief { first_sentence(&k.description) } else { &k.description }) }
                }
            }
            @if let Some(e) = error {
                p class="field-error" id=(err_id) { (e) }
            }
        }
    }
}

/// The form name of a JSON pointer (`/IKEv2/SharedSecret` →
/// `s.IKEv2.SharedSecret`).
fn pointer_name(pointer: &str) -> String {
    let path: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|k| k.replace("~1", "/").replace("~0", "~"))
        .collect();
    format!("s.{}", path.join("."))
}

/// The form's answers, by field name (a repeated name keeps its first).
pub(super) fn answers(pairs: &[(String, String)]) -> HashMap<&str, &str> {
    let mut out = HashMap::new();
    for (k, v) in pairs {
        out.entry(k.as_str()).or_insert(v.as_str());
    }
    out
}

/// What a form gives: the settings for core (a cleared secret is `null`),
/// and the errors per field name.
pub(super) struct Read {
    pub settings: Json,
    pub errors: BTreeMap<String, String>,
}

/// Reads the settings of a payload back from the form. `kept` are the
/// pointers of the secrets already set (a dictionary holding one stays).
pub(super) fn read(
    ctx: &PageCtx,
    keys: &[KeySchema],
    form: &HashMap<&str, &str>,
    kept: &[String],
) -> Read {
    let mut errors = BTreeMap::new();
    let map = read_at(ctx, keys, &Place::root(), form, kept, &mut errors);
    Read {
        settings: Json::Object(map),
        errors,
    }
}

fn read_at(
    ctx: &PageCtx,
    keys: &[KeySchema],
    at: &Place,
    form: &HashMap<&str, &str>,
    kept: &[String],
    errors: &mut BTreeMap<String, String>,
) -> Map<String, Json> {
    let mut out = Map::new();
    for k in own_keys(keys) {
        let here = at.child(&k.name);
        let name = here.name();
        let raw = form.get(name.as_str()).copied().unwrap_or("");
        let value = match widget(k) {
            Widget::Group => {
                let inner = read_at(ctx, &k.subkeys, &here, form, kept, errors);
                // A kept secret keeps its dictionary (one being cleared
                // does not).
                let holds_secret = kept.iter().any(|p| {
                    p.starts_with(&format!("{}/", here.pointer))
                        && !form.contains_key(format!("clear.{}", pointer_name(p)).as_str())
                });
                // Only cleared secrets: the dictionary goes (core drops a
                // secret whose place is gone).
                let only_cleared = inner.values().all(Json::is_null);
                (holds_secret || !only_cleared).then_some(Json::Object(inner))
            }
            Widget::Secret => {
                if form.contains_key(format!("clear.{name}").as_str()) {
                    Some(Json::Null)
                } else {
                    (!raw.is_empty()).then(|| Json::String(raw.to_owned()))
                }
            }
            w => match one(k, w, raw) {
                Ok(v) => v,
                Err(key) => {
                    errors.insert(name, ctx.t(key));
                    None
                }
            },
        };
        if let Some(v) = value {
            out.insert(k.name.clone(), v);
        }
    }
    out
}

/// One plain field's value (None: not set), or the catalogue key of what
/// is wrong with it.
fn one(k: &KeySchema, w: Widget, raw: &str) -> Result<Option<Json>, &'static str> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let number = |s: &str, ty: ValueType| -> Result<Json, &'static str> {
        if ty == ValueType::Integer {
            s.parse::<i64>()
                .map(Json::from)
                .map_err(|_| "policy-err-integer")
        } else {
            s.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .and_then(serde_json::Number::from_f64)
                .map(Json::Number)
                .ok_or("policy-err-number")
        }
    };
    Ok(Some(match w {
        Widget::Flag => match t {
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            _ => return Err("policy-err-choice"),
        },
        Widget::Choice if k.value_type == ValueType::Integer => number(t, ValueType::Integer)?,
        Widget::Number => number(t, k.value_type)?,
        Widget::Choice | Widget::Text => Json::String(raw.to_owned()),
        Widget::Lines => {
            let item = k
                .subkeys
                .first()
                .map_or(ValueType::String, |s| s.value_type);
            let items = t
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| {
                    if item == ValueType::Integer {
                        number(l, item)
                    } else {
                        Ok(Json::String(l.to_owned()))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            Json::Array(items)
        }
        Widget::Json | Widget::Group | Widget::Secret => {
            serde_json::from_str(t).map_err(|_| "policy-err-json")?
        }
    }))
}

/// The settings as core will check them: the secrets kept in place (as
/// placeholders) and cleared ones left out.
pub(super) fn with_kept_secrets(settings: &Json, kept: &[String]) -> Json {
    let mut full = settings.clone();
    strip_nulls(&mut full);
    for pointer in kept {
        let Some((parent, key)) = pointer.rsplit_once('/') else {
            continue;
        };
        let key = key.replace("~1", "/").replace("~0", "~");
        let target = if parent.is_empty() {
            Some(&mut full)
        } else {
            full.pointer_mut(parent)
        };
        if let Some(Json::Object(map)) = target {
            if !settings
                .pointer(pointer)
                .is_some_and(|v| v.is_null() || v.is_string())
            {
                map.insert(key, Json::String("kept".into()));
            }
        }
    }
    full
}

fn strip_nulls(v: &mut Json) {
    if let Json::Object(map) = v {
        map.retain(|_, v| !v.is_null());
        for v in map.values_mut() {
            strip_nulls(v);
        }
    }
}

/// The form field a schema error is about (`s.IKEv2.RemoteAddress`), from
/// its path (`com.apple.vpn.managed.IKEv2.RemoteAddress[0]`).
pub(super) fn error_field(payload_type: &str, e: &SchemaError) -> Option<String> {
    let path = e.path()?;
    let rest = path.strip_prefix(payload_type)?.strip_prefix('.')?;
    let rest = rest.split('[').next().unwrap_or(rest);
    (!rest.is_empty()).then(|| format!("s.{rest}"))
}

#[cfg(test)]
mod tests;
