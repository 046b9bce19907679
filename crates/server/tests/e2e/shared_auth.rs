//! Two servers on one PostgreSQL database, as behind a load balancer, share
//! what administrators' authentication keeps between requests: a passkey
//! ceremony started on one is finished on the other, once; a source's
//! failed sign-ins count against it on both together; a CSRF token one
//! server hands out is accepted by the other. The first server listens
//! (`spawn_on_postgres`); the second is its services built the way
//! `mamori serve` builds them, over its own connection pool (no listeners,
//! so the sole-server lock is not taken), and driven through the same core
//! calls the routes make.

use crate::admins::{Browser, PASSWORD};
use crate::common::{create_admin_now, spawn_on_postgres, TestApp};
use mamori::config::{Config, Database};
use mamori_core::access::{AdminActor, ClientContext, Via};
use mamori_core::{CoreError, PasskeyProblem, Services};
use mamori_domain::Role;
use mamori_testkit::pg;
use serde_json::{json, Value};
use std::sync::Arc;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

/// Another server's services on the first one's database and keys.
async fn second_server(app: &TestApp, config: &Config) -> Services {
    let pusher = Arc::new(mamori_push::ApnsPusher::new(&config.apns_url, Vec::new()).unwrap());
    let (s, _, _) = mamori::app::build_services(
        config,
        &app.running.public_url,
        &app.running.services.config.auth.admin_url,
        pusher,
        false,
    )
    .await
    .unwrap();
    s
}

/// The user agent of the tests' browsers (`admins::Browser`'s).
const UA: &str = "mamori-e2e/1";

/// What the admin listener sees of a browser on this machine.
fn local() -> ClientContext {
    ClientContext {
        source: "127.0.0.1".into(),
        user_agent: Some(UA.into()),
        request_id: None,
    }
}

fn origin(s: &Services) -> Url {
    Url::parse(&s.config.auth.admin_url).unwrap()
}

/// The session secret in a browser's cookie.
fn secret_of(b: &Browser) -> String {
    let cookie = b.cookie.as_deref().expect("a session cookie");
    cookie.split_once('=').unwrap().1.to_owned()
}

fn session_of(actor: &AdminActor) -> String {
    match &actor.via {
        Via::Session(s) => s.id.to_string(),
        Via::Token(_) => panic!("a session's actor"),
    }
}

fn psql(config: &Config, sql: &str) -> String {
    let Database::Postgres(url) = &config.database else {
        panic!("the servers are on PostgreSQL");
    };
    pg::shared()
        .psql(pg::Cluster::database_of(url), sql)
        .unwrap()
}

fn expired<T>(r: Result<T, CoreError>) -> bool {
    matches!(r, Err(CoreError::Passkey(PasskeyProblem::Expired)))
}

