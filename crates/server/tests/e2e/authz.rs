//! The authorization matrix: every admin route (enumerated from the router's
//! own table) × every kind of caller gets exactly the expected verdict.
//!
//! The role → permission table below is written out independently of the
//! code's, so a change to a role's rights must be made in both places.

use crate::common::{role_token, spawn_app, TestApp};
use mamori_core::access::ClientContext;
use mamori_domain::{AdminSession, Role, SessionId, SessionStage};
use mamori_http::auth::Access;
use serde_json::{json, Value};

const UA: &str = "matrix/1";

/// What each role may do, by permission name.
fn expected_permissions(role: Role) -> &'static [&'static str] {
    match role {
        Role::Viewer => &["devices_read", "commands_read", "tokens_own"],
        Role::Helpdesk => &[
            "devices_read",
            "commands_read",
            "device_actions",
            "tokens_own",
        ],
        Role::DeviceAdmin => &[
            "devices_read",
            "commands_read",
            "device_actions",
            "commands_write",
            "enrollment_write",
            "people_write",
            "tokens_own",
        ],
        Role::SecurityOfficer => &[
            "devices_read",
            "commands_read",
            "people_write",
            "personal_data_read",
            "audit_read",
            "incidents_manage",
            "tokens_own",
        ],
        Role::Owner => &[
            "devices_read",
            "commands_read",
            "device_actions",
            "commands_write",
            "enrollment_write",
            "people_write",
            "audit_read",
            "accounts_manage",
            "tokens_own",
            "settings_write",
            "incidents_manage",
        ],
    }
}

