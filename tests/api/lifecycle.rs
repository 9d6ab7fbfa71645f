//! The account lifecycle through the JSON API: email verification, password reset and change,
//! email change, the session list, mail throttling, client IPs behind proxies and the audit
//! log (docs/security.md rows T1–T3, S6, S7, A2, A4–A7, O1). Page flows are in `lifecycle_pages`.

use std::sync::Arc;

use crate::helpers::*;
use crate::{backend_test, db_test};
use latch::store::Db;
use reqwest::cookie::Jar;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

pub const HOUR: i64 = 3600;
pub const DAY: i64 = 24 * HOUR;
pub const NEW_PASSWORD: &str = "a brand new passphrase 42";
pub const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
pub const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

// ---------------------------------------------------------------------------------------------
// Helpers

/// 43 base64url characters: 256 bits.
pub fn is_token(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn email_of(name: &str) -> String {
    format!("{name}@example.com")
}

/// A browser that sends `user_agent`.
pub fn client_with_agent(app: &TestApp, user_agent: &str) -> TestClient {
    let jar = Arc::new(Jar::default());
    let http = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .build()
        .unwrap();
    TestClient {
        base: app.addr.clone(),
        http,
        jar,
    }
}

/// A new client signed up (and so signed in) as `name`, with the default password.
pub async fn signed_up(app: &TestApp, name: &str) -> (TestClient, Value) {
    let client = app.new_client();
    let response = client.signup(name, &email_of(name), PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED, "sign-up of {name}");
    let body: Value = response.json().await.unwrap();
    (client, body["user"].clone())
}

/// A new client signed in as the existing user `login`.
pub async fn signed_in_as(
    app: &TestApp,
    login: &str,
    password: &str,
    remember: bool,
) -> TestClient {
    let client = app.new_client();
    let response = client.login(login, password, remember).await;
    assert_eq!(response.status(), StatusCode::OK, "sign-in of {login}");
    client
}

pub async fn me(client: &TestClient) -> (StatusCode, Value) {
    let response = client.get("/api/auth/verify_auth").await;
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body["user"].clone())
}

pub async fn auth_status(client: &TestClient) -> StatusCode {
    client.get("/api/auth/verify_auth").await.status()
}

pub async fn login_status(app: &TestApp, login: &str, password: &str) -> StatusCode {
    app.new_client()
        .login(login, password, false)
        .await
        .status()
}

/// The mails to `address`, oldest first.
pub fn mails_to(app: &TestApp, address: &str) -> Vec<OutboxMail> {
    app.outbox_mails()
        .into_iter()
        .filter(|m| m.to.contains(address))
        .collect()
}

/// The tokens of every link to `path` mailed to `address`, oldest first.
pub fn tokens_mailed(app: &TestApp, address: &str, path: &str) -> Vec<String> {
    mails_to(app, address)
        .iter()
        .filter_map(|m| m.token_for(path))
        .collect()
}

/// The newest token of a link to `path` mailed to `address`.
pub fn last_token(app: &TestApp, address: &str, path: &str) -> String {
    tokens_mailed(app, address, path)
        .pop()
        .unwrap_or_else(|| panic!("no {path} link was mailed to {address}"))
}

/// `POST /api/auth/password/forgot` (no cookie, no CSRF token needed).
pub async fn forgot(client: &TestClient, email: &str) -> Response {
    client
        .post_json_with_token(
            "/api/auth/password/forgot",
            &json!({ "email": email }),
            None,
        )
        .await
}

/// Asks for a reset link for `address` and returns its token.
pub async fn reset_token(app: &TestApp, address: &str) -> String {
    let before = tokens_mailed(app, address, "/reset-password").len();
    let response = forgot(&app.new_client(), address).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let tokens = tokens_mailed(app, address, "/reset-password");
    assert_eq!(tokens.len(), before + 1, "no new reset mail to {address}");
    tokens.last().unwrap().clone()
}

pub async fn reset(client: &TestClient, token: &str, password: &str) -> Response {
    client
        .post_json_with_token(
            "/api/auth/password/reset",
            &json!({ "token": token, "password": password }),
            None,
        )
        .await
}

pub async fn verify(client: &TestClient, token: &str) -> Response {
    client
        .post_json_with_token("/api/auth/email/verify", &json!({ "token": token }), None)
        .await
}

pub async fn change_password(client: &TestClient, current: &str, new: &str) -> Response {
    client
        .post_json(
            "/api/auth/password/change",
            &json!({ "current_password": current, "new_password": new }),
        )
        .await
}

pub async fn change_email(client: &TestClient, password: &str, email: &str) -> Response {
    client
        .post_json(
            "/api/auth/email/change",
            &json!({ "password": password, "email": email }),
        )
        .await
}

/// DELETE with this client's cookie and, when given, a CSRF header.
pub async fn delete(client: &TestClient, path: &str, csrf: Option<&str>) -> Response {
    let mut request = client.http.delete(client.url(path));
    if let Some(token) = csrf {
        request = request.header("X-CSRF-Token", token);
    }
    request.send().await.unwrap()
}

pub async fn delete_with_csrf(client: &TestClient, path: &str) -> Response {
    let token = client.csrf().await;
    delete(client, path, Some(&token)).await
}

/// The `sessions` array of `GET /api/auth/sessions`.
pub async fn session_list(client: &TestClient) -> Vec<Value> {
    let response = client.get("/api/auth/sessions").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["sessions"]
        .as_array()
        .expect("a sessions array")
        .clone()
}

pub async fn current_session_id(client: &TestClient) -> i64 {
    let list = session_list(client).await;
    let current: Vec<_> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "exactly one current session in {list:?}");
    current[0]["id"].as_i64().expect("a numeric session id")
}

/// A sign-in through the API carrying an `X-Forwarded-For` header.
pub async fn login_forwarded(
    client: &TestClient,
    forwarded_for: &str,
    login: &str,
    password: &str,
) -> Response {
    let body = json!({ "login": login, "password": password });
    client
        .post_json_forwarded("/api/auth/login", forwarded_for, &body)
        .await
}

/// One row of `audit_events`, every column.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub at: i64,
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub event: String,
    pub outcome: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

