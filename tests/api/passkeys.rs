//! Passkeys, black-box, with a software authenticator (webauthn-authenticator-rs): adding,
//! listing, renaming and removing them; signing in without a username; finishing a pending
//! second step; and every bad ceremony (malformed, replayed, expired, another origin or relying
//! party, another user's, a counter that went back) refused with nothing stored (docs/security.md A10).

use reqwest::StatusCode;
use serde_json::{json, Value};
use url::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs_core::proto::{
    AllowCredentials, CreationChallengeResponse, RequestChallengeResponse, UserVerificationPolicy,
};

use crate::db_test;
use crate::helpers::*;
use crate::mfa::{code, enrolled};

pub const ORIGIN: &str = "http://localhost";

/// An application whose `public_url` names a domain, so passkeys are on.
async fn spawn(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| c.public_url = Some(ORIGIN.into())).await
}

macro_rules! passkey_test {
    (async fn $name:ident($app:ident) $body:block) => {
        mod $name {
            use super::*;

            async fn run($app: TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(spawn(Backend::Sqlite).await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs PostgreSQL: set LATCH_TEST_DATABASE_URL and run with --ignored"]
            async fn postgres() {
                run(spawn(Backend::Postgres).await).await;
            }
        }
    };
}

/// A software authenticator and the credentials it made, with the user handles the server
/// gave them (a soft token keeps no user handle, which a browser would send).
pub struct Device {
    token: SoftPasskey,
    /// Whether it verifies the user (PIN or biometrics).
    verifies: bool,
    credentials: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Device {
    pub fn new(verifies: bool) -> Self {
        Device {
            token: SoftPasskey::new(true),
            verifies,
            credentials: Vec::new(),
        }
    }

    /// Answers creation options as a browser at `origin` would (the soft token cannot keep
    /// resident keys, so it is told not to; the server cannot tell).
    fn create(&mut self, origin: &str, options: &Value) -> Value {
        let mut options: CreationChallengeResponse =
            serde_json::from_value(options.clone()).unwrap();
        let selection = options.public_key.authenticator_selection.as_mut().unwrap();
        selection.require_resident_key = false;
        selection.resident_key = None;
        selection.user_verification = self.policy();
        let handle = options.public_key.user.id.to_vec();
        let response = self
            .token
            .do_registration(Url::parse(origin).unwrap(), options)
            .unwrap();
        self.credentials.push((response.raw_id.to_vec(), handle));
        serde_json::to_value(&response).unwrap()
    }

    /// Answers request options with the credential at `index`, as a browser at `origin`.
    fn get(&mut self, origin: &str, options: &Value, index: usize) -> Value {
        let mut options: RequestChallengeResponse =
            serde_json::from_value(options.clone()).unwrap();
        let (id, handle) = self.credentials[index].clone();
        options.public_key.allow_credentials = vec![AllowCredentials {
            type_: "public-key".into(),
            id,
            transports: None,
        }];
        options.public_key.user_verification = self.policy();
        let mut response = self
            .token
            .do_authentication(Url::parse(origin).unwrap(), options)
            .unwrap();
        response.response.user_handle = Some(handle);
        serde_json::to_value(&response).unwrap()
    }

    fn policy(&self) -> UserVerificationPolicy {
        if self.verifies {
            UserVerificationPolicy::Required
        } else {
            UserVerificationPolicy::Discouraged_DO_NOT_USE
        }
    }
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

/// `register/start` with the password; returns the options.
async fn register_start(client: &TestClient) -> Value {
    let start = client
        .post_json(
            "/api/auth/passkeys/register/start",
            &json!({ "current_password": PASSWORD }),
        )
        .await;
    assert_eq!(start.status(), StatusCode::OK);
    json_of(start).await
}

/// Adds a passkey named `name` made by `device`; returns the `passkey` object.
pub async fn add_passkey(client: &TestClient, device: &mut Device, name: &str) -> Value {
    let options = register_start(client).await;
    let credential = device.create(ORIGIN, &options);
    let finish = client
        .post_json(
            "/api/auth/passkeys/register/finish",
            &json!({ "name": name, "credential": credential }),
        )
        .await;
    assert_eq!(finish.status(), StatusCode::CREATED);
    json_of(finish).await["passkey"].clone()
}

/// `login/start`; returns the options.
async fn login_start(client: &TestClient) -> Value {
    let start = client
        .post_json("/api/auth/passkeys/login/start", &json!({}))
        .await;
    assert_eq!(start.status(), StatusCode::OK);
    json_of(start).await
}

async fn login_finish(client: &TestClient, credential: &Value) -> reqwest::Response {
    client
        .post_json(
            "/api/auth/passkeys/login/finish",
            &json!({ "credential": credential }),
        )
        .await
}

/// A whole passkey sign-in of `client` with `device`'s first passkey.
pub async fn passkey_sign_in(client: &TestClient, device: &mut Device) -> reqwest::Response {
    let options = login_start(client).await;
    login_finish(client, &device.get(ORIGIN, &options, 0)).await
}

/// `key` (no user verification) of `login`, whose password must be followed by a second step:
/// refused on its own, and the second factor after the password. Returns the signed-in client.
async fn one_factor_after_the_password(app: &TestApp, login: &str, key: &mut Device) -> TestClient {
    let alone = app.new_client();
    assert_eq!(
        passkey_sign_in(&alone, key).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        alone.get("/api/auth/verify_auth").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let pending = app.new_client();
    assert_eq!(
        pending.login(login, PASSWORD, false).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        passkey_sign_in(&pending, key).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        current_factors(&pending).await,
        (vec!["password".to_owned(), "security_key".to_owned()], true)
    );
    pending
}

async fn passkeys_of(client: &TestClient) -> Vec<Value> {
    let list = json_of(client.get("/api/auth/passkeys").await).await;
    list["passkeys"].as_array().unwrap().clone()
}

/// The factors of the client's current session.
pub async fn current_factors(client: &TestClient) -> (Vec<String>, bool) {
    let current = current_session(client).await;
    let names = current["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["factor"].as_str().unwrap().to_owned())
        .collect();
    (names, current["two_factor"] == true)
}

pub async fn send(
    client: &TestClient,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let token = client.csrf().await;
    let mut request = client
        .http
        .request(method, client.url(path))
        .header("X-CSRF-Token", token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

passkey_test!(
    async fn add_then_sign_in_without_a_username(app) {
        let client = app.new_client();
        client.signup("pam", "pam@example.com", PASSWORD).await;
        // The password is needed (and checked) to add one.
        let missing = client
            .post_json("/api/auth/passkeys/register/start", &json!({}))
            .await;
        assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let wrong = client
            .post_json(
                "/api/auth/passkeys/register/start",
                &json!({ "current_password": "not it at all" }),
            )
            .await;
        assert_eq!(
            error_code(wrong).await,
            (StatusCode::UNAUTHORIZED, "invalid_credentials".into())
        );
        let options = register_start(&client).await;
        let public_key = &options["publicKey"];
        assert_eq!(public_key["rp"]["id"], "localhost");
        assert_eq!(public_key["authenticatorSelection"]["residentKey"], "required");
        assert_eq!(public_key["authenticatorSelection"]["userVerification"], "preferred");
        assert_eq!(public_key["user"]["name"], "pam");
        assert!(public_key["challenge"].as_str().unwrap().len() >= 43);

        let mut device = Device::new(true);
        let credential = device.create(ORIGIN, &options);
        let finish = client
            .post_json(
                "/api/auth/passkeys/register/finish",
                &json!({ "name": "  Laptop  ", "credential": credential }),
            )
            .await;
        assert_eq!(finish.status(), StatusCode::CREATED);
        let passkey = json_of(finish).await["passkey"].clone();
        assert_eq!(passkey["name"], "Laptop");
        assert!(passkey["created_at"].is_string());
        assert!(passkey["last_used_at"].is_null());
        assert_eq!(passkeys_of(&client).await.len(), 1);
        let status = json_of(client.get("/api/auth/mfa").await).await;
        assert_eq!(status["passkeys"], 1);

        // Registering again excludes the passkey the user has.
        let again = register_start(&client).await;
        let excluded = again["publicKey"]["excludeCredentials"].as_array().unwrap();
        assert_eq!(excluded.len(), 1);
        assert_eq!(excluded[0]["id"], credential["rawId"]);

        // Signed out, the passkey signs in with no username: empty allowCredentials.
        client.logout().await;
        // Both ceremonies need the session's CSRF token, like every other change.
        for path in ["/api/auth/passkeys/login/start", "/api/auth/passkeys/login/finish"] {
            let forged = client.post_json_with_token(path, &json!({}), None).await;
            assert_eq!(
                error_code(forged).await,
                (StatusCode::FORBIDDEN, "csrf_failed".into())
            );
        }
        let options = login_start(&client).await;
        assert_eq!(options["publicKey"]["allowCredentials"], json!([]));
        let assertion = device.get(ORIGIN, &options, 0);
        let signed_in = login_finish(&client, &assertion).await;
        assert_eq!(signed_in.status(), StatusCode::OK);
        assert!(signed_in.headers().get("x-csrf-token").is_some());
        assert_eq!(json_of(signed_in).await["user"]["username"], "pam");
        assert_eq!(client.get("/api/auth/verify_auth").await.status(), StatusCode::OK);
        // With user verification it is two factors on its own.
        assert_eq!(current_factors(&client).await, (vec!["passkey".to_owned()], true));
        assert!(passkeys_of(&client).await[0]["last_used_at"].is_string());

        // The same assertion again is refused: its challenge was used.
        let other = app.new_client();
        let replay = login_finish(&other, &assertion).await;
        assert_eq!(
            error_code(replay).await,
            (StatusCode::UNAUTHORIZED, "invalid_credentials".into())
        );
        assert_eq!(other.get("/api/auth/verify_auth").await.status(), StatusCode::UNAUTHORIZED);
        // A second, fresh answer (its counter ahead) to a challenge already used: refused for
        // the challenge alone.
        let options = login_start(&other).await;
        let first = device.get(ORIGIN, &options, 0);
        let second = device.get(ORIGIN, &options, 0);
        assert_eq!(login_finish(&other, &first).await.status(), StatusCode::OK);
        other.logout().await;
        let reused = login_finish(&other, &second).await;
        assert_eq!(reused.status(), StatusCode::UNAUTHORIZED);

        // Right after a passkey sign-in, another can be added without the password.
        let quick = client
            .post_json("/api/auth/passkeys/register/start", &json!({}))
            .await;
        assert_eq!(quick.status(), StatusCode::OK);
        app.clock.advance(5 * 60 + 1);
        let late = client
            .post_json("/api/auth/passkeys/register/start", &json!({}))
            .await;
        assert_eq!(late.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
);

passkey_test!(
    async fn bad_registrations_store_nothing(app) {
        let client = app.new_client();
        client.signup("bea", "bea@example.com", PASSWORD).await;
        let mut device = Device::new(true);
        let refused = |response: reqwest::Response| async move {
            assert_eq!(
                error_code(response).await,
                (StatusCode::BAD_REQUEST, "invalid_credential".into())
            );
        };
        let finish = |credential: Value| {
            let client = &client;
            async move {
                client
                    .post_json(
                        "/api/auth/passkeys/register/finish",
                        &json!({ "name": "x", "credential": credential }),
                    )
                    .await
            }
        };
        // Malformed answers.
        for junk in [json!("nonsense"), json!({ "id": 1 }), json!({ "response": {} }), json!([1, 2])] {
            refused(finish(junk).await).await;
        }
        let missing = client
            .post_json("/api/auth/passkeys/register/finish", &json!({ "name": "x" }))
            .await;
        assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let too_long = client
            .post_json(
                "/api/auth/passkeys/register/finish",
                &json!({ "name": "x".repeat(65), "credential": {} }),
            )
            .await;
        assert_eq!(too_long.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = json_of(too_long).await;
        assert!(body["error"]["fields"]["name"].is_array(), "{body}");

        // Another origin (a subdomain of the relying party, so the authenticator signs).
        let options = register_start(&client).await;
        refused(finish(device.create("https://evil.localhost", &options)).await).await;
        // Another relying party: the authenticator scoped it to another domain.
        let mut options = register_start(&client).await;
        options["publicKey"]["rp"]["id"] = json!("other.localhost");
        refused(finish(device.create("https://other.localhost", &options)).await).await;
        // Expired: older than 5 minutes.
        let options = register_start(&client).await;
        let late = device.create(ORIGIN, &options);
        app.clock.advance(5 * 60 + 1);
        refused(finish(late).await).await;
        // One creation challenge answered by two devices: only the first is registered.
        let options = register_start(&client).await;
        let first = device.create(ORIGIN, &options);
        let second = Device::new(true).create(ORIGIN, &options);
        assert_eq!(finish(first).await.status(), StatusCode::CREATED);
        refused(finish(second).await).await;
        // Replayed: a good answer works once.
        let options = register_start(&client).await;
        let good = device.create(ORIGIN, &options);
        assert_eq!(finish(good.clone()).await.status(), StatusCode::CREATED);
        refused(finish(good).await).await;
        // Another user's ceremony.
        let other = app.new_client();
        other.signup("cid", "cid@example.com", PASSWORD).await;
        let options = register_start(&other).await;
        refused(finish(device.create(ORIGIN, &options)).await).await;

        assert_eq!(passkeys_of(&client).await.len(), 2);
        assert_eq!(passkeys_of(&other).await.len(), 0);
    }
);

passkey_test!(
    async fn bad_sign_ins_are_refused(app) {
        let client = app.new_client();
        client.signup("dee", "dee@example.com", PASSWORD).await;
        let mut device = Device::new(true);
        add_passkey(&client, &mut device, "Phone").await;
        client.logout().await;
        let refused = |response: reqwest::Response| async move {
            assert_eq!(
                error_code(response).await,
                (StatusCode::UNAUTHORIZED, "invalid_credentials".into())
            );
        };
        for junk in [json!("nonsense"), json!({ "id": "x" }), json!({ "rawId": "AAAA", "response": {} })] {
            refused(login_finish(&client, &junk).await).await;
        }
        let missing = client
            .post_json("/api/auth/passkeys/login/finish", &json!({}))
            .await;
        assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
        // Another origin.
        let options = login_start(&client).await;
        refused(login_finish(&client, &device.get("https://evil.localhost", &options, 0)).await).await;
        // Expired.
        let options = login_start(&client).await;
        let late = device.get(ORIGIN, &options, 0);
        app.clock.advance(5 * 60 + 1);
        refused(login_finish(&client, &late).await).await;
        // No user handle, when nothing else names the user.
        let options = login_start(&client).await;
        let mut anonymous = device.get(ORIGIN, &options, 0);
        anonymous["response"]["userHandle"] = Value::Null;
        refused(login_finish(&client, &anonymous).await).await;
        // A passkey that is not registered here.
        let mut stranger = Device::new(true);
        let stranger_client = app.new_client();
        stranger_client.signup("eve", "eve@example.com", PASSWORD).await;
        add_passkey(&stranger_client, &mut stranger, "Eve's").await;
        let evicted = passkeys_of(&stranger_client).await[0]["id"].clone();
        let gone = send(&stranger_client, reqwest::Method::DELETE, &format!("/api/auth/passkeys/{evicted}"), None).await;
        assert_eq!(gone.status(), StatusCode::NO_CONTENT);
        let options = login_start(&client).await;
        refused(login_finish(&client, &stranger.get(ORIGIN, &options, 0)).await).await;
        // A counter that went back (a cloned authenticator): the stored one is ahead.
        sqlx_set_sign_count(&app, 1_000).await;
        let options = login_start(&client).await;
        refused(login_finish(&client, &device.get(ORIGIN, &options, 0)).await).await;

        assert_eq!(client.get("/api/auth/verify_auth").await.status(), StatusCode::UNAUTHORIZED);
        // The refusals are audited with their reason, never with the answer itself.
        let rows = audit_details(&app).await;
        assert!(rows.iter().any(|d| d.contains("ceremony expired")), "{rows:?}");
        assert!(rows.iter().any(|d| d.contains("unknown passkey")), "{rows:?}");
    }
);

async fn sqlx_set_sign_count(app: &TestApp, count: i64) {
    match &app.db {
        latch::store::Db::Sqlite(pool) => {
            sqlx::query("UPDATE passkeys SET sign_count = $1")
                .bind(count)
                .execute(pool)
                .await
                .unwrap();
        }
        latch::store::Db::Postgres(pool) => {
            sqlx::query("UPDATE passkeys SET sign_count = $1")
                .bind(count)
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

async fn audit_details(app: &TestApp) -> Vec<String> {
    let sql = "SELECT COALESCE(detail, '') FROM audit_events WHERE event = 'sign_in'";
    let rows: Vec<(String,)> = match &app.db {
        latch::store::Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        latch::store::Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
    };
    rows.into_iter().map(|(d,)| d).collect()
}

passkey_test!(
    async fn rename_and_remove_only_your_own(app) {
        let client = app.new_client();
        client.signup("fay", "fay@example.com", PASSWORD).await;
        let mut device = Device::new(true);
        let passkey = add_passkey(&client, &mut device, "Laptop").await;
        let path = format!("/api/auth/passkeys/{}", passkey["id"]);
        let other = app.new_client();
        other.signup("gus", "gus@example.com", PASSWORD).await;
        for method in [reqwest::Method::DELETE, reqwest::Method::PATCH] {
            let response = send(&other, method, &path, Some(json!({ "name": "mine" }))).await;
            assert_eq!(error_code(response).await, (StatusCode::NOT_FOUND, "not_found".into()));
        }
        let bad_id = send(&client, reqwest::Method::DELETE, "/api/auth/passkeys/abc", None).await;
        assert_eq!(bad_id.status(), StatusCode::NOT_FOUND);
        let renamed = send(&client, reqwest::Method::PATCH, &path, Some(json!({ "name": "Work laptop" }))).await;
        assert_eq!(renamed.status(), StatusCode::OK);
        assert_eq!(json_of(renamed).await["passkey"]["name"], "Work laptop");
        let long = send(&client, reqwest::Method::PATCH, &path, Some(json!({ "name": "x".repeat(100) }))).await;
        assert_eq!(long.status(), StatusCode::UNPROCESSABLE_ENTITY);
        // The page lists it, and its forms rename and remove it without script.
        let html = client.get("/account/security").await.text().await.unwrap();
        assert!(html.contains("Work laptop"), "{html}");
        assert!(html.contains("data-passkey-add"));
        let token = extract_meta_csrf(&html).unwrap();
        let id = passkey["id"].to_string();
        let bad = client
            .post_form(
                &format!("/account/security/passkeys/{id}/rename"),
                &[("csrf_token", &token), ("name", &"y".repeat(80))],
            )
            .await;
        assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = bad.text().await.unwrap();
        assert!(page.contains(&format!("passkey-{id}-error")), "{page}");
        let gone = client
            .post_form(
                &format!("/account/security/passkeys/{id}/delete"),
                &[("csrf_token", &token)],
            )
            .await;
        assert_redirect(&gone, "/account/security?done=passkey_removed");
        assert!(passkeys_of(&client).await.is_empty());
        // It signs nobody in any more.
        let options = login_start(&other).await;
        let response = login_finish(&other, &device.get(ORIGIN, &options, 0)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        // Each change was mailed to the owner.
        let mails: Vec<_> = app
            .outbox_mails()
            .into_iter()
            .filter(|m| m.subject.contains("passkey"))
            .collect();
        assert_eq!(mails.len(), 2, "{:?}", mails.iter().map(|m| &m.subject).collect::<Vec<_>>());
    }
);

passkey_test!(
    async fn a_passkey_finishes_a_pending_second_step(app) {
        let (client, secret, _) = enrolled(&app, "hal").await;
        let mut device = Device::new(true);
        add_passkey(&client, &mut device, "Key").await;
        let mut stranger = Device::new(true);
        let other = app.new_client();
        other.signup("ida", "ida@example.com", PASSWORD).await;
        add_passkey(&other, &mut stranger, "Ida's").await;

        let pending = app.new_client();
        let response = pending.login("hal", PASSWORD, true).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(
            json_of(response).await,
            json!({ "mfa_required": true, "methods": ["totp", "recovery_code", "passkey"] })
        );
        // Another user's passkey does not finish it, and does not sign its owner in here.
        let options = login_start(&pending).await;
        let response = login_finish(&pending, &stranger.get(ORIGIN, &options, 0)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(pending.get("/api/auth/verify_auth").await.status(), StatusCode::UNAUTHORIZED);
        // The user's own does.
        let options = login_start(&pending).await;
        let response = login_finish(&pending, &device.get(ORIGIN, &options, 0)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            current_factors(&pending).await,
            (vec!["password".to_owned(), "passkey".to_owned()], true)
        );
        // The TOTP code still works for the next sign-in.
        let again = app.new_client();
        again.login("hal", PASSWORD, false).await;
        app.clock.advance(30);
        let step = again
            .post_json("/api/auth/mfa", &json!({ "code": code(&app, &secret, 0) }))
            .await;
        assert_eq!(step.status(), StatusCode::OK);

        // An administrator's reset removes the passkeys too.
        let user_id = json_of(client.get("/api/auth/verify_auth").await).await["user"]["id"].clone();
        let id = user_id.as_i64().unwrap_or_else(|| {
            // verify_auth is refused after the reset's session end; read it before.
            panic!("no id: {user_id}")
        });
        let reset = latch::mfa::reset(&app.state, id, "by=test", &Default::default())
            .await
            .unwrap();
        assert!(reset.was_on);
        let options = login_start(&pending).await;
        let response = login_finish(&pending, &device.get(ORIGIN, &options, 0)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
);

passkey_test!(
    async fn without_user_verification_a_passkey_is_one_factor(app) {
        let client = app.new_client();
        client.signup("jay", "jay@example.com", PASSWORD).await;
        let mut key = Device::new(false);
        add_passkey(&client, &mut key, "Security key").await;
        client.logout().await;
        let options = login_start(&client).await;
        let response = login_finish(&client, &key.get(ORIGIN, &options, 0)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            current_factors(&client).await,
            (vec!["security_key".to_owned()], false)
        );
        // It cannot stand in for an account's second factor on its own; after the password
        // it is the second factor.
        let (owner, _, _) = enrolled(&app, "kim").await;
        let mut key = Device::new(false);
        add_passkey(&owner, &mut key, "Security key").await;
        one_factor_after_the_password(&app, "kim", &mut key).await;
    }
);

db_test!(
    async fn an_ip_address_public_url_turns_passkeys_off(app) {
        // The default test app's public_url is http://127.0.0.1:<port>.
        let start = app
            .client
            .post_json("/api/auth/passkeys/login/start", &json!({}))
            .await;
        assert_eq!(
            error_code(start).await,
            (StatusCode::NOT_FOUND, "passkeys_unavailable".into())
        );
        let login = app.get("/login").await.text().await.unwrap();
        assert!(!login.contains("data-passkey-sign-in"));
        assert!(!login.contains("pages.js"));
        app.signup("lou", "lou@example.com", PASSWORD).await;
        let security = app.get("/account/security").await.text().await.unwrap();
        assert!(security.contains("IP address"), "{security}");
        assert!(!security.contains("data-passkey-add"));
    }
);

/// `login/start` from `forwarded_for`, behind the trusted proxy the test client plays.
async fn login_start_from(client: &TestClient, forwarded_for: &str) -> reqwest::Response {
    client
        .post_json_forwarded("/api/auth/passkeys/login/start", forwarded_for, &json!({}))
        .await
}

async fn challenge_rows(app: &TestApp) -> i64 {
    let sql = "SELECT COUNT(*) FROM passkey_challenges";
    let (n,): (i64,) = match &app.db {
        latch::store::Db::Sqlite(pool) => sqlx::query_as(sql).fetch_one(pool).await.unwrap(),
        latch::store::Db::Postgres(pool) => sqlx::query_as(sql).fetch_one(pool).await.unwrap(),
    };
    n
}

crate::backend_test! {
    /// Anyone may start a passkey sign-in and each start stores a challenge: 30 a minute per
    /// client IP (the default), counted in memory, so a refused start writes nothing.
    async fn passkey_sign_in_starts_are_limited_per_client_ip(backend) {
        let app = TestApp::spawn_with(backend, |c| {
            c.public_url = Some(ORIGIN.into());
            c.trusted_proxies = vec!["127.0.0.1".into()];
        })
        .await;
        let client = app.new_client();
        for _ in 0..30 {
            let start = login_start_from(&client, "198.51.100.1").await;
            assert_eq!(start.status(), StatusCode::OK);
        }
        let refused = login_start_from(&client, "198.51.100.1").await;
        let retry_after: i64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        assert_eq!(
            error_code(refused).await,
            (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts".into())
        );
        assert_eq!(challenge_rows(&app).await, 30, "a refused start stored a challenge");
        // Prepending an address of its choosing does not make the client someone else.
        let prepended = login_start_from(&client, "192.0.2.9, 198.51.100.1").await;
        assert_eq!(prepended.status(), StatusCode::TOO_MANY_REQUESTS);
        // Another client behind the same proxy is not affected.
        let other = app.new_client();
        let start = login_start_from(&other, "198.51.100.2").await;
        assert_eq!(start.status(), StatusCode::OK);
        // After the minute, the first client may start again.
        app.clock.advance(60);
        let again = login_start_from(&client, "198.51.100.1").await;
        assert_eq!(again.status(), StatusCode::OK);
    }
}

/// The `/login/mfa` page `login` is sent to after the right password on the login form.
async fn second_step_page(app: &TestApp, login: &str) -> String {
    let browser = app.new_client();
    let csrf = browser.page_csrf("/login").await;
    let fields = [
        ("csrf_token", csrf.as_str()),
        ("login", login),
        ("password", PASSWORD),
    ];
    let form = browser.post_form("/login", &fields).await;
    assert_redirect(&form, "/login/mfa");
    browser.get("/login/mfa").await.text().await.unwrap()
}

/// An application with passkeys on whose `admin` role requires a second factor.
async fn spawn_requiring_admins(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.public_url = Some(ORIGIN.into());
        c.require_mfa_roles = vec!["admin".into()];
    })
    .await
}

crate::backend_test! {
    /// For a `require_mfa_roles` role a passkey is the second factor: it releases the hold
    /// (ending the sessions made by the password alone), and from then on the password only
    /// starts a sign-in that the passkey finishes.
    async fn a_passkey_is_the_second_factor_a_required_role_needs(backend) {
        let app = spawn_requiring_admins(backend).await;
        let (boss, _) = crate::authz::admin_client(&app, "boss").await;
        let elsewhere = app.new_client();
        assert_eq!(elsewhere.login("boss", PASSWORD, false).await.status(), StatusCode::OK);
        assert_eq!(
            error_code(boss.get("/api/auth/sessions").await).await,
            (StatusCode::FORBIDDEN, "mfa_enrollment_required".into())
        );
        // Adding the passkey (allowed while held) releases the admin, under a new session id.
        let before = boss.session_cookie().unwrap();
        let mut device = Device::new(true);
        let options = register_start(&boss).await;
        let finish = boss
            .post_json(
                "/api/auth/passkeys/register/finish",
                &json!({ "name": "Laptop", "credential": device.create(ORIGIN, &options) }),
            )
            .await;
        assert_eq!(finish.status(), StatusCode::CREATED);
        assert!(finish.headers().get("x-csrf-token").is_some());
        assert_ne!(boss.session_cookie().unwrap(), before);
        assert_eq!(boss.get("/api/auth/sessions").await.status(), StatusCode::OK);
        assert_eq!(boss.get("/dashboard").await.status(), StatusCode::OK);
        assert_eq!(
            current_factors(&boss).await,
            (vec!["password".to_owned(), "passkey".to_owned()], true)
        );
        // The session made by the password alone ended.
        assert_eq!(elsewhere.get("/api/auth/verify_auth").await.status(), StatusCode::UNAUTHORIZED);

        // The password alone no longer signs in: it waits for the passkey.
        let pending = app.new_client();
        let response = pending.login("boss", PASSWORD, false).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(
            json_of(response).await,
            json!({ "mfa_required": true, "methods": ["passkey"] })
        );
        assert_eq!(pending.get("/api/auth/verify_auth").await.status(), StatusCode::UNAUTHORIZED);
        // There is no TOTP to check a code against.
        let code = pending.post_json("/api/auth/mfa", &json!({ "code": "123456" })).await;
        assert_eq!(
            error_code(code).await,
            (StatusCode::UNAUTHORIZED, "invalid_code".into())
        );
        assert_eq!(passkey_sign_in(&pending, &mut device).await.status(), StatusCode::OK);
        assert_eq!(
            current_factors(&pending).await,
            (vec!["password".to_owned(), "passkey".to_owned()], true)
        );
        assert_eq!(pending.get("/api/admin/users").await.status(), StatusCode::OK);
        // The passkey with user verification still signs in by itself (two factors).
        let direct = app.new_client();
        assert_eq!(passkey_sign_in(&direct, &mut device).await.status(), StatusCode::OK);
        assert_eq!(current_factors(&direct).await, (vec!["passkey".to_owned()], true));

        // The login form goes to the second step, which offers the passkey and no code field.
        let page = second_step_page(&app, "boss").await;
        assert!(page.contains("Use a passkey instead"), "{page}");
        assert!(page.contains("the one you set up is a passkey"), "{page}");
        assert!(!page.contains("name=\"code\""), "{page}");

        // Without the role, a passkey changes nothing about the password: it signs in directly.
        let (plain, _) = crate::authz::user_client(&app, "plain").await;
        add_passkey(&plain, &mut Device::new(true), "Phone").await;
        let response = app.new_client().login("plain", PASSWORD, false).await;
        assert_eq!(response.status(), StatusCode::OK);
        // And a TOTP user's second step still offers the code field beside the passkey.
        let (totp_user, _, _) = enrolled(&app, "tia").await;
        add_passkey(&totp_user, &mut Device::new(true), "Key").await;
        let page = second_step_page(&app, "tia").await;
        assert!(page.contains("name=\"code\"") && page.contains("Use a passkey instead"), "{page}");
    }
}

crate::backend_test! {
    /// A passkey without user verification is one factor: for a required role it releases the
    /// hold (every way in still takes two factors) but never signs in on its own.
    async fn an_unverified_passkey_does_not_replace_the_password_of_a_required_role(backend) {
        let app = spawn_requiring_admins(backend).await;
        let (sky, _) = crate::authz::admin_client(&app, "sky").await;
        let mut key = Device::new(false);
        add_passkey(&sky, &mut key, "Security key").await;
        assert_eq!(sky.get("/api/auth/sessions").await.status(), StatusCode::OK);
        assert_eq!(
            current_factors(&sky).await,
            (vec!["password".to_owned(), "security_key".to_owned()], true)
        );
        let pending = one_factor_after_the_password(&app, "sky", &mut key).await;
        // Removing the only passkey puts the hold back.
        let id = passkeys_of(&pending).await[0]["id"].as_i64().unwrap();
        let removed = send(&pending, reqwest::Method::DELETE, &format!("/api/auth/passkeys/{id}"), None).await;
        assert_eq!(removed.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            error_code(pending.get("/api/auth/sessions").await).await,
            (StatusCode::FORBIDDEN, "mfa_enrollment_required".into())
        );
        assert_eq!(app.new_client().login("sky", PASSWORD, false).await.status(), StatusCode::OK);
    }
}

crate::backend_test! {
    /// An administrator's reset (`latch user mfa-reset`) removes the passkeys too: a
    /// required-role holder whose factor was a passkey signs in with the password alone again,
    /// into the hold.
    async fn a_reset_removes_the_passkey_and_holds_the_role_again(backend) {
        let app = spawn_requiring_admins(backend).await;
        let (rex, _) = crate::authz::admin_client(&app, "rex").await;
        add_passkey(&rex, &mut Device::new(true), "Laptop").await;
        assert_eq!(rex.get("/api/auth/sessions").await.status(), StatusCode::OK);
        let reset = crate::authz::latch(&app, &["user", "mfa-reset", "rex"], None).await;
        assert!(reset.status.success(), "{}", String::from_utf8_lossy(&reset.stderr));
        assert_eq!(rex.get("/api/auth/verify_auth").await.status(), StatusCode::UNAUTHORIZED);
        let again = app.new_client();
        assert_eq!(again.login("rex", PASSWORD, false).await.status(), StatusCode::OK);
        assert_eq!(
            error_code(again.get("/api/auth/sessions").await).await,
            (StatusCode::FORBIDDEN, "mfa_enrollment_required".into())
        );
    }
}