/// What each route demands, written out route by route. A route added to
/// the router without an entry here fails the matrix test.
fn expected_access(method: &str, path: &str) -> Option<Access> {
    use mamori_domain::Permission as P;
    use Access::*;
    let perm = Permission;
    Some(match (method, path) {
        ("GET", "/healthz" | "/api/v1/openapi.yaml") => Public,
        ("POST", "/api/v1/auth/login") => Public,
        (
            "POST",
            "/api/v1/auth/totp"
            | "/api/v1/auth/recovery"
            | "/api/v1/auth/webauthn/login/start"
            | "/api/v1/auth/webauthn/login/finish",
        ) => SecondFactor,
        ("GET", "/api/v1/auth/session") => AnySession,
        (
            "POST",
            "/api/v1/auth/logout"
            | "/api/v1/auth/password"
            | "/api/v1/auth/totp/enroll"
            | "/api/v1/auth/totp/confirm"
            | "/api/v1/auth/webauthn/register/start"
            | "/api/v1/auth/webauthn/register/finish",
        ) => AnySession,
        (
            "POST",
            "/api/v1/auth/step-up"
            | "/api/v1/auth/step-up/webauthn/start"
            | "/api/v1/auth/step-up/webauthn/finish"
            | "/api/v1/auth/sessions/revoke-all"
            | "/api/v1/auth/recovery-codes",
        ) => FullSession,
        ("GET", "/api/v1/auth/sessions" | "/api/v1/auth/factors") => FullSession,
        ("DELETE", "/api/v1/auth/totp" | "/api/v1/auth/webauthn/{id}") => FullSession,
        ("DELETE", "/api/v1/auth/sessions/{id}") => FullSession,
        ("GET" | "POST", "/api/v1/admins") => perm(P::AccountsManage),
        ("PUT", "/api/v1/admins/{name}/role") => perm(P::AccountsManage),
        (
            "POST",
            "/api/v1/admins/{name}/disable"
            | "/api/v1/admins/{name}/enable"
            | "/api/v1/admins/{name}/reset"
            | "/api/v1/admins/{name}/unlock"
            | "/api/v1/admins/{name}/reinstate",
        ) => perm(P::AccountsManage),
        ("GET" | "POST", "/api/v1/tokens") => perm(P::TokensOwn),
        ("DELETE", "/api/v1/tokens/{id}") => perm(P::TokensOwn),
        ("GET", "/api/v1/audit" | "/api/v1/audit/sinks" | "/api/v1/reports/breach-scope") => {
            perm(P::AuditRead)
        }
        (
            "GET",
            "/api/v1/incidents"
            | "/api/v1/incidents/{id}"
            | "/api/v1/incidents/{id}/people"
            | "/api/v1/incidents/{id}/evidence",
        ) => perm(P::AuditRead),
        (
            "POST",
            "/api/v1/incidents"
            | "/api/v1/incidents/{id}/scope"
            | "/api/v1/incidents/{id}/notifications",
        )
        | ("PATCH", "/api/v1/incidents/{id}") => perm(P::IncidentsManage),
        ("GET", "/api/v1/policies" | "/api/v1/policies/{id}") => perm(P::DevicesRead),
        (
            "GET",
            "/api/v1/groups"
            | "/api/v1/groups/{id}"
            | "/api/v1/devices/{udid}/profiles"
            | "/api/v1/devices/search"
            | "/api/v1/devices/{udid}/apps",
        ) => perm(P::DevicesRead),
        ("POST", "/api/v1/groups" | "/api/v1/groups/{id}/devices" | "/api/v1/reconcile")
        | ("DELETE", "/api/v1/groups/{id}")
        | ("PUT", "/api/v1/groups/{id}/policies" | "/api/v1/groups/{id}/compliance") => {
            perm(P::CommandsWrite)
        }
        ("GET", "/api/v1/reports/compliance") => perm(P::DevicesRead),
        ("POST", "/api/v1/policies") | ("PATCH" | "DELETE", "/api/v1/policies/{id}") => {
            perm(P::CommandsWrite)
        }
        ("POST", "/api/v1/enrollment-profiles" | "/api/v1/enrollment-links") => {
            perm(P::EnrollmentWrite)
        }
        ("GET", "/api/v1/reenrollments") => perm(P::DevicesRead),
        (
            "POST",
            "/api/v1/devices/{udid}/reenrollment/approve"
            | "/api/v1/devices/{udid}/reenrollment/deny",
        ) => perm(P::EnrollmentWrite),
        ("GET", "/api/v1/devices" | "/api/v1/devices/{udid}") => perm(P::DevicesRead),
        ("POST", "/api/v1/commands") => perm(P::DeviceActions),
        ("GET", "/api/v1/commands/{command_uuid}" | "/api/v1/devices/{udid}/commands") => {
            perm(P::CommandsRead)
        }
        ("PUT", "/api/v1/push-certificate") => perm(P::SettingsWrite),
        ("GET", "/api/v1/people" | "/api/v1/people/{id}") => perm(P::DevicesRead),
        (
            "POST",
            "/api/v1/people"
            | "/api/v1/people/import"
            | "/api/v1/people/{id}/purge"
            | "/api/v1/people/{id}/offboard",
        ) => perm(P::PeopleWrite),
        ("PUT", "/api/v1/admins/{name}/person") => perm(P::AccountsManage),
        ("GET", "/api/v1/approvals")
        | ("POST", "/api/v1/approvals/{id}/approve" | "/api/v1/approvals/{id}/reject") => {
            AnyPermission(&[P::CommandsWrite, P::AccountsManage, P::PersonalDataRead])
        }
        ("PATCH", "/api/v1/people/{id}") => perm(P::PeopleWrite),
        ("GET", "/api/v1/people/lookup") => perm(P::PeopleWrite),
        ("GET", "/api/v1/people/personal-data" | "/api/v1/people/{id}/personal-data") => {
            perm(P::PersonalDataRead)
        }
        ("POST", "/api/v1/people/exports") | ("GET", "/api/v1/people/exports/{id}") => {
            perm(P::PersonalDataRead)
        }
        ("PUT", "/api/v1/devices/{udid}/person") => perm(P::CommandsWrite),
        _ => return None,
    })
}

#[derive(Debug, Clone)]
enum Caller {
    Anonymous,
    Token(Role, String),
    Session(Role),
    /// Password accepted, second factor not yet given.
    HalfLoggedIn,
    DisabledToken(String),
    DisabledSession,
    ExpiredToken(String),
}

