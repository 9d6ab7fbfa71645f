//! What an attacker's probe found (docs/security.md, "Revocation", "Throttling", "Input
//! bounds"): sign-ins racing a revocation, API tokens outliving a reset, parallel attempts
//! walking through the throttle, unthrottled current-password checks, unbounded
//! identifiers, and the CLI's password path. Each test fails without its fix.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::authz::{admin_client, call, latch, ok};
use crate::db_test;
use crate::helpers::*;
use crate::lifecycle::*;

const NEW_PASSWORD: &str = "another long passphrase 7";
const TRIALS: usize = 5;

/// Signs in as `login` from fresh clients, two at a time, until `stop`; returns the session
/// cookie of every sign-in that answered 200.
async fn sign_in_loop(
    base: String,
    login: String,
    stop: Arc<AtomicBool>,
    successes: Arc<AtomicUsize>,
) -> Vec<String> {
    let mut cookies = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let client = TestClient::new(&base);
        let response = client.login(&login, PASSWORD, true).await;
        if response.status() == StatusCode::OK {
            cookies.extend(client.session_cookie());
            successes.fetch_add(1, Ordering::SeqCst);
        }
    }
    cookies
}

/// Runs `revoke` while two loops sign in with the old password, then checks that no cookie
/// obtained works once `revoke` has answered (after `after`, e.g. an unlock).
async fn assert_no_session_outlives<F, G>(app: &TestApp, login: &str, revoke: F, after: G)
where
    F: std::future::Future<Output = ()>,
    G: std::future::Future<Output = ()>,
{
    let stop = Arc::new(AtomicBool::new(false));
    let successes = Arc::new(AtomicUsize::new(0));
    let loops: Vec<_> = (0..2)
        .map(|_| {
            let (base, login) = (app.addr.clone(), login.to_owned());
            tokio::spawn(sign_in_loop(base, login, stop.clone(), successes.clone()))
        })
        .collect();
    // Let the loops get going (on a loaded machine too), so sign-ins are in flight when the
    // revocation commits.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while successes.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    revoke.await;
    stop.store(true, Ordering::SeqCst);
    let mut cookies = Vec::new();
    for handle in loops {
        cookies.extend(handle.await.unwrap());
    }
    assert!(
        !cookies.is_empty(),
        "no sign-in succeeded before the revocation"
    );
    after.await;
    let checker = app.new_client();
    for cookie in cookies {
        let response = checker
            .get_with_cookie("/api/auth/verify_auth", &cookie)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "a sign-in checked against the old credential kept a working session"
        );
    }
}

