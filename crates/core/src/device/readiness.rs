//! What a real device needs before it can be managed, checked against the
//! server's own settings: a public URL the devices can reach under a name,
//! a TLS certificate they trust, a push certificate (and its expiry), and
//! an admin URL under which administrators can use passkeys. The console's
//! settings page explains each.

use crate::Services;
use time::{Duration, OffsetDateTime};

/// How one requirement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Met.
    Ok,
    /// Works, with a caveat the page explains.
    Warn,
    /// Not met: devices (or administrators) cannot do without it.
    Fail,
}

/// A push certificate this close to its end is flagged.
pub const PUSH_RENEW_BEFORE: Duration = Duration::days(30);

/// Each requirement and what it was judged on.
#[derive(Debug, Clone)]
pub struct Readiness {
    /// The URL in enrollment profiles.
    pub public_url: String,
    /// Fail: localhost or loopback (no device reaches it); Warn: an IP
    /// address or not https; Ok: a host name over https.
    pub public_url_check: Check,
    /// Ok: a certificate the operator installed (from a CA devices trust);
    /// Warn: the generated one, trusted only through the root certificate
    /// the enrollment profile carries.
    pub tls: Check,
    /// The admin URL.
    pub admin_url: String,
    /// Ok: passkeys work under the admin URL; Fail: they are off.
    pub passkeys: Check,
    /// Fail: no push certificate; Warn: it ends within
    /// [`PUSH_RENEW_BEFORE`] (or has ended); Ok otherwise.
    pub push: Check,
    /// The push certificate's topic.
    pub push_topic: Option<String>,
    /// When it ends.
    pub push_expires_at: Option<OffsetDateTime>,
}

/// How the host of `url` looks to a device.
fn url_check(url: &str) -> Check {
    let Ok(uri) = webauthn_rs::prelude::Url::parse(url) else {
        return Check::Fail;
    };
    let host = uri.host_str().unwrap_or("").trim_matches(['[', ']']);
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    if host.is_empty() || loopback {
        Check::Fail
    } else if uri.scheme() != "https" || host.parse::<std::net::IpAddr>().is_ok() {
        Check::Warn
    } else {
        Check::Ok
    }
}

impl Services {
    /// Where the server stands against what a real device needs.
    pub fn readiness(&self) -> Readiness {
        let now = self.clock.now();
        let push_expires_at = self.pusher.expires_at();
        let push = match push_expires_at {
            None => Check::Fail,
            Some(end) if end - now < PUSH_RENEW_BEFORE => Check::Warn,
            Some(_) => Check::Ok,
        };
        Readiness {
            public_url: self.config.public_url.clone(),
            public_url_check: url_check(&self.config.public_url),
            tls: if self.pki.tls_root.is_some() {
                Check::Warn
            } else {
                Check::Ok
            },
            admin_url: self.config.auth.admin_url.clone(),
            passkeys: if self.auth.ceremonies.enabled() {
                Check::Ok
            } else {
                Check::Fail
            },
            push,
            push_topic: self.pusher.topic(),
            push_expires_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_needs_a_name_it_can_reach() {
        assert_eq!(url_check("https://localhost:8443"), Check::Fail);
        assert_eq!(url_check("https://127.0.0.1:8443"), Check::Fail);
        assert_eq!(url_check("https://[::1]:8443"), Check::Fail);
        assert_eq!(url_check("https://0.0.0.0"), Check::Fail);
        assert_eq!(url_check("not a url"), Check::Fail);
        assert_eq!(url_check("https://192.0.2.10:8443"), Check::Warn);
        assert_eq!(url_check("http://mdm.example.com"), Check::Warn);
        assert_eq!(url_check("https://mdm.example.com:8443"), Check::Ok);
    }
}