/// The verdict of the guard in front of every handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Passed the guard (the handler may still refuse the request itself).
    Allowed,
    /// Not authenticated.
    Unauthorized,
    /// Authenticated but not allowed.
    Forbidden,
    /// A second-factor route for a session that is not waiting for one.
    NotWaiting,
}

fn expected(access: Access, caller: &Caller) -> Verdict {
    use Verdict::*;
    if access == Access::Public {
        return Allowed;
    }
    match caller {
        Caller::Anonymous
        | Caller::DisabledToken(_)
        | Caller::DisabledSession
        | Caller::ExpiredToken(_) => Unauthorized,
        Caller::Token(role, _) => match access {
            Access::Public => Allowed,
            Access::SecondFactor | Access::AnySession | Access::FullSession => Forbidden,
            Access::AnyPermission(ps) => {
                if ps
                    .iter()
                    .any(|p| expected_permissions(*role).contains(&p.as_str()))
                {
                    Allowed
                } else {
                    Forbidden
                }
            }
            Access::Permission(p) => {
                if expected_permissions(*role).contains(&p.as_str()) {
                    Allowed
                } else {
                    Forbidden
                }
            }
        },
        Caller::Session(role) => match access {
            Access::Public | Access::AnySession | Access::FullSession => Allowed,
            Access::SecondFactor => NotWaiting,
            Access::AnyPermission(ps) => {
                if ps
                    .iter()
                    .any(|p| expected_permissions(*role).contains(&p.as_str()))
                {
                    Allowed
                } else {
                    Forbidden
                }
            }
            Access::Permission(p) => {
                if expected_permissions(*role).contains(&p.as_str()) {
                    Allowed
                } else {
                    Forbidden
                }
            }
        },
        Caller::HalfLoggedIn => match access {
            Access::Public | Access::SecondFactor | Access::AnySession => Allowed,
            Access::FullSession | Access::Permission(_) | Access::AnyPermission(_) => Unauthorized,
        },
    }
}

/// Classifies a response: the guard's denials have fixed texts.
fn observed(status: u16, body: &Value) -> Verdict {
    let error = body["error"].as_str().unwrap_or("");
    match (status, error) {
        (401, "authentication required") => Verdict::Unauthorized,
        (403, "permission denied" | "this route is for interactive sessions") => Verdict::Forbidden,
        (409, "no login is waiting for a second factor") => Verdict::NotWaiting,
        _ => Verdict::Allowed,
    }
}

/// A fresh session of `admin` at `stage`, as the login would have made it,
/// stepped up just now; returns (cookie secret, CSRF token).
async fn session_for(app: &TestApp, admin: &str, stage: SessionStage) -> (String, String) {
    let s = &app.running.services;
    let account = s
        .admin_named(&crate::common::operator(), admin)
        .await
        .unwrap();
    let secret = hex::encode(mamori_crypto::random_bytes(32));
    let now = time::OffsetDateTime::now_utc();
    let session = AdminSession {
        id: SessionId::parse(&hex::encode(mamori_crypto::random_bytes(16))).unwrap(),
        admin_id: account.id,
        stage,
        created_at: now,
        last_seen_at: now,
        expires_at: now + time::Duration::hours(1),
        source: "127.0.0.1".into(),
        client_hash: mamori_crypto::sha256_hex(UA.as_bytes()),
        step_up_at: Some(now),
        revoked_at: None,
    };
    s.store
        .insert_session(&session, &mamori_crypto::sha256_hex(secret.as_bytes()))
        .await
        .unwrap();
    let csrf = s.auth.csrf_token(&secret);
    (secret, csrf)
}