impl AuditRow {
    pub fn texts(&self) -> Vec<&str> {
        [
            self.username.as_deref(),
            Some(self.event.as_str()),
            Some(self.outcome.as_str()),
            self.ip.as_deref(),
            self.user_agent.as_deref(),
            self.detail.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

type AuditTuple = (
    i64,
    Option<i64>,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

pub async fn audit_rows(db: &Db) -> Vec<AuditRow> {
    let sql = "SELECT at, user_id, username, event, outcome, ip, user_agent, detail \
               FROM audit_events ORDER BY id";
    let rows: Vec<AuditTuple> = match db {
        Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
    };
    rows.into_iter()
        .map(
            |(at, user_id, username, event, outcome, ip, user_agent, detail)| AuditRow {
                at,
                user_id,
                username,
                event,
                outcome,
                ip,
                user_agent,
                detail,
            },
        )
        .collect()
}

/// Every row of `tokens`: `(token_hash, purpose, email)`.
pub async fn token_rows(db: &Db) -> Vec<(Vec<u8>, String, Option<String>)> {
    let sql = "SELECT token_hash, purpose, email FROM tokens";
    match db {
        Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
    }
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

pub async fn assert_status_code(response: Response, status: StatusCode, code: &str) {
    let (actual_status, actual_code) = error_code(response).await;
    assert_eq!((actual_status, actual_code.as_str()), (status, code));
}

/// The `Retry-After` seconds of a 429, which must be there.
pub fn retry_after(response: &Response) -> i64 {
    response
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds")
}

// ---------------------------------------------------------------------------------------------
// Email verification (T1, T2)

db_test! {
    async fn sign_up_mails_a_verification_link_to_the_public_url(app) {
        let (_client, user) = signed_up(&app, "alice").await;
        assert_eq!(user["email_verified"], false);
        let mail = app.last_mail_to("alice@example.com").expect("a verification mail");
        let token = mail.token_for("/verify-email").expect("a /verify-email link");
        assert!(
            mail.body.contains(&format!("{}/verify-email?token={token}", app.addr)),
            "the link is not on the public URL {}: {}",
            app.addr,
            mail.body
        );
    }
}

db_test! {
    async fn sec_t1_verification_tokens_are_256_bit_and_only_their_hash_is_stored(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let token = last_token(&app, "alice@example.com", "/verify-email");
        assert!(is_token(&token), "verification token {token:?} is not 43 base64url characters");
        // A second one (resend) is different.
        let resend = client.post_json("/api/auth/email/resend", &json!({})).await;
        assert_eq!(resend.status(), StatusCode::ACCEPTED);
        let tokens = tokens_mailed(&app, "alice@example.com", "/verify-email");
        assert_eq!(tokens.len(), 2);
        assert_ne!(tokens[0], tokens[1]);
        let rows = token_rows(&app.db).await;
        assert!(rows.len() >= 2, "expected a row per pending token, found {}", rows.len());
        for token in &tokens {
            for (hash, purpose, email) in &rows {
                assert!(!contains_bytes(hash, token.as_bytes()), "a token is stored in token_hash");
                assert!(!purpose.contains(token.as_str()));
                assert!(!email.as_deref().unwrap_or_default().contains(token.as_str()));
            }
        }
    }
}

db_test! {
    async fn sec_t2_a_verification_token_verifies_once(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let token = last_token(&app, "alice@example.com", "/verify-email");
        let response = verify(&app.new_client(), &token).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let (status, user) = me(&client).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(user["email_verified"], true);
        assert_status_code(verify(&app.new_client(), &token).await, StatusCode::BAD_REQUEST, "invalid_token").await;
        // Still verified after the refused replay.
        assert_eq!(me(&client).await.1["email_verified"], true);
    }
}

db_test! {
    async fn sec_t2_a_verification_token_expires_after_24_hours(app) {
        signed_up(&app, "alice").await;
        signed_up(&app, "bob").await;
        let alice = last_token(&app, "alice@example.com", "/verify-email");
        let bob = last_token(&app, "bob@example.com", "/verify-email");
        app.clock.advance(DAY - 60);
        assert_eq!(verify(&app.new_client(), &alice).await.status(), StatusCode::NO_CONTENT, "a 23h59 old link must work");
        app.clock.advance(61 + 1);
        assert_status_code(verify(&app.new_client(), &bob).await, StatusCode::BAD_REQUEST, "invalid_token").await;
        let bob_client = signed_in_as(&app, "bob", PASSWORD, false).await;
        assert_eq!(me(&bob_client).await.1["email_verified"], false);
    }
}

db_test! {
    async fn garbage_verification_tokens_get_400_and_never_5xx(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let long = "x".repeat(10_000);
        let right_shape = "A".repeat(43);
        let strings = [
            "", " ", "garbage", right_shape.as_str(), long.as_str(), "../../etc/passwd",
            "' OR 1=1 --", "<script>alert(1)</script>", "\u{202e}abc", "%00", "{{7*7}}",
        ];
        for token in strings {
            let response = verify(&app.new_client(), token).await;
            assert_status_code(response, StatusCode::BAD_REQUEST, "invalid_token").await;
        }
        let others = [json!(null), json!(42), json!(["a"]), json!({"a": 1}), json!("a\u{0000}b")];
        for token in others {
            let response = app
                .new_client()
                .post_json_with_token("/api/auth/email/verify", &json!({ "token": token }), None)
                .await;
            assert!(response.status().is_client_error(), "token {token}: {}", response.status());
        }
        let empty = app.new_client().post_json_with_token("/api/auth/email/verify", &json!({}), None).await;
        assert!(empty.status().is_client_error(), "{}", empty.status());
        assert_eq!(me(&client).await.1["email_verified"], false);
    }
}

db_test! {
    async fn sec_t2_tokens_of_one_purpose_are_refused_for_the_other(app) {
        signed_up(&app, "alice").await;
        let verification = last_token(&app, "alice@example.com", "/verify-email");
        let reset_link = reset_token(&app, "alice@example.com").await;
        assert_status_code(reset(&app.new_client(), &verification, NEW_PASSWORD).await, StatusCode::BAD_REQUEST, "invalid_token").await;
        assert_status_code(verify(&app.new_client(), &reset_link).await, StatusCode::BAD_REQUEST, "invalid_token").await;
        // Both still work for their own purpose.
        assert_eq!(verify(&app.new_client(), &verification).await.status(), StatusCode::NO_CONTENT);
        assert_eq!(reset(&app.new_client(), &reset_link, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
    }
}

db_test! {
    async fn resend_mails_a_new_link_to_a_signed_in_unverified_user(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let response = client.post_json("/api/auth/email/resend", &json!({})).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let tokens = tokens_mailed(&app, "alice@example.com", "/verify-email");
        assert_eq!(tokens.len(), 2, "resend did not mail a new link");
        assert_eq!(verify(&app.new_client(), &tokens[1]).await.status(), StatusCode::NO_CONTENT);
        assert_eq!(me(&client).await.1["email_verified"], true);
        // Once verified, a resend is accepted but sends nothing.
        let response = client.post_json("/api/auth/email/resend", &json!({})).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(tokens_mailed(&app, "alice@example.com", "/verify-email").len(), 2);
    }
}

db_test! {
    async fn resend_needs_a_signed_in_user_and_a_csrf_token(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let anonymous = app.new_client();
        let response = anonymous.post_json("/api/auth/email/resend", &json!({})).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let without_csrf = client
            .post_json_with_token("/api/auth/email/resend", &json!({}), None)
            .await;
        assert_status_code(without_csrf, StatusCode::FORBIDDEN, "csrf_failed").await;
        assert_eq!(tokens_mailed(&app, "alice@example.com", "/verify-email").len(), 1);
    }
}

// ---------------------------------------------------------------------------------------------
// require_verified_email

backend_test! {
    async fn an_unverified_account_cannot_sign_in_when_verification_is_required(backend) {
        let app = TestApp::spawn_with(backend, |c| c.require_verified_email = true).await;
        let (signup_client, _) = signed_up(&app, "alice").await;
        let response = app.new_client().login("alice", PASSWORD, false).await;
        assert_status_code(response, StatusCode::FORBIDDEN, "email_unverified").await;
        // The wrong password still gets the usual 401 (no hint that the account exists).
        let wrong = app.new_client().login("alice", "not the password!", false).await;
        assert_status_code(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        // The sign-up session can ask for the link again.
        let resend = signup_client.post_json("/api/auth/email/resend", &json!({})).await;
        assert_eq!(resend.status(), StatusCode::ACCEPTED);
        let token = last_token(&app, "alice@example.com", "/verify-email");
        assert_eq!(verify(&app.new_client(), &token).await.status(), StatusCode::NO_CONTENT);
        let client = app.new_client();
        let response = client.login("alice", PASSWORD, false).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["user"]["email_verified"], true);
    }
}

backend_test! {
    async fn an_unverified_user_refused_at_sign_in_can_still_get_a_new_verification_link(backend) {
        // PRODUCT/issue: "an unverified account's sign-in answers 403 email_unverified with a
        // way to resend". A user whose link expired and who is signed out must have one.
        let app = TestApp::spawn_with(backend, |c| c.require_verified_email = true).await;
        let (signup_client, _) = signed_up(&app, "alice").await;
        assert_eq!(signup_client.logout().await.status(), StatusCode::NO_CONTENT);
        app.clock.advance(DAY + 1);
        let before = tokens_mailed(&app, "alice@example.com", "/verify-email").len();
        let client = app.new_client();
        let response = client.login("alice", PASSWORD, false).await;
        assert_status_code(response, StatusCode::FORBIDDEN, "email_unverified").await;
        let mut after = tokens_mailed(&app, "alice@example.com", "/verify-email").len();
        if after == before {
            // No mail with the refusal: the refused client must be able to ask for one.
            let resend = client.post_json("/api/auth/email/resend", &json!({})).await;
            let status = resend.status();
            after = tokens_mailed(&app, "alice@example.com", "/verify-email").len();
            assert!(
                status == StatusCode::ACCEPTED && after > before,
                "no way to get a new verification link after a 403 email_unverified: resend answered {status}"
            );
        }
        let token = last_token(&app, "alice@example.com", "/verify-email");
        assert_eq!(verify(&app.new_client(), &token).await.status(), StatusCode::NO_CONTENT);
        assert_eq!(login_status(&app, "alice", PASSWORD).await, StatusCode::OK);
    }
}

// ---------------------------------------------------------------------------------------------
// Forgot password and reset (A2, T1–T3, S6)

db_test! {
    async fn sec_a2_forgot_password_answers_the_same_for_known_and_unknown_addresses(app) {
        app.create_user("alice").await;
        let before = app.outbox_mails().len();
        let client = app.new_client();
        let known = forgot(&client, "alice@example.com").await;
        let unknown = forgot(&client, "nobody@example.com").await;
        assert_eq!(known.status(), StatusCode::ACCEPTED);
        assert_eq!(unknown.status(), StatusCode::ACCEPTED);
        let known_type = known.headers().get("content-type").cloned();
        let unknown_type = unknown.headers().get("content-type").cloned();
        assert_eq!(known_type, unknown_type);
        let known_body = known.bytes().await.unwrap();
        let unknown_body = unknown.bytes().await.unwrap();
        assert_eq!(known_body, unknown_body);
        // Only the known address gets a mail, with a reset link on the public URL.
        let mails = app.outbox_mails();
        assert_eq!(mails.len(), before + 1, "{mails:?}");
        assert!(mails_to(&app, "nobody@example.com").is_empty());
        let mail = app.last_mail_to("alice@example.com").unwrap();
        let token = mail.token_for("/reset-password").expect("a reset link");
        assert!(is_token(&token), "reset token {token:?}");
        assert!(mail.body.contains(&format!("{}/reset-password?token={token}", app.addr)), "{}", mail.body);
        // Form-encoded and with a cookie + CSRF token, the answers are the same too.
        let browser = app.new_client();
        let a = browser.post_raw("/api/auth/password/forgot", Some("application/x-www-form-urlencoded"), b"email=alice%40example.com".to_vec()).await;
        let b = browser.post_raw("/api/auth/password/forgot", Some("application/x-www-form-urlencoded"), b"email=nobody%40example.com".to_vec()).await;
        assert_eq!(a.status(), StatusCode::ACCEPTED);
        assert_eq!(b.status(), StatusCode::ACCEPTED);
        assert_eq!(a.bytes().await.unwrap(), b.bytes().await.unwrap());
    }
}

db_test! {
    async fn sec_t1_reset_tokens_are_only_stored_hashed(app) {
        app.create_user("alice").await;
        let token = reset_token(&app, "alice@example.com").await;
        assert!(is_token(&token));
        let rows = token_rows(&app.db).await;
        assert!(!rows.is_empty());
        for (hash, purpose, email) in &rows {
            assert!(!contains_bytes(hash, token.as_bytes()), "the reset token is stored in token_hash");
            assert!(!purpose.contains(&token));
            assert!(!email.as_deref().unwrap_or_default().contains(&token));
        }
    }
}

backend_test! {
    async fn sec_t3_the_reset_link_ignores_a_forged_host_header(backend) {
        for public in [None, Some("https://auth.example.com")] {
            let app = TestApp::spawn_with(backend, |c| c.public_url = public.map(str::to_owned)).await;
            app.create_user("alice").await;
            let expected_base = public.map(str::to_owned).unwrap_or_else(|| app.addr.clone());
            let client = app.new_client();
            let response = client
                .http
                .post(client.url("/api/auth/password/forgot"))
                .header(reqwest::header::HOST, "evil.example")
                .header("X-Forwarded-Host", "evil.example")
                .header("X-Forwarded-Proto", "https")
                .header("Forwarded", "host=evil.example;proto=https")
                .json(&json!({ "email": "alice@example.com" }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            let mail = app.last_mail_to("alice@example.com").unwrap();
            assert!(!mail.body.contains("evil.example"), "the mail names the forged host: {}", mail.body);
            let token = mail.token_for("/reset-password").unwrap();
            assert!(
                mail.body.contains(&format!("{expected_base}/reset-password?token={token}")),
                "the link is not on {expected_base}: {}",
                mail.body
            );
        }
    }
}

db_test! {
    async fn sec_t2_a_reset_link_works_once(app) {
        app.create_user("alice").await;
        let token = reset_token(&app, "alice@example.com").await;
        let response = reset(&app.new_client(), &token, NEW_PASSWORD).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_status_code(reset(&app.new_client(), &token, "yet another passphrase 7").await, StatusCode::BAD_REQUEST, "invalid_token").await;
        assert_eq!(login_status(&app, "alice", NEW_PASSWORD).await, StatusCode::OK);
        assert_eq!(login_status(&app, "alice", "yet another passphrase 7").await, StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn sec_t2_a_reset_link_expires_after_one_hour(app) {
        app.create_user("alice").await;
        let early = reset_token(&app, "alice@example.com").await;
        app.clock.advance(HOUR - 60);
        assert_eq!(reset(&app.new_client(), &early, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT, "a 59 min old link must work");
        let late = reset_token(&app, "alice@example.com").await;
        app.clock.advance(HOUR + 1);
        assert_status_code(reset(&app.new_client(), &late, "yet another passphrase 7").await, StatusCode::BAD_REQUEST, "invalid_token").await;
        assert_eq!(login_status(&app, "alice", NEW_PASSWORD).await, StatusCode::OK);
    }
}

db_test! {
    async fn sec_t2_a_second_forgot_request_kills_the_first_link(app) {
        app.create_user("alice").await;
        let first = reset_token(&app, "alice@example.com").await;
        let second = reset_token(&app, "alice@example.com").await;
        assert_ne!(first, second);
        assert_status_code(reset(&app.new_client(), &first, NEW_PASSWORD).await, StatusCode::BAD_REQUEST, "invalid_token").await;
        assert_eq!(reset(&app.new_client(), &second, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
    }
}

db_test! {
    async fn sec_t2_a_password_change_kills_pending_reset_links(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let token = reset_token(&app, "alice@example.com").await;
        assert_eq!(change_password(&client, PASSWORD, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
        assert_status_code(reset(&app.new_client(), &token, "yet another passphrase 7").await, StatusCode::BAD_REQUEST, "invalid_token").await;
        assert_eq!(login_status(&app, "alice", NEW_PASSWORD).await, StatusCode::OK);
    }
}

db_test! {
    async fn a_weak_new_password_is_refused_and_the_reset_link_still_works(app) {
        app.create_user("alice").await;
        let token = reset_token(&app, "alice@example.com").await;
        for weak in ["short", "password123"] {
            let response = reset(&app.new_client(), &token, weak).await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{weak}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "validation_failed");
            assert!(body["error"]["fields"]["password"].is_array(), "{body}");
        }
        assert_eq!(reset(&app.new_client(), &token, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
        assert_eq!(login_status(&app, "alice", NEW_PASSWORD).await, StatusCode::OK);
    }
}

db_test! {
    async fn sec_s6_a_reset_ends_every_session_and_mails_a_notice(app) {
        let (signup_client, _) = signed_up(&app, "alice").await;
        let remembered = signed_in_as(&app, "alice", PASSWORD, true).await;
        let plain = signed_in_as(&app, "alice", PASSWORD, false).await;
        let remembered_cookie = remembered.session_cookie().unwrap();
        let (bob, _) = signed_up(&app, "bob").await;
        let token = reset_token(&app, "alice@example.com").await;
        let mails_before = mails_to(&app, "alice@example.com").len();
        assert_eq!(reset(&app.new_client(), &token, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
        for (name, client) in [("sign-up", &signup_client), ("remember-me", &remembered), ("plain", &plain)] {
            assert_eq!(auth_status(client).await, StatusCode::UNAUTHORIZED, "the {name} session survived the reset");
        }
        assert_eq!(
            remembered.get_with_cookie("/api/auth/verify_auth", &remembered_cookie).await.status(),
            StatusCode::UNAUTHORIZED
        );
        // Other users are untouched.
        assert_eq!(auth_status(&bob).await, StatusCode::OK);
        assert_eq!(login_status(&app, "alice", PASSWORD).await, StatusCode::UNAUTHORIZED);
        assert_eq!(login_status(&app, "alice@example.com", NEW_PASSWORD).await, StatusCode::OK);
        let mails = mails_to(&app, "alice@example.com");
        assert_eq!(mails.len(), mails_before + 1, "no notice mail after the reset");
        let notice = mails.last().unwrap();
        assert!(notice.token_for("/reset-password").is_none() && !notice.body.contains(&token));
        assert!(notice.subject.to_lowercase().contains("password"), "{notice:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Change password (S6)

db_test! {
    async fn changing_the_password_needs_the_current_one(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let cookie = client.session_cookie().unwrap();
        assert_status_code(change_password(&client, "not my password", NEW_PASSWORD).await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        let empty = change_password(&client, "", NEW_PASSWORD).await;
        assert!(empty.status() == StatusCode::UNPROCESSABLE_ENTITY || empty.status() == StatusCode::UNAUTHORIZED, "{}", empty.status());
        assert_eq!(client.session_cookie().unwrap(), cookie);
        assert_eq!(auth_status(&client).await, StatusCode::OK);
        assert_eq!(login_status(&app, "alice", PASSWORD).await, StatusCode::OK);
        assert_eq!(login_status(&app, "alice", NEW_PASSWORD).await, StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn a_weak_new_password_is_refused_with_422(app) {
        let (client, _) = signed_up(&app, "alice").await;
        for weak in ["short", "password123", "alice@example.com"] {
            let response = change_password(&client, PASSWORD, weak).await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{weak}");
            let body: Value = response.json().await.unwrap();
            assert!(body["error"]["fields"]["new_password"].is_array(), "{body}");
        }
        assert_eq!(auth_status(&client).await, StatusCode::OK);
        assert_eq!(login_status(&app, "alice", PASSWORD).await, StatusCode::OK);
    }
}

db_test! {
    async fn sec_s6_a_password_change_reissues_the_current_session_and_ends_the_others(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let other = signed_in_as(&app, "alice", PASSWORD, true).await;
        let (bob, _) = signed_up(&app, "bob").await;
        let old_cookie = client.session_cookie().unwrap();
        let old_csrf = client.csrf().await;
        let response = client
            .post_json_with_token(
                "/api/auth/password/change",
                &json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
                Some(&old_csrf),
            )
            .await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let set_cookie = set_cookie_named(&response, "latch_session").expect("a new session cookie");
        let new_csrf = response
            .headers()
            .get("x-csrf-token")
            .expect("the new CSRF token in X-CSRF-Token")
            .to_str()
            .unwrap()
            .to_owned();
        assert_ne!(new_csrf, old_csrf, "the CSRF token did not change");
        let new_cookie = client.session_cookie().unwrap();
        assert_ne!(new_cookie, old_cookie, "the session id was not re-issued");
        assert!(set_cookie.starts_with(&format!("latch_session={new_cookie}")));
        assert_eq!(auth_status(&client).await, StatusCode::OK, "the current client was signed out");
        assert_eq!(client.get_with_cookie("/api/auth/verify_auth", &old_cookie).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(auth_status(&other).await, StatusCode::UNAUTHORIZED, "another session survived");
        assert_eq!(auth_status(&bob).await, StatusCode::OK);
        // The old CSRF token is dead, the new one works.
        let stale = client.post_json_with_token("/api/auth/email/resend", &json!({}), Some(&old_csrf)).await;
        assert_status_code(stale, StatusCode::FORBIDDEN, "csrf_failed").await;
        assert_eq!(client.csrf().await, new_csrf);
        let fresh = client.post_json_with_token("/api/auth/email/resend", &json!({}), Some(&new_csrf)).await;
        assert_eq!(fresh.status(), StatusCode::ACCEPTED);
        assert_eq!(login_status(&app, "alice", PASSWORD).await, StatusCode::UNAUTHORIZED);
        assert_eq!(login_status(&app, "alice", NEW_PASSWORD).await, StatusCode::OK);
        let notices: Vec<_> = mails_to(&app, "alice@example.com")
            .into_iter()
            .filter(|m| m.subject.to_lowercase().contains("password"))
            .collect();
        assert_eq!(notices.len(), 1, "one notice of the change");
    }
}

db_test! {
    async fn a_remember_me_session_stays_remembered_after_a_password_change(app) {
        app.create_user("alice").await;
        let client = signed_in_as(&app, "alice", PASSWORD, true).await;
        let response = change_password(&client, PASSWORD, NEW_PASSWORD).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let cookie = set_cookie_named(&response, "latch_session").unwrap().to_ascii_lowercase();
        assert!(cookie.contains("max-age=") || cookie.contains("expires="), "{cookie}");
    }
}

db_test! {
    async fn changing_the_password_needs_a_csrf_token_and_a_session(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let no_csrf = client
            .post_json_with_token(
                "/api/auth/password/change",
                &json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
                None,
            )
            .await;
        assert_status_code(no_csrf, StatusCode::FORBIDDEN, "csrf_failed").await;
        let anonymous = change_password(&app.new_client(), PASSWORD, NEW_PASSWORD).await;
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(login_status(&app, "alice", PASSWORD).await, StatusCode::OK);
    }
}

// ---------------------------------------------------------------------------------------------
// Change email

db_test! {
    async fn an_email_change_takes_effect_only_once_the_new_address_is_verified(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let old_before = mails_to(&app, "alice@example.com").len();
        let response = change_email(&client, PASSWORD, "alice.new@example.org").await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        // The new address gets a verification link, the old one a notice without it.
        let token = last_token(&app, "alice.new@example.org", "/verify-email");
        let old_mails = mails_to(&app, "alice@example.com");
        assert_eq!(old_mails.len(), old_before + 1, "no notice to the old address");
        let notice = old_mails.last().unwrap();
        assert!(notice.token_for("/verify-email").is_none() && !notice.body.contains(&token), "the old address got the link");
        // Nothing changes until the link is opened.
        assert_eq!(me(&client).await.1["email"], "alice@example.com");
        assert_eq!(login_status(&app, "alice.new@example.org", PASSWORD).await, StatusCode::UNAUTHORIZED);
        assert_eq!(verify(&app.new_client(), &token).await.status(), StatusCode::NO_CONTENT);
        let (_, user) = me(&client).await;
        assert_eq!(user["email"], "alice.new@example.org");
        assert_eq!(user["email_verified"], true);
        assert_eq!(login_status(&app, "alice.new@example.org", PASSWORD).await, StatusCode::OK);
        assert_eq!(login_status(&app, "alice@example.com", PASSWORD).await, StatusCode::UNAUTHORIZED);
        // The link is single-use.
        assert_status_code(verify(&app.new_client(), &token).await, StatusCode::BAD_REQUEST, "invalid_token").await;
    }
}

db_test! {
    async fn an_email_change_to_a_taken_address_answers_like_a_free_one_and_tells_its_owner(app) {
        let (client, _) = signed_up(&app, "alice").await;
        signed_up(&app, "bob").await;
        // Finding 8: no address oracle. A taken address gets the same 202 as a free one,
        // nothing changes, and its owner (not the asker) gets a notice.
        let before = app.outbox_mails().len();
        assert_eq!(change_email(&client, PASSWORD, "bob@example.com").await.status(), StatusCode::ACCEPTED);
        assert_eq!(change_email(&client, PASSWORD, "BOB@Example.com").await.status(), StatusCode::ACCEPTED);
        let mails = app.outbox_mails();
        let new_mails = &mails[before..];
        assert!(!new_mails.is_empty(), "the owner of the taken address was not told");
        assert!(new_mails.iter().all(|m| m.to.contains("bob@example.com")), "mail went elsewhere");
        assert!(new_mails.iter().all(|m| !m.body.contains("verify-email?token=")), "a verification link for a taken address");
        assert_eq!(me(&client).await.1["email"], "alice@example.com");
    }
}

db_test! {
    async fn an_email_change_with_a_wrong_password_or_a_bad_address_is_refused(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let before = app.outbox_mails().len();
        assert_status_code(change_email(&client, "not my password", "alice.new@example.org").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        let bad = change_email(&client, PASSWORD, "a@b.c\r\nBcc: x@y.z").await;
        assert_status_code(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(app.outbox_mails().len(), before, "a refused change sent mail");
        assert_eq!(me(&client).await.1["email"], "alice@example.com");
        let anonymous = change_email(&app.new_client(), PASSWORD, "x@example.org").await;
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn a_stale_verification_link_of_the_old_address_does_not_undo_an_email_change(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let signup_link = last_token(&app, "alice@example.com", "/verify-email");
        assert_eq!(change_email(&client, PASSWORD, "alice.new@example.org").await.status(), StatusCode::ACCEPTED);
        let change_link = last_token(&app, "alice.new@example.org", "/verify-email");
        assert_eq!(verify(&app.new_client(), &change_link).await.status(), StatusCode::NO_CONTENT);
        assert_eq!(me(&client).await.1["email"], "alice.new@example.org");
        // Whoever reads the old mailbox must not take the account's address back with the
        // sign-up link still lying there (then reset the password through it).
        let _ = verify(&app.new_client(), &signup_link).await;
        assert_eq!(me(&client).await.1["email"], "alice.new@example.org", "the old sign-up link moved the account back to the old address");
        let before = mails_to(&app, "alice@example.com").len();
        forgot(&app.new_client(), "alice@example.com").await;
        assert_eq!(tokens_mailed(&app, "alice@example.com", "/reset-password").len(), 0);
        assert!(mails_to(&app, "alice@example.com").len() == before);
    }
}

db_test! {
    async fn sec_a5_email_change_links_count_against_the_per_address_limit(app) {
        // "Password-reset and verification mails are limited per address": a signed-in user
        // must not mail a stranger's address more than the per-address limit (5 per hour).
        let (client, _) = signed_up(&app, "alice").await;
        for _ in 0..7 {
            let response = change_email(&client, PASSWORD, "victim@example.org").await;
            assert!(
                response.status() == StatusCode::ACCEPTED || response.status() == StatusCode::TOO_MANY_REQUESTS,
                "{}",
                response.status()
            );
        }
        let sent = mails_to(&app, "victim@example.org").len();
        assert!(sent <= 5, "{sent} verification mails to one address within an hour");
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions (S7)

db_test! {
    async fn sec_s7_the_session_list_describes_each_session_and_marks_the_current_one(app) {
        let firefox = client_with_agent(&app, FIREFOX);
        let signup = firefox.signup("alice", "alice@example.com", PASSWORD).await;
        assert_eq!(signup.status(), StatusCode::CREATED);
        let chrome = client_with_agent(&app, CHROME);
        assert_eq!(chrome.login("alice", PASSWORD, true).await.status(), StatusCode::OK);
        let cookies = [firefox.session_cookie().unwrap(), chrome.session_cookie().unwrap()];
        let list = session_list(&firefox).await;
        assert_eq!(list.len(), 2, "{list:?}");
        for session in &list {
            let mut keys: Vec<_> = session.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            assert_eq!(keys, ["created_at", "current", "factors", "id", "ip", "last_seen_at", "two_factor", "user_agent"], "{session}");
            assert_eq!(session["ip"], "127.0.0.1");
            for time in ["created_at", "last_seen_at"] {
                let text = session[time].as_str().unwrap_or_else(|| panic!("{time} is not a string: {session}"));
                assert!(text.len() >= 20 && text.as_bytes()[4] == b'-' && text.contains('T'), "{time} {text:?}");
            }
            let text = session.to_string();
            for cookie in &cookies {
                assert!(!text.contains(cookie.as_str()), "a cookie value in the list");
            }
            let id = session["id"].to_string();
            assert!(!cookies.iter().any(|c| c == id.trim_matches('"')));
        }
        let current: Vec<_> = list.iter().filter(|s| s["current"] == true).collect();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0]["user_agent"], "Firefox on Linux");
        let other: Vec<_> = list.iter().filter(|s| s["current"] == false).collect();
        assert_eq!(other[0]["user_agent"], "Chrome on Windows");
        // From the other client the other one is current.
        let from_chrome = session_list(&chrome).await;
        let chrome_current = from_chrome.iter().find(|s| s["current"] == true).unwrap();
        assert_eq!(chrome_current["id"], other[0]["id"]);
    }
}

db_test! {
    async fn sec_s7_the_session_list_needs_a_signed_in_user(app) {
        let response = app.new_client().get("/api/auth/sessions").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn sec_s7_the_session_list_shows_only_the_users_own_sessions(app) {
        let (alice, _) = signed_up(&app, "alice").await;
        let (_bob, _) = signed_up(&app, "bob").await;
        let anonymous = app.new_client();
        anonymous.csrf().await;
        assert_eq!(session_list(&alice).await.len(), 1);
    }
}

db_test! {
    async fn sec_s7_revoking_another_session_signs_that_client_out(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let other = signed_in_as(&app, "alice", PASSWORD, true).await;
        let other_id = current_session_id(&other).await;
        let response = delete_with_csrf(&client, &format!("/api/auth/sessions/{other_id}")).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(auth_status(&other).await, StatusCode::UNAUTHORIZED);
        assert_eq!(auth_status(&client).await, StatusCode::OK);
        let list = session_list(&client).await;
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["current"], true);
        // Gone means gone: a second revoke is a 404.
        let again = delete_with_csrf(&client, &format!("/api/auth/sessions/{other_id}")).await;
        assert_status_code(again, StatusCode::NOT_FOUND, "not_found").await;
    }
}

db_test! {
    async fn sec_s7_another_users_session_id_or_an_unknown_one_is_404(app) {
        let (alice, _) = signed_up(&app, "alice").await;
        let (bob, _) = signed_up(&app, "bob").await;
        let bob_id = current_session_id(&bob).await;
        let response = delete_with_csrf(&alice, &format!("/api/auth/sessions/{bob_id}")).await;
        assert_status_code(response, StatusCode::NOT_FOUND, "not_found").await;
        assert_eq!(auth_status(&bob).await, StatusCode::OK, "alice ended bob's session");
        for id in ["999999", "0", "-1", "abc", "1.5", "99999999999999999999999"] {
            let response = delete_with_csrf(&alice, &format!("/api/auth/sessions/{id}")).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "id {id}");
        }
        let cookie = bob.session_cookie().unwrap();
        let response = delete_with_csrf(&alice, &format!("/api/auth/sessions/{cookie}")).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(auth_status(&bob).await, StatusCode::OK);
        assert_eq!(auth_status(&alice).await, StatusCode::OK);
    }
}

db_test! {
    async fn sec_s7_revoking_a_session_needs_a_csrf_token_and_a_session(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let other = signed_in_as(&app, "alice", PASSWORD, false).await;
        let other_id = current_session_id(&other).await;
        let path = format!("/api/auth/sessions/{other_id}");
        assert_status_code(delete(&client, &path, None).await, StatusCode::FORBIDDEN, "csrf_failed").await;
        assert_status_code(delete(&client, &path, Some("not-the-token")).await, StatusCode::FORBIDDEN, "csrf_failed").await;
        assert_status_code(delete(&client, "/api/auth/sessions", None).await, StatusCode::FORBIDDEN, "csrf_failed").await;
        // Another session's CSRF token does not do either.
        let others_token = other.csrf().await;
        assert_status_code(delete(&client, &path, Some(&others_token)).await, StatusCode::FORBIDDEN, "csrf_failed").await;
        let anonymous = app.new_client();
        let token = anonymous.csrf().await;
        assert_eq!(delete(&anonymous, &path, Some(&token)).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(auth_status(&other).await, StatusCode::OK);
    }
}

db_test! {
    async fn sec_s7_revoking_all_others_keeps_only_the_current_session(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let second = signed_in_as(&app, "alice", PASSWORD, true).await;
        let third = signed_in_as(&app, "alice@example.com", PASSWORD, false).await;
        let (bob, _) = signed_up(&app, "bob").await;
        assert_eq!(session_list(&client).await.len(), 3);
        let cookie = client.session_cookie().unwrap();
        let response = delete_with_csrf(&client, "/api/auth/sessions").await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(auth_status(&second).await, StatusCode::UNAUTHORIZED);
        assert_eq!(auth_status(&third).await, StatusCode::UNAUTHORIZED);
        assert_eq!(auth_status(&client).await, StatusCode::OK);
        assert_eq!(client.session_cookie().unwrap(), cookie);
        assert_eq!(auth_status(&bob).await, StatusCode::OK);
        let list = session_list(&client).await;
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["current"], true);
    }
}

db_test! {
    async fn sec_s7_timed_out_sessions_are_not_listed(app) {
        app.create_user("alice").await;
        let remembered = signed_in_as(&app, "alice", PASSWORD, true).await;
        let short = signed_in_as(&app, "alice", PASSWORD, false).await;
        // The sign-up session, the remembered one and the short one.
        assert_eq!(session_list(&remembered).await.len(), 3);
        app.clock.advance(31 * 60);
        assert_eq!(auth_status(&short).await, StatusCode::UNAUTHORIZED);
        let list = session_list(&remembered).await;
        assert_eq!(list.len(), 1, "a timed-out session is still listed as signed in: {list:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Throttling (A5, A7)

backend_test! {
    async fn sec_a5_mail_requests_past_the_per_ip_limit_get_429(backend) {
        let app = TestApp::spawn_with(backend, |c| c.throttle_ip_mail_requests_per_hour = 3).await;
        let (alice, _) = signed_up(&app, "alice").await;
        let client = app.new_client();
        for email in ["alice@example.com", "nobody1@example.com", "nobody2@example.com"] {
            assert_eq!(forgot(&client, email).await.status(), StatusCode::ACCEPTED, "{email}");
        }
        let refused = forgot(&client, "alice@example.com").await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait = retry_after(&refused);
        assert!((1..=HOUR).contains(&wait), "Retry-After {wait}");
        assert_status_code(refused, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
        // Another client from the same address is refused too, and so is a verification resend.
        assert_eq!(forgot(&app.new_client(), "nobody3@example.com").await.status(), StatusCode::TOO_MANY_REQUESTS);
        let resend = alice.post_json("/api/auth/email/resend", &json!({})).await;
        assert_eq!(resend.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(resend.headers().contains_key("retry-after"));
        assert_eq!(tokens_mailed(&app, "alice@example.com", "/reset-password").len(), 1);
        assert_eq!(tokens_mailed(&app, "alice@example.com", "/verify-email").len(), 1);
        // After the hour it works again.
        app.clock.advance(HOUR + 1);
        assert_eq!(forgot(&client, "alice@example.com").await.status(), StatusCode::ACCEPTED);
        assert_eq!(tokens_mailed(&app, "alice@example.com", "/reset-password").len(), 2);
    }
}

db_test! {
    async fn sec_a5_the_per_address_limit_stops_mails_silently(app) {
        app.create_user("alice").await;
        app.create_user("bob").await;
        let client = app.new_client();
        let mut bodies = Vec::new();
        for _ in 0..7 {
            let response = forgot(&client, "alice@example.com").await;
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            bodies.push(response.bytes().await.unwrap());
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]), "the answer changed at the limit");
        assert_eq!(tokens_mailed(&app, "alice@example.com", "/reset-password").len(), 5, "per-address limit is 5 per hour");
        // The newest mailed link still works (a silent refusal does not kill it).
        let newest = last_token(&app, "alice@example.com", "/reset-password");
        // Another address is not affected.
        assert_eq!(forgot(&client, "bob@example.com").await.status(), StatusCode::ACCEPTED);
        assert_eq!(tokens_mailed(&app, "bob@example.com", "/reset-password").len(), 1);
        // Neither is the case of the address a way around it.
        assert_eq!(forgot(&client, "ALICE@example.com").await.status(), StatusCode::ACCEPTED);
        assert_eq!(tokens_mailed(&app, "alice@example.com", "/reset-password").len(), 5);
        assert_eq!(reset(&app.new_client(), &newest, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
        app.clock.advance(HOUR + 1);
        assert_eq!(forgot(&client, "alice@example.com").await.status(), StatusCode::ACCEPTED);
        assert_eq!(tokens_mailed(&app, "alice@example.com", "/reset-password").len(), 6);
    }
}

backend_test! {
    async fn sec_a5_sign_ups_past_the_per_ip_limit_get_429(backend) {
        let app = TestApp::spawn_with(backend, |c| c.throttle_ip_signups_per_hour = 3).await;
        for i in 0..3 {
            signed_up(&app, &format!("user{i}")).await;
        }
        let client = app.new_client();
        let response = client.signup("user3", "user3@example.com", PASSWORD).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait = retry_after(&response);
        assert!((1..=HOUR).contains(&wait), "Retry-After {wait}");
        assert_status_code(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
        assert_eq!(auth_status(&client).await, StatusCode::UNAUTHORIZED);
        assert_eq!(login_status(&app, "user3", PASSWORD).await, StatusCode::UNAUTHORIZED, "the refused account exists");
        app.clock.advance(HOUR + 1);
        signed_up(&app, "user3").await;
    }
}

backend_test! {
    async fn sec_a7_a_spoofed_x_forwarded_for_does_not_escape_the_per_ip_limit(backend) {
        let app = TestApp::spawn_with(backend, |c| c.throttle_ip_failures = 3).await;
        app.create_user("alice").await;
        let client = app.new_client();
        for i in 0..3 {
            let response = login_forwarded(&client, &format!("198.51.100.{i}"), &format!("ghost{i}"), "wrong password!").await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let response = login_forwarded(&client, "203.0.113.77", "alice", PASSWORD).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "a forged X-Forwarded-For reset the per-IP limit");
        assert!(response.headers().contains_key("retry-after"));
        // The log records the real peer, not the forged header.
        let rows = audit_rows(&app.db).await;
        assert!(rows.iter().filter(|r| r.event == "sign_in").all(|r| r.ip.as_deref() == Some("127.0.0.1")), "{rows:?}");
    }
}

backend_test! {
    async fn sec_a7_behind_a_trusted_proxy_each_forwarded_client_is_counted_apart(backend) {
        let app = TestApp::spawn_with(backend, |c| {
            c.throttle_ip_failures = 3;
            c.trusted_proxies = vec!["127.0.0.1".into()];
        })
        .await;
        app.create_user("alice").await;
        let client = app.new_client();
        for i in 0..3 {
            let response = login_forwarded(&client, "198.51.100.1", &format!("ghost{i}"), "wrong password!").await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let blocked = login_forwarded(&client, "198.51.100.1", "alice", PASSWORD).await;
        assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);
        // The blocked client cannot choose another address by prepending one.
        let prepended = login_forwarded(&client, "192.0.2.9, 198.51.100.1", "alice", PASSWORD).await;
        assert_eq!(prepended.status(), StatusCode::TOO_MANY_REQUESTS);
        let other = app.new_client();
        let response = login_forwarded(&other, "198.51.100.2", "alice", PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK, "another forwarded client was throttled");
        let list = session_list(&other).await;
        assert_eq!(list[0]["ip"], "198.51.100.2");
        let rows = audit_rows(&app.db).await;
        assert!(rows.iter().any(|r| r.event == "sign_in" && r.outcome != "success" && r.ip.as_deref() == Some("198.51.100.1")), "{rows:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Audit (O1)

db_test! {
    async fn sec_o1_lifecycle_events_are_audited_without_secrets(app) {
        let mut secrets: Vec<String> = vec![PASSWORD.into(), NEW_PASSWORD.into(), "wrong password!".into()];
        let a = client_with_agent(&app, FIREFOX);
        let signup = a.signup("alice", "alice@example.com", PASSWORD).await;
        assert_eq!(signup.status(), StatusCode::CREATED);
        let alice_id = signup.json::<Value>().await.unwrap()["user"]["id"].as_i64().unwrap();
        secrets.push(a.session_cookie().unwrap());
        secrets.push(a.csrf().await);
        // Sign-in failure and success, sign-out.
        let b = client_with_agent(&app, CHROME);
        assert_eq!(b.login("alice", "wrong password!", false).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(b.login("alice", PASSWORD, false).await.status(), StatusCode::OK);
        secrets.push(b.session_cookie().unwrap());
        assert_eq!(b.logout().await.status(), StatusCode::NO_CONTENT);
        // Verification.
        let verification = last_token(&app, "alice@example.com", "/verify-email");
        secrets.push(verification.clone());
        assert_eq!(verify(&a, &verification).await.status(), StatusCode::NO_CONTENT);
        // Session revoke.
        let c = signed_in_as(&app, "alice", PASSWORD, true).await;
        secrets.push(c.session_cookie().unwrap());
        let c_id = current_session_id(&c).await;
        assert_eq!(delete_with_csrf(&a, &format!("/api/auth/sessions/{c_id}")).await.status(), StatusCode::NO_CONTENT);
        // Password change.
        assert_eq!(change_password(&a, PASSWORD, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
        secrets.push(a.session_cookie().unwrap());
        secrets.push(a.csrf().await);
        // Reset.
        let token = reset_token(&app, "alice@example.com").await;
        secrets.push(token.clone());
        let newest = "the newest passphrase 99";
        secrets.push(newest.into());
        assert_eq!(reset(&a, &token, newest).await.status(), StatusCode::NO_CONTENT);

        let rows = audit_rows(&app.db).await;
        let alice_rows: Vec<_> = rows.iter().filter(|r| r.user_id == Some(alice_id)).collect();
        for (event, outcome) in [
            ("sign_up", "success"),
            ("sign_in", "success"),
            ("sign_out", "success"),
            ("email_verified", "success"),
            ("session_revoke", "success"),
            ("password_change", "success"),
            ("password_reset", "success"),
        ] {
            let row = alice_rows
                .iter()
                .find(|r| r.event == event && r.outcome == outcome)
                .unwrap_or_else(|| panic!("no {event}/{outcome} row for alice in {rows:#?}"));
            assert_eq!(row.ip.as_deref(), Some("127.0.0.1"), "{row:?}");
            assert!(row.at > 1_600_000_000, "{row:?}");
        }
        let signup_row = alice_rows.iter().find(|r| r.event == "sign_up").unwrap();
        assert_eq!(signup_row.user_agent.as_deref(), Some(FIREFOX));
        // The failed sign-in names whom it was against.
        let failure = rows
            .iter()
            .find(|r| r.event == "sign_in" && r.outcome != "success")
            .unwrap_or_else(|| panic!("no failed sign-in row in {rows:#?}"));
        assert_eq!(failure.ip.as_deref(), Some("127.0.0.1"));
        assert!(
            failure.user_id == Some(alice_id) || failure.texts().iter().any(|t| t.contains("alice")),
            "the failed sign-in row does not say which account: {failure:?}"
        );
        // No secret anywhere.
        for row in &rows {
            for text in row.texts() {
                for secret in &secrets {
                    assert!(!text.contains(secret.as_str()), "audit row {row:?} contains a secret");
                }
            }
        }
    }
}

db_test! {
    async fn sec_o1_the_account_page_shows_the_users_recent_events(app) {
        let (client, _) = signed_up(&app, "alice").await;
        assert_eq!(login_status(&app, "alice", "wrong password!").await, StatusCode::UNAUTHORIZED);
        let other = signed_in_as(&app, "alice", PASSWORD, false).await;
        let other_id = current_session_id(&other).await;
        assert_eq!(delete_with_csrf(&client, &format!("/api/auth/sessions/{other_id}")).await.status(), StatusCode::NO_CONTENT);
        signed_up(&app, "bob").await;
        let response = client.get("/account").await;
        assert_eq!(response.status(), StatusCode::OK);
        let html = response.text().await.unwrap();
        for event in ["sign_up", "sign_in", "session_revoke"] {
            assert!(html.contains(event), "the account page does not show {event}");
        }
        assert!(html.contains("127.0.0.1"));
        assert!(!html.contains("bob"), "another user's events are shown");
    }
}