// Length: one ceremony after another on two servers, each step checked
// where it happens; split, the steps would lose the state they share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_ceremony_started_on_one_server_is_finished_on_the_other_once() {
    let (app, config) = spawn_on_postgres().await;
    let a = app.running.services.clone();
    let b = second_server(&app, &config).await;
    let otp = create_admin_now(&a, &local(), "kiri", Role::SecurityOfficer)
        .await
        .one_time_password;

    // First login on the first server (over its API): a new password, then
    // a passkey to register, asked of the first server...
    let mut browser = Browser::new(&app);
    let (st, body) = browser
        .post(
            "/api/v1/auth/login",
            json!({"name": "kiri", "password": otp}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, _) = browser
        .post(
            "/api/v1/auth/password",
            json!({"current": otp, "new": PASSWORD}),
        )
        .await;
    assert_eq!(st, 204);
    let secret = secret_of(&browser);
    let on_a = a.authenticate_session(&secret, &local()).await.unwrap();
    let on_b = b.authenticate_session(&secret, &local()).await.unwrap();
    let (st, options) = browser
        .post("/api/v1/auth/webauthn/register/start", json!({}))
        .await;
    assert_eq!(st, 200, "{options}");
    let mut key = SoftPasskey::new(true);
    let options: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let credential =
        serde_json::to_value(key.do_registration(origin(&a), options).unwrap()).unwrap();
    // ...and answered on the second.
    let (_, enrolled) = b
        .webauthn_register_finish(&on_b, "laptop", &credential, &local())
        .await
        .unwrap();
    assert!(enrolled.session.is_some(), "the setup is finished");
    // Finished: the same answer again finds nothing, on either server.
    assert!(expired(
        b.webauthn_register_finish(&on_b, "again", &credential, &local())
            .await
    ));
    assert!(expired(
        a.webauthn_register_finish(&on_a, "again", &credential, &local())
            .await
    ));
    assert_eq!(a.passkeys_of(&on_a.admin).await.unwrap().len(), 1);

    // A login: the password on the second server, the challenge asked of
    // it too, the answer given to the first (over its API).
    let (_, cookie) = b.login("kiri", PASSWORD, &local()).await.unwrap();
    let on_b = b
        .authenticate_session(&cookie.secret, &local())
        .await
        .unwrap();
    let on_a = a
        .authenticate_session(&cookie.secret, &local())
        .await
        .unwrap();
    let options = b.webauthn_login_start(&on_b).await.unwrap();
    // What the database holds of it is sealed: not even its challenge shows.
    let challenge = options["publicKey"]["challenge"].as_str().unwrap();
    let challenge = hex::encode(
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, challenge)
            .unwrap(),
    );
    let stored = psql(
        &config,
        "SELECT encode(value, 'hex') FROM ephemeral WHERE space = 'ceremony'",
    );
    assert!(!stored.is_empty(), "the ceremony is in the database");
    assert!(
        !stored.contains(&challenge),
        "the challenge is stored in the clear"
    );
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let assertion =
        serde_json::to_value(key.do_authentication(origin(&a), options).unwrap()).unwrap();
    let mut browser = Browser::new(&app);
    browser.cookie = Some(format!("__Host-mamori_session={}", cookie.secret));
    browser.csrf = Some(cookie.csrf_token.clone());
    let (st, body) = browser
        .post(
            "/api/v1/auth/webauthn/login/finish",
            json!({"credential": assertion}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["stage"], "full");
    // Replayed, on either server: nothing to answer any more.
    assert!(expired(
        a.webauthn_login_finish(&on_a, &assertion, &local()).await
    ));
    assert!(expired(
        b.webauthn_login_finish(&on_b, &assertion, &local()).await
    ));
}