fn account_name(role: Role) -> String {
    format!("m-{}", role.as_str().replace('_', "-"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_gives_every_caller_exactly_the_expected_verdict() {
    let app = spawn_app().await;
    let s = &app.running.services;
    let ctx = ClientContext::default();

    let mut callers = vec![Caller::Anonymous];
    for role in Role::ALL {
        let name = account_name(*role);
        // A new account, set up at its first login, and its token.
        callers.push(Caller::Token(
            *role,
            role_token(s, &name, role.as_str()).await,
        ));
        callers.push(Caller::Session(*role));
    }
    callers.push(Caller::HalfLoggedIn);
    // An offboarded administrator: token and session made before disabling.
    let gone_token = role_token(s, "gone", "owner").await;
    let gone_session = session_for(&app, "gone", SessionStage::Full).await;
    s.disable_admin(&crate::common::authorized(), &ctx, "gone", "offboarded")
        .await
        .unwrap();
    callers.push(Caller::DisabledToken(gone_token));
    callers.push(Caller::DisabledSession);
    // An expired token (of an active owner).
    let owner = s
        .admin_named(&crate::common::operator(), &account_name(Role::Owner))
        .await
        .unwrap();
    let (tok, secret) = s
        .create_token(
            &crate::common::authorized(),
            &ctx,
            &owner,
            &mamori_core::admin::tokens::TokenRequest {
                name: "expiring".into(),
                ttl_days: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (mut stored, hash) = s.store.token(&tok.id).await.unwrap().unwrap();
    stored.id = mamori_domain::TokenId::parse("expiredmatrix0001").unwrap();
    stored.expires_at = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    s.store.insert_token(&stored, &hash).await.unwrap();
    callers.push(Caller::ExpiredToken(
        secret.replace(tok.id.as_str(), "expiredmatrix0001"),
    ));

    let routes = mamori_http::admin::routes();
    assert!(routes.len() >= 35, "the table lists every route");
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for (method, path, declared) in &routes {
        let Some(access) = expected_access(method, path) else {
            panic!("{method} {path} is routed but has no expected access in this test");
        };
        assert_eq!(*declared, access, "{method} {path} declares another access");
        let access = &access;
        let concrete = path
            .replace("{udid}", "UNKNOWN-UDID")
            .replace("{command_uuid}", "UNKNOWN-COMMAND")
            .replace("{id}", "00000000000000000000000000000000")
            .replace("{name}", "nobody");
        let body = if *path == "/api/v1/commands" {
            json!({"devices": ["UNKNOWN-UDID"], "command": {"RequestType": "DeviceLock"}})
        } else {
            json!({})
        };
        for caller in &callers {
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let mut req = app
                .http
                .request(m.clone(), app.admin_url(&concrete))
                .header("user-agent", UA);
            if m != reqwest::Method::GET {
                req = req.json(&body);
            }
            req = match caller {
                Caller::Anonymous => req,
                Caller::Token(_, t) | Caller::DisabledToken(t) | Caller::ExpiredToken(t) => {
                    req.bearer_auth(t)
                }
                Caller::Session(role) => {
                    let (secret, csrf) =
                        session_for(&app, &account_name(*role), SessionStage::Full).await;
                    req.header("cookie", format!("__Host-mamori_session={secret}"))
                        .header("x-csrf-token", csrf)
                }
                Caller::HalfLoggedIn => {
                    let (secret, csrf) = session_for(
                        &app,
                        &account_name(Role::DeviceAdmin),
                        SessionStage::SecondFactor,
                    )
                    .await;
                    req.header("cookie", format!("__Host-mamori_session={secret}"))
                        .header("x-csrf-token", csrf)
                }
                Caller::DisabledSession => req
                    .header(
                        "cookie",
                        format!("__Host-mamori_session={}", gone_session.0),
                    )
                    .header("x-csrf-token", &gone_session.1),
            };
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let want = expected(*access, caller);
            let got = observed(status, &body);
            if want != got {
                let who = match caller {
                    Caller::Token(r, _) => format!("token {r}"),
                    Caller::Session(r) => format!("session {r}"),
                    other => format!("{other:?}").chars().take(20).collect(),
                };
                mismatches.push(format!(
                    "{method} {path} as {who}: expected {want:?}, got {got:?} ({status} {body})"
                ));
            }
            checked += 1;
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(checked, routes.len() * callers.len());
}

/// The code's role table agrees with the one written out above.
#[test]
fn role_permissions_match_the_written_table() {
    for role in Role::ALL {
        let code: Vec<&str> = role.permissions().iter().map(|p| p.as_str()).collect();
        let mut a = code.clone();
        let mut b = expected_permissions(*role).to_vec();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "{role}");
    }
}
