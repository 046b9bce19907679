//! libpq's TLS settings taken out of a connection string before
//! tokio-postgres reads it: it knows neither `sslrootcert` nor the
//! `verify-*` modes, and refuses both. Both forms are read: a URL
//! (`postgres://…?sslmode=verify-full&sslrootcert=/path`, values
//! percent-encoded) and libpq's `key=value` list (values optionally in
//! single quotes, `\` escaping the next character). Everything else is
//! passed on exactly as written.

use mamori_ports::{StoreError, StoreResult};

/// What a connection string said about TLS.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct TlsParams {
    /// `sslmode`, as written.
    pub(super) sslmode: Option<String>,
    /// `sslrootcert`: a PEM file of trusted CAs, or `system`.
    pub(super) sslrootcert: Option<String>,
}

impl TlsParams {
    /// Records `key` if it is one of ours; false for any other key.
    fn take(&mut self, key: &str, value: String) -> bool {
        match key {
            "sslmode" => self.sslmode = Some(value),
            "sslrootcert" => self.sslrootcert = Some(value),
            _ => return false,
        }
        true
    }
}

/// `url` without its TLS settings, and the settings.
pub(super) fn take_tls_params(url: &str) -> StoreResult<(String, TlsParams)> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        from_url(url)
    } else {
        Ok(from_keywords(url))
    }
}

fn from_url(url: &str) -> StoreResult<(String, TlsParams)> {
    let mut params = TlsParams::default();
    // The query starts at the first `?` after the credentials (a password
    // may hold a `?`, tokio-postgres reads up to the first `@`).
    let from = url.find('@').map_or(0, |at| at + 1);
    let Some(q) = url[from..].find('?').map(|i| from + i) else {
        return Ok((url.to_owned(), params));
    };
    let (base, query) = (&url[..q], &url[q + 1..]);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = |s: &str| {
            urlencoding::decode(s)
                .map(std::borrow::Cow::into_owned)
                .map_err(|_| StoreError::new("the database URL holds invalid percent-encoding"))
        };
        if !params.take(&decoded(key)?, decoded(value)?) {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, params))
}

/// A `key=value` list. A list this cannot read is passed on whole, so that
/// tokio-postgres reports what is wrong with it.
fn from_keywords(s: &str) -> (String, TlsParams) {
    let mut params = TlsParams::default();
    let mut kept = Vec::new();
    let mut rest = s;
    loop {
        let item = rest.trim_start();
        if item.is_empty() {
            break;
        }
        let key_end = item
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(item.len());
        let key = &item[..key_end];
        let Some(value_text) = item[key_end..].trim_start().strip_prefix('=') else {
            return (s.to_owned(), TlsParams::default());
        };
        let Some((value, after)) = read_value(value_text.trim_start()) else {
            return (s.to_owned(), TlsParams::default());
        };
        if !params.take(key, value) {
            kept.push(&item[..item.len() - after.len()]);
        }
        rest = after;
    }
    (kept.join(" "), params)
}

/// One value (quoted or not) and what follows it; `None` when malformed.
fn read_value(s: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let quoted = s.starts_with('\'');
    let body = if quoted { &s[1..] } else { s };
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?.1),
            '\'' if quoted => return Some((value, &body[i + 1..])),
            c if c.is_whitespace() && !quoted => return Some((value, &body[i..])),
            c => value.push(c),
        }
    }
    // The end: fine unless a quote is left open or nothing was given.
    (!quoted && !value.is_empty()).then_some((value, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(url: &str) -> (String, TlsParams) {
        take_tls_params(url).unwrap_or_else(|e| panic!("{e}"))
    }

    fn params(mode: Option<&str>, root: Option<&str>) -> TlsParams {
        TlsParams {
            sslmode: mode.map(str::to_owned),
            sslrootcert: root.map(str::to_owned),
        }
    }

    #[test]
    fn a_url_gives_up_its_tls_settings_and_keeps_the_rest() {
        let (rest, p) = take(
            "postgres://m:p%3Fw@db.example:5433/mdm?sslmode=verify-full\
             &application_name=x&sslrootcert=%2Fetc%2Fca%20file.pem",
        );
        assert_eq!(
            rest,
            "postgres://m:p%3Fw@db.example:5433/mdm?application_name=x"
        );
        assert_eq!(p, params(Some("verify-full"), Some("/etc/ca file.pem")));
        let (rest, p) = take("postgresql://m@db/mdm?sslmode=require");
        assert_eq!(
            (rest.as_str(), p),
            ("postgresql://m@db/mdm", params(Some("require"), None))
        );
        // A `?` in the password is not the query.
        let (rest, p) = take("postgres://m:a?b@db/mdm");
        assert_eq!(
            (rest.as_str(), p),
            ("postgres://m:a?b@db/mdm", params(None, None))
        );
        assert!(take_tls_params("postgres://m@db/mdm?sslmode=%ff").is_err());
    }

    #[test]
    fn a_keyword_list_gives_up_its_tls_settings_and_keeps_the_rest() {
        let (rest, p) = take(
            "host=db.example  sslmode = verify-ca password='a b\\'c' \
             sslrootcert='/etc/my ca.pem' dbname=mdm",
        );
        assert_eq!(rest, "host=db.example password='a b\\'c' dbname=mdm");
        assert_eq!(p, params(Some("verify-ca"), Some("/etc/my ca.pem")));
        let (rest, p) = take("host=/run/postgresql user=m");
        assert_eq!(
            (rest.as_str(), p),
            ("host=/run/postgresql user=m", params(None, None))
        );
        // Malformed: passed on whole for tokio-postgres to refuse.
        for odd in ["host=db sslmode", "sslmode='verify-full", "sslmode= "] {
            assert_eq!(take(odd), (odd.to_owned(), params(None, None)), "{odd}");
        }
    }
}