/// A ceremony stays with the session that started it: its sealed state
/// moved (in the database) to another session's ceremony does not open
/// there, so that session's answer to the first challenge is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_ceremony_moved_to_another_session_is_refused() {
    let (app, config) = spawn_on_postgres().await;
    let a = app.running.services.clone();
    let b = second_server(&app, &config).await;
    let ctx = local();
    let otp = create_admin_now(&a, &ctx, "mika", Role::Owner)
        .await
        .one_time_password;
    let (_, cookie) = a.login("mika", &otp, &ctx).await.unwrap();
    let actor = a.authenticate_session(&cookie.secret, &ctx).await.unwrap();
    a.change_password(&actor, &otp, PASSWORD, &ctx)
        .await
        .unwrap();
    let actor = a.authenticate_session(&cookie.secret, &ctx).await.unwrap();
    let mut key = SoftPasskey::new(true);
    let options = a.webauthn_register_start(&actor).await.unwrap().options;
    let credential = key
        .do_registration(origin(&a), serde_json::from_value(options).unwrap())
        .unwrap();
    a.webauthn_register_finish(
        &actor,
        "key",
        &serde_json::to_value(credential).unwrap(),
        &ctx,
    )
    .await
    .unwrap();

    // Two sign-ins, each asked for a challenge.
    let mut signed_in = Vec::new();
    for s in [&a, &b] {
        let (_, cookie) = s.login("mika", PASSWORD, &ctx).await.unwrap();
        let actor = s.authenticate_session(&cookie.secret, &ctx).await.unwrap();
        let options = s.webauthn_login_start(&actor).await.unwrap();
        signed_in.push((actor, options));
    }
    let (first, first_options) = &signed_in[0];
    let (second, _) = &signed_in[1];
    let answer = key
        .do_authentication(
            origin(&a),
            serde_json::from_value::<RequestChallengeResponse>(first_options.clone()).unwrap(),
        )
        .unwrap();
    let answer = serde_json::to_value(answer).unwrap();
    psql(
        &config,
        &format!(
            "UPDATE ephemeral SET value = (SELECT value FROM ephemeral
                WHERE space = 'ceremony' AND key = '{}')
             WHERE space = 'ceremony' AND key = '{}'",
            session_of(first),
            session_of(second)
        ),
    );
    assert!(expired(
        b.webauthn_login_finish(second, &answer, &ctx).await
    ));
    // The session that asked still can, once.
    let (outcome, _) = a.webauthn_login_finish(first, &answer, &ctx).await.unwrap();
    assert_eq!(outcome.stage, mamori_domain::SessionStage::Full);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_from_one_source_count_on_both_servers_together() {
    let (app, config) = spawn_on_postgres().await;
    let b = second_server(&app, &config).await;
    let free = app.running.services.config.auth.source_free_failures;
    assert_eq!(free, 10);
    let mut browser = Browser::new(&app);
    // An attacker alternating servers, a new name each time (so only the
    // source's count applies): every guess is checked until the free
    // failures are used up on the two together...
    for i in 0..free {
        let name = format!("guess{i}");
        if i % 2 == 0 {
            let (st, body) = browser
                .post(
                    "/api/v1/auth/login",
                    json!({"name": name, "password": "guess-guess-guess"}),
                )
                .await;
            assert_eq!(st, 401, "guess {i} on the first server: {body}");
        } else {
            let r = b.login(&name, "guess-guess-guess", &local()).await;
            assert!(
                matches!(r, Err(CoreError::InvalidCredentials)),
                "guess {i} on the second server: {r:?}"
            );
        }
    }
    // ...then the next one waits, on either.
    let (st, body): (u16, Value) = browser
        .post(
            "/api/v1/auth/login",
            json!({"name": "guess-next", "password": "guess-guess-guess"}),
        )
        .await;
    assert_eq!(st, 429, "{body}");
    let r = b.login("guess-next", "guess-guess-guess", &local()).await;
    assert!(matches!(r, Err(CoreError::TooManyRequests(_))), "{r:?}");

    // The hourly hygiene job, on whichever server runs it, sweeps what has
    // run out (here: made to, beneath the ports).
    let count = "SELECT COUNT(*) FROM ephemeral WHERE space = 'throttle'";
    assert_eq!(psql(&config, count), "11", "ten names and the source");
    psql(
        &config,
        "UPDATE ephemeral SET expires_ms = 1 WHERE key LIKE 'name:%'",
    );
    b.sweep_stale_admins(&crate::common::operator())
        .await
        .unwrap();
    assert_eq!(psql(&config, count), "1", "the source's is still live");
}

