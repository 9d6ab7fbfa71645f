//! T4 and C3: personal API tokens for `Authorization: Bearer`.

use crate::db_test;
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn create_token(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let response = app.post_json("/api/auth/tokens", &body).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn bearer_get(app: &TestApp, path: &str, secret: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .get(app.url(path))
        .bearer_auth(secret)
}

db_test! {
    async fn sec_t4_a_token_is_shown_once_and_authenticates_bearer_requests(app) {
        app.signup("alice", "alice@example.com", PASSWORD).await;
        let (status, body) = create_token(&app, json!({"name": "ci", "expires_in_days": 30})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let secret = body["secret"].as_str().unwrap().to_owned();
        assert_eq!(secret.len(), 43);
        let token = &body["token"];
        for field in ["id", "name", "created_at", "last_used_at", "expires_at"] {
            assert!(token.get(field).is_some(), "{field} missing in {token}");
        }
        assert_eq!(token.as_object().unwrap().len(), 5);
        let me = bearer_get(&app, "/api/auth/verify_auth", &secret).send().await.unwrap();
        assert_eq!(me.status(), StatusCode::OK);
        assert_eq!(me.json::<Value>().await.unwrap()["user"]["username"], "alice");
        let list: Value = app.get("/api/auth/tokens").await.json().await.unwrap();
        assert_eq!(list["tokens"].as_array().unwrap().len(), 1);
        assert!(!list.to_string().contains(&secret), "the list shows the secret");
        let latch::store::Db::Sqlite(pool) = &app.db else { return };
        let stored: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT token_hash FROM api_tokens").fetch_all(pool).await.unwrap();
        assert!(stored.iter().all(|(h,)| h != secret.as_bytes()));
    }
}

/// The token's `last_used_at` in its owner's list once it is no longer `old` (it is written
/// behind the request).
async fn wait_for_last_use(app: &TestApp, old: &Value) -> Value {
    for _ in 0..100 {
        let list: Value = app.get("/api/auth/tokens").await.json().await.unwrap();
        let used = list["tokens"][0]["last_used_at"].clone();
        if &used != old {
            return used;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("last_used_at stayed {old}");
}

db_test! {
    async fn a_token_use_is_recorded_to_the_minute_behind_the_request(app) {
        app.signup("alice", "alice@example.com", PASSWORD).await;
        let (_, body) = create_token(&app, json!({"name": "ci"})).await;
        let secret = body["secret"].as_str().unwrap().to_owned();
        assert!(body["token"]["last_used_at"].is_null());
        let verify = || async { bearer_get(&app, "/api/auth/verify_auth", &secret).send().await.unwrap().status() };
        assert_eq!(verify().await, StatusCode::OK);
        let first = wait_for_last_use(&app, &Value::Null).await;
        assert!(first.is_string(), "{first}");
        app.clock.advance(30);
        assert_eq!(verify().await, StatusCode::OK);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let list: Value = app.get("/api/auth/tokens").await.json().await.unwrap();
        assert_eq!(list["tokens"][0]["last_used_at"], first, "recorded again within the minute");
        app.clock.advance(60);
        assert_eq!(verify().await, StatusCode::OK);
        wait_for_last_use(&app, &first).await;
    }
}

db_test! {
    async fn sec_c3_bearer_requests_need_no_csrf_token_and_ignore_the_cookie(app) {
        app.signup("alice", "alice@example.com", PASSWORD).await;
        let (_, body) = create_token(&app, json!({"name": "script"})).await;
        let secret = body["secret"].as_str().unwrap().to_owned();
        let created = reqwest::Client::new()
            .post(app.url("/api/auth/tokens"))
            .bearer_auth(&secret)
            .json(&json!({"name": "made by a token"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        // A cookie request without the CSRF token is still refused.
        let cookie_only = app.post_json_with_token("/api/auth/tokens", &json!({"name": "x"}), None).await;
        assert_eq!(cookie_only.status(), StatusCode::FORBIDDEN);
        // A wrong bearer is not rescued by a valid session cookie.
        let cookie = app.session_cookie().unwrap();
        let mixed = reqwest::Client::new()
            .get(app.url("/api/auth/verify_auth"))
            .bearer_auth("x".repeat(43))
            .header("Cookie", format!("latch_session={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(mixed.status(), StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn sec_t4_tokens_are_revocable_expire_and_die_with_the_account(app) {
        let user = app.create_user("bob").await;
        app.login("bob", PASSWORD, false).await;
        let (_, revocable) = create_token(&app, json!({"name": "one"})).await;
        let (_, expiring) = create_token(&app, json!({"name": "two", "expires_in_days": "1"})).await;
        let (_, lasting) = create_token(&app, json!({"name": "three"})).await;
        let id = revocable["token"]["id"].as_i64().unwrap();
        let revoke = app
            .http
            .delete(app.url(&format!("/api/auth/tokens/{id}")))
            .header("X-CSRF-Token", app.csrf().await)
            .send()
            .await
            .unwrap();
        assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
        let secret = |v: &Value| v["secret"].as_str().unwrap().to_owned();
        let url = app.url("/api/auth/verify_auth");
        let status = |s: String| {
            let url = url.clone();
            async move { reqwest::Client::new().get(url).bearer_auth(s).send().await.unwrap().status() }
        };
        assert_eq!(status(secret(&revocable)).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status(secret(&expiring)).await, StatusCode::OK);
        app.clock.advance(86_400 + 1);
        assert_eq!(status(secret(&expiring)).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status(secret(&lasting)).await, StatusCode::OK);
        let sql = "DELETE FROM users WHERE id = $1";
        match &app.db {
            latch::store::Db::Sqlite(pool) => { sqlx::query(sql).bind(user["id"].as_i64().unwrap()).execute(pool).await.unwrap(); }
            latch::store::Db::Postgres(pool) => { sqlx::query(sql).bind(user["id"].as_i64().unwrap()).execute(pool).await.unwrap(); }
        }
        assert_eq!(status(secret(&lasting)).await, StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn sec_z2_another_users_token_is_404_and_bad_input_is_422(app) {
        let other = app.new_client();
        other.signup("carol", "carol@example.com", PASSWORD).await;
        let created = other.post_json("/api/auth/tokens", &json!({"name": "carol's"})).await;
        let id = created.json::<Value>().await.unwrap()["token"]["id"].as_i64().unwrap();
        app.signup("alice", "alice@example.com", PASSWORD).await;
        let steal = app
            .http
            .delete(app.url(&format!("/api/auth/tokens/{id}")))
            .header("X-CSRF-Token", app.csrf().await)
            .send()
            .await
            .unwrap();
        assert_eq!(steal.status(), StatusCode::NOT_FOUND);
        let (status, body) = create_token(&app, json!({"name": "", "expires_in_days": 0})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["error"]["fields"]["name"].is_array() && body["error"]["fields"]["expires_in_days"].is_array(), "{body}");
        let anonymous = reqwest::Client::new().get(app.url("/api/auth/tokens")).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    }
}