db_test! {
    async fn sec_s9_a_sign_in_racing_a_password_reset_never_yields_a_working_session(app) {
        for trial in 0..TRIALS {
            let name = format!("reset{trial}");
            signed_up(&app, &name).await;
            let token = reset_token(&app, &email_of(&name)).await;
            let client = app.new_client();
            let revoke = async {
                assert_eq!(reset(&client, &token, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
            };
            assert_no_session_outlives(&app, &name, revoke, async {}).await;
        }
    }
}

db_test! {
    async fn sec_s9_a_sign_in_racing_a_password_change_never_yields_a_working_session(app) {
        for trial in 0..TRIALS {
            let name = format!("change{trial}");
            let (owner, _) = signed_up(&app, &name).await;
            let revoke = async {
                assert_eq!(change_password(&owner, PASSWORD, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
            };
            assert_no_session_outlives(&app, &name, revoke, async {}).await;
            // The changer's own re-issued session works.
            assert_eq!(auth_status(&owner).await, StatusCode::OK);
        }
    }
}

db_test! {
    async fn sec_s9_a_sign_in_racing_a_lock_never_yields_a_session_that_works_after_unlock(app) {
        let (admin, _) = admin_client(&app, "root").await;
        for trial in 0..TRIALS {
            let name = format!("lock{trial}");
            let (_, user) = signed_up(&app, &name).await;
            let path = format!("/api/admin/users/{}", user["id"]);
            let revoke = async {
                let r = call(&admin, Method::PATCH, &path, Some(&json!({"locked": true}))).await;
                assert_eq!(r.status(), StatusCode::OK);
            };
            let unlock = async {
                let r = call(&admin, Method::PATCH, &path, Some(&json!({"locked": false}))).await;
                assert_eq!(r.status(), StatusCode::OK);
            };
            assert_no_session_outlives(&app, &name, revoke, unlock).await;
        }
    }
}

// ---- API tokens die with every revocation (T4) ----

async fn token_for(client: &TestClient) -> String {
    let response = client
        .post_json("/api/auth/tokens", &json!({"name": "script"}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["secret"].as_str().unwrap().to_owned()
}

async fn bearer_status(app: &TestApp, secret: &str, path: &str) -> StatusCode {
    reqwest::Client::new()
        .get(app.url(path))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap()
        .status()
}

async fn assert_token_dead(app: &TestApp, secret: &str, after: &str) {
    for path in ["/api/auth/verify_auth", "/auth/check"] {
        assert_eq!(
            bearer_status(app, secret, path).await,
            StatusCode::UNAUTHORIZED,
            "token works on {path} after {after}"
        );
    }
    let minted = reqwest::Client::new()
        .post(app.url("/api/auth/tokens"))
        .bearer_auth(secret)
        .json(&json!({"name": "minted"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        minted.status(),
        StatusCode::UNAUTHORIZED,
        "token minted a token after {after}"
    );
}

db_test! {
    async fn sec_t4_a_password_reset_ends_every_api_token(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let secret = token_for(&client).await;
        assert_eq!(bearer_status(&app, &secret, "/auth/check").await, StatusCode::OK);
        let token = reset_token(&app, "alice@example.com").await;
        assert_eq!(reset(&app.new_client(), &token, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
        assert_token_dead(&app, &secret, "a reset").await;
    }
}

db_test! {
    async fn sec_t4_a_password_change_ends_api_tokens_unless_asked_to_keep_them(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let secret = token_for(&client).await;
        assert_eq!(change_password(&client, PASSWORD, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
        assert_token_dead(&app, &secret, "a change").await;
        let kept = token_for(&client).await;
        let response = client
            .post_json(
                "/api/auth/password/change",
                &json!({"current_password": NEW_PASSWORD, "new_password": PASSWORD, "keep_api_tokens": true}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(bearer_status(&app, &kept, "/api/auth/verify_auth").await, StatusCode::OK, "kept token died");
        assert_eq!(auth_status(&client).await, StatusCode::OK);
    }
}

db_test! {
    async fn sec_t4_an_admin_lock_and_end_all_sessions_end_api_tokens_for_good(app) {
        let (admin, _) = admin_client(&app, "root").await;
        let (client, user) = signed_up(&app, "alice").await;
        let path = format!("/api/admin/users/{}", user["id"]);
        let secret = token_for(&client).await;
        let r = call(&admin, Method::PATCH, &path, Some(&json!({"locked": true}))).await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = call(&admin, Method::PATCH, &path, Some(&json!({"locked": false}))).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_token_dead(&app, &secret, "a lock and unlock").await;

        let client = signed_in_as(&app, "alice", PASSWORD, false).await;
        let secret = token_for(&client).await;
        let r = call(&admin, Method::DELETE, &format!("{path}/sessions"), None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_token_dead(&app, &secret, "end all sessions").await;
        assert_eq!(auth_status(&client).await, StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn sec_t4_latch_user_passwd_takes_the_password_path(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let secret = token_for(&client).await;
        let link = reset_token(&app, "alice@example.com").await;
        let mails_before = mails_to(&app, "alice@example.com").len();
        ok(&latch(&app, &["user", "passwd", "alice", "--password-stdin"], Some(&format!("{NEW_PASSWORD}\n"))).await);
        // Finding 3: the reset link mailed before no longer wins over the administrator.
        assert_status_code(reset(&app.new_client(), &link, "yet another passphrase 9").await, StatusCode::BAD_REQUEST, "invalid_token").await;
        assert_eq!(login_status(&app, "alice", NEW_PASSWORD).await, StatusCode::OK);
        assert_token_dead(&app, &secret, "latch user passwd").await;
        assert_eq!(auth_status(&client).await, StatusCode::UNAUTHORIZED);
        // Audited, and the owner is told.
        let rows = audit_rows(&app.db).await;
        assert!(
            rows.iter().any(|r| r.event == "password_change" && r.detail.as_deref().unwrap_or("").contains("by=cli")),
            "no audit event for the CLI password set: {rows:?}"
        );
        assert!(mails_to(&app, "alice@example.com").len() > mails_before, "no notice mail");
    }
}

db_test! {
    async fn users_see_create_and_revoke_their_tokens_on_a_page(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let token = client.page_csrf("/account/tokens").await;
        let created = client
            .post_form("/account/tokens", &[("csrf_token", &token), ("name", "backup <script>")])
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let html = created.text().await.unwrap();
        let secret = html
            .split("<code id=\"new-token\">")
            .nth(1)
            .and_then(|rest| rest.split("</code>").next())
            .unwrap()
            .to_owned();
        assert!(!html.contains("<script>"), "the name is not escaped");
        assert_eq!(bearer_status(&app, &secret, "/api/auth/verify_auth").await, StatusCode::OK);
        let page = client.get("/account/tokens").await.text().await.unwrap();
        assert!(page.contains("backup &lt;script&gt;"));
        assert!(!page.contains(&secret), "the list shows the secret again");
        let list: Value = client.get("/api/auth/tokens").await.json().await.unwrap();
        let id = list["tokens"][0]["id"].as_i64().unwrap();
        // Without the CSRF token nothing is revoked.
        let forged = client.post_form(&format!("/account/tokens/{id}/revoke"), &[]).await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        let token = client.page_csrf("/account/tokens").await;
        let revoked = client.post_form(&format!("/account/tokens/{id}/revoke"), &[("csrf_token", &token)]).await;
        assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
        assert_eq!(bearer_status(&app, &secret, "/api/auth/verify_auth").await, StatusCode::UNAUTHORIZED);
        // Bad input is a form error, not a token.
        let token = client.page_csrf("/account/tokens").await;
        let bad = client
            .post_form("/account/tokens", &[("csrf_token", &token), ("name", ""), ("expires_in_days", "0")])
            .await;
        assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = bad.text().await.unwrap();
        assert!(html.contains("Give the token a name.") && html.contains("between 1 and"), "{html}");
        // Another user's token id is "not found".
        let (other, _) = signed_up(&app, "bob").await;
        let theirs = token_for(&other).await;
        let list: Value = other.get("/api/auth/tokens").await.json().await.unwrap();
        let their_id = list["tokens"][0]["id"].as_i64().unwrap();
        let token = client.page_csrf("/account/tokens").await;
        let idor = client.post_form(&format!("/account/tokens/{their_id}/revoke"), &[("csrf_token", &token)]).await;
        assert_eq!(idor.status(), StatusCode::NOT_FOUND);
        assert_eq!(bearer_status(&app, &theirs, "/api/auth/verify_auth").await, StatusCode::OK);
    }
}

// ---- Throttling decided atomically (A8) ----

/// Fires `wrong` sign-ins with a wrong password and `right` with the right one, all at once.
async fn parallel_sign_ins(
    app: &TestApp,
    login: &str,
    wrong: usize,
    right: usize,
) -> Vec<StatusCode> {
    let mut clients = Vec::new();
    for i in 0..wrong + right {
        let client = app.new_client();
        let token = client.csrf().await;
        let password = if i < wrong {
            "wrong password!"
        } else {
            PASSWORD
        };
        clients.push((client, token, password));
    }
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|(client, token, password)| {
            let body = json!({"login": login, "password": password});
            tokio::spawn(async move {
                client
                    .post_json_with_token("/api/auth/login", &body, Some(&token))
                    .await
                    .status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

fn count(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

db_test! {
    async fn sec_a8_parallel_wrong_passwords_get_at_most_the_limit_of_evaluations(app) {
        app.create_user("alice").await;
        let hashes = app.state.hasher.computations();
        let statuses = parallel_sign_ins(&app, "alice", 50, 0).await;
        assert_eq!(count(&statuses, StatusCode::UNAUTHORIZED), 5, "{statuses:?}");
        assert_eq!(count(&statuses, StatusCode::TOO_MANY_REQUESTS), 45, "{statuses:?}");
        // At most the limit was evaluated: a refused attempt costs no Argon2 work.
        let evaluated = app.state.hasher.computations() - hashes;
        assert_eq!(evaluated, 5, "{evaluated} passwords were checked");
        assert_eq!(app.login("alice", PASSWORD, false).await.status(), StatusCode::TOO_MANY_REQUESTS);
        // An identifier with no account behaves the same.
        let statuses = parallel_sign_ins(&app, "ghost", 30, 0).await;
        assert_eq!(count(&statuses, StatusCode::UNAUTHORIZED), 5, "{statuses:?}");
    }
}

db_test! {
    async fn sec_a8_the_right_password_among_parallel_guesses_is_evaluated_only_within_the_limit(app) {
        app.create_user("alice").await;
        let statuses = parallel_sign_ins(&app, "alice", 29, 1).await;
        let evaluated = count(&statuses, StatusCode::UNAUTHORIZED) + count(&statuses, StatusCode::OK);
        // A success clears the count, so the limit may start again after it: never more than
        // twice the limit plus the success, and never all 30.
        assert!(evaluated <= 11, "{evaluated} evaluated: {statuses:?}");
        assert!(count(&statuses, StatusCode::TOO_MANY_REQUESTS) >= 19, "{statuses:?}");
    }
}

db_test! {
    async fn sec_a8_current_password_checks_count_like_sign_ins(app) {
        let (client, _) = signed_up(&app, "alice").await;
        for _ in 0..3 {
            assert_status_code(change_password(&client, "not my password", NEW_PASSWORD).await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        }
        for _ in 0..2 {
            assert_status_code(change_email(&client, "not my password", "a2@example.org").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        }
        // The sixth guess is refused, even with the right password, on every door.
        let refused = change_password(&client, PASSWORD, NEW_PASSWORD).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.headers().contains_key("retry-after"));
        assert_eq!(change_email(&client, PASSWORD, "a2@example.org").await.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(login_status(&app, "alice", PASSWORD).await, StatusCode::TOO_MANY_REQUESTS);
        // The page form is throttled too.
        let token = client.page_csrf("/account").await;
        let form = client
            .post_form("/account/password", &[("csrf_token", &token), ("current_password", PASSWORD), ("new_password", NEW_PASSWORD)])
            .await;
        assert_eq!(form.status(), StatusCode::TOO_MANY_REQUESTS);
        app.clock.advance(15 * 60 + 1);
        assert_eq!(change_password(&client, PASSWORD, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
    }
}

db_test! {
    async fn sec_a8_parallel_current_password_guesses_get_at_most_the_limit(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let client = Arc::new(client);
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let client = client.clone();
            let token = client.csrf().await;
            tasks.push(tokio::spawn(async move {
                client
                    .post_json_with_token(
                        "/api/auth/password/change",
                        &json!({"current_password": "wrong guess!!", "new_password": NEW_PASSWORD}),
                        Some(&token),
                    )
                    .await
                    .status()
            }));
        }
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.unwrap());
        }
        assert_eq!(count(&statuses, StatusCode::UNAUTHORIZED), 5, "{statuses:?}");
        assert_eq!(count(&statuses, StatusCode::TOO_MANY_REQUESTS), 15, "{statuses:?}");
    }
}

// ---- Bounded identifiers (H7) ----

async fn throttle_key_lengths(db: &latch::store::Db) -> (i64, i64) {
    let sql = "SELECT COUNT(*), COALESCE(MAX(LENGTH(key)), 0) FROM throttle_events";
    match db {
        latch::store::Db::Sqlite(pool) => sqlx::query_as(sql).fetch_one(pool).await.unwrap(),
        latch::store::Db::Postgres(pool) => {
            let (n, max): (i64, i32) = sqlx::query_as(sql).fetch_one(pool).await.unwrap();
            (n, i64::from(max))
        }
    }
}

db_test! {
    async fn sec_h7_long_identifiers_are_refused_before_any_work_and_keys_stay_small(app) {
        for len in [255, 3_000, 900_000] {
            let login = "a".repeat(len);
            let response = app.login(&login, "some password", false).await;
            let (status, code) = error_code(response).await;
            assert_eq!((status, code.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"), "{len} characters");
        }
        assert_eq!(throttle_key_lengths(&app.db).await.0, 0, "a refused identifier was counted");
        // The longest allowed identifier is counted under a fixed-size key.
        let longest = "b".repeat(254);
        assert_eq!(app.login(&longest, "some password", false).await.status(), StatusCode::UNAUTHORIZED);
        let (rows, max_len) = throttle_key_lengths(&app.db).await;
        assert!(rows > 0);
        assert!(max_len <= 64, "a throttle key of {max_len} bytes");
        // A password longer than any password can be is refused the same way.
        let huge = "p".repeat(900_000);
        let response = app.login("alice", &huge, false).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}

// ---- One service layer: the CLI and the admin area write the same events ----

/// The audit rows of user `id`, as (event, outcome, detail without the `by=` part).
async fn events_of(app: &TestApp, id: i64, from: usize) -> Vec<(String, String, String)> {
    audit_rows(&app.db)
        .await
        .into_iter()
        .skip(from)
        .filter(|r| r.user_id == Some(id))
        .map(|r| {
            let detail = r.detail.unwrap_or_default();
            let detail = detail
                .split(" by=")
                .next()
                .unwrap_or_default()
                .trim_start_matches("by=")
                .to_owned();
            let detail = if detail.starts_with("cli") || detail.contains("(id ") {
                String::new()
            } else {
                detail
            };
            (r.event, r.outcome, detail)
        })
        .collect()
}

db_test! {
    async fn a_role_change_and_a_lock_write_the_same_events_from_the_cli_and_the_api(app) {
        let (admin, _) = admin_client(&app, "root").await;
        ok(&latch(&app, &["role", "add", "editor"], None).await);
        let (_, by_api) = signed_up(&app, "viaapi").await;
        let (_, by_cli) = signed_up(&app, "viacli").await;
        let api_id = by_api["id"].as_i64().unwrap();
        let cli_id = by_cli["id"].as_i64().unwrap();
        let start = audit_rows(&app.db).await.len();
        let path = format!("/api/admin/users/{api_id}");
        assert_eq!(call(&admin, Method::PATCH, &path, Some(&json!({"role": "editor"}))).await.status(), StatusCode::OK);
        assert_eq!(call(&admin, Method::PATCH, &path, Some(&json!({"locked": true}))).await.status(), StatusCode::OK);
        ok(&latch(&app, &["user", "set-role", "viacli", "editor"], None).await);
        ok(&latch(&app, &["user", "lock", "viacli"], None).await);
        let api_events = events_of(&app, api_id, start).await;
        let cli_events = events_of(&app, cli_id, start).await;
        assert!(!api_events.is_empty());
        assert_eq!(api_events, cli_events, "the two doors wrote different events");
        let rows = audit_rows(&app.db).await;
        assert!(rows.iter().any(|r| r.user_id == Some(cli_id) && r.detail.as_deref().unwrap_or("").contains("by=cli")));
    }
}