/// Guesses at one account's password in pairs, one on each server at the
/// same moment and each from its own address: one check at a time on the
/// two together, so no more passwords are checked than the free failures
/// before the account's backoff (`attacks.rs` has it on one server).
/// Checked apart, both guesses of a pair would read the backoff before
/// either failure is written, and two pairs would check four.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_on_both_servers_at_once_get_no_more_checks_than_on_one() {
    let (app, config) = spawn_on_postgres().await;
    let a = app.running.services.clone();
    let b = second_server(&app, &config).await;
    let created = create_admin_now(&a, &local(), "race-target", Role::Viewer).await;
    crate::common::first_login(&a, "race-target", &created.one_time_password).await;
    let guess = |s: &Services, i: usize| {
        let s = s.clone();
        async move {
            let ctx = ClientContext {
                source: format!("192.0.2.{i}"),
                ..local()
            };
            let r = s
                .login("race-target", &format!("wrong-guess-{i}"), &ctx)
                .await;
            matches!(r, Err(CoreError::InvalidCredentials))
        }
    };
    let mut checked = 0;
    for pair in 0..8 {
        let (on_a, on_b) = tokio::join!(guess(&a, 2 * pair), guess(&b, 2 * pair + 1));
        checked += usize::from(on_a) + usize::from(on_b);
    }
    let free = usize::try_from(a.config.auth.backoff_after).unwrap();
    assert!(
        checked <= free,
        "{checked} of 16 guesses were checked; at most {free} may be"
    );
    // Every check let go of the name.
    assert_eq!(
        psql(
            &config,
            "SELECT COUNT(*) FROM ephemeral WHERE space = 'sign-in'"
        ),
        "0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csrf_token_from_one_server_is_accepted_by_the_other() {
    let (app, config) = spawn_on_postgres().await;
    let a = app.running.services.clone();
    let b = second_server(&app, &config).await;
    let otp = create_admin_now(&a, &local(), "tomo", Role::Viewer)
        .await
        .one_time_password;
    // Signed in on the second server, which hands out the session's token.
    let (_, cookie) = b.login("tomo", &otp, &local()).await.unwrap();
    let session = format!("__Host-mamori_session={}", cookie.secret);
    let http = crate::console::browser(&app);
    // The first server's console renders the same token in its forms...
    let page = http
        .get(app.admin_url("/console/setup"))
        .header("cookie", &session)
        .header("user-agent", UA)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert_eq!(crate::console::csrf_of(&page), cookie.csrf_token);
    // ...and accepts it in a form: the sign-out goes through.
    let sign_out = |csrf: String| {
        http.post(app.admin_url("/console/sign-out"))
            .header("cookie", &session)
            .header("user-agent", UA)
            .form(&[("csrf", csrf)])
            .send()
    };
    let refused = sign_out("not-the-token".into()).await.unwrap();
    assert_eq!(refused.status(), 403, "a wrong token is refused");
    let r = sign_out(cookie.csrf_token.clone()).await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(crate::console::location(&r), "/console/sign-in");
    assert!(b
        .authenticate_session(&cookie.secret, &local())
        .await
        .is_err());
    // The key is one, sealed in the database.
    assert_eq!(
        psql(
            &config,
            "SELECT COUNT(*) FROM secrets WHERE name = 'admin-csrf-key'"
        ),
        "1"
    );
}

/// Servers starting at once on a database without a CSRF key create one
/// between them, not one each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_starting_at_once_agree_on_one_csrf_key() {
    let (app, config) = spawn_on_postgres().await;
    let mut servers = vec![app.running.services.clone()];
    for _ in 0..3 {
        servers.push(second_server(&app, &config).await);
    }
    let before = servers[0].auth.csrf_token("probe");
    for round in 0..3 {
        psql(&config, "DELETE FROM secrets WHERE name = 'admin-csrf-key'");
        let barrier = Arc::new(tokio::sync::Barrier::new(servers.len()));
        let starts: Vec<_> = servers
            .iter()
            .map(|s| {
                let (s, barrier) = (s.clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    s.load_auth_keys().await.unwrap();
                    s.auth.csrf_token("probe")
                })
            })
            .collect();
        let mut tokens = Vec::new();
        for s in starts {
            tokens.push(s.await.unwrap());
        }
        assert!(
            tokens.iter().all(|t| *t == tokens[0]),
            "round {round}: {tokens:?}"
        );
        assert_ne!(tokens[0], before, "a new key");
    }
}
