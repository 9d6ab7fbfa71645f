//! CSRF protection of the JSON API and the forms (docs/security.md row C1).

use crate::db_test;
use crate::helpers::*;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

/// A token of the right shape that no session has.
const FORGED: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Asserts an API 403 `csrf_failed`.
async fn assert_csrf_failed(response: Response, what: &str) {
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
    let body: Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("{what}: not JSON: {body}"));
    assert_eq!(body["error"]["code"], "csrf_failed", "{what}: {body}");
}

/// Asserts a page 403 (HTML, not a redirect).
async fn assert_page_forbidden(response: Response, what: &str) {
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
    assert!(
        content_type.starts_with("text/html"),
        "{what}: content type {content_type:?}"
    );
    assert!(body.contains("<html"), "{what}: {body}");
}

/// The bad tokens every check refuses: none, empty, forged, and another live session's token.
async fn bad_tokens(app: &TestApp) -> Vec<(&'static str, Option<String>)> {
    let stranger = app.new_client();
    let foreign = stranger.csrf().await;
    vec![
        ("missing token", None),
        ("empty token", Some(String::new())),
        ("forged token", Some(FORGED.to_owned())),
        ("another session's token", Some(foreign)),
    ]
}

async fn verify_status(client: &TestClient) -> StatusCode {
    client.get("/api/auth/verify_auth").await.status()
}

async fn signed_in(app: &TestApp, name: &str) -> TestClient {
    app.create_user(name).await;
    let client = app.new_client();
    assert_eq!(
        client.login(name, PASSWORD, false).await.status(),
        StatusCode::OK
    );
    client
}

// ---------------------------------------------------------------------------------------------
// JSON API

db_test! {
    async fn sec_c1_api_sign_in_refuses_missing_wrong_and_foreign_tokens(app) {
        app.create_user("alice").await;
        let client = app.new_client();
        let own = client.csrf().await;
        let body = json!({ "login": "alice", "password": PASSWORD });
        for (what, token) in bad_tokens(&app).await {
            let response = client.post_json_with_token("/api/auth/login", &body, token.as_deref()).await;
            assert_csrf_failed(response, what).await;
            assert_eq!(verify_status(&client).await, StatusCode::UNAUTHORIZED, "{what} signed the client in");
        }
        // The same request with the session's own token works.
        let response = client.post_json_with_token("/api/auth/login", &body, Some(&own)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}

db_test! {
    async fn sec_c1_api_sign_up_refuses_missing_wrong_and_foreign_tokens(app) {
        let client = app.new_client();
        let own = client.csrf().await;
        let body = json!({ "username": "alice", "email": "alice@example.com", "password": PASSWORD });
        for (what, token) in bad_tokens(&app).await {
            let response = client.post_json_with_token("/api/auth/signup", &body, token.as_deref()).await;
            assert_csrf_failed(response, what).await;
        }
        // No account was created by the refused attempts.
        let response = client.post_json_with_token("/api/auth/signup", &body, Some(&own)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}

db_test! {
    async fn sec_c1_api_sign_out_refuses_missing_wrong_and_foreign_tokens(app) {
        let client = signed_in(&app, "alice").await;
        for (what, token) in bad_tokens(&app).await {
            let response = client.post_json_with_token("/api/auth/logout", &json!({}), token.as_deref()).await;
            assert_csrf_failed(response, what).await;
            assert_eq!(verify_status(&client).await, StatusCode::OK, "{what} signed the client out");
        }
        let own = client.csrf().await;
        let response = client.post_json_with_token("/api/auth/logout", &json!({}), Some(&own)).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(verify_status(&client).await, StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn sec_c1_api_sign_in_and_sign_up_without_any_cookie_are_403(app) {
        app.create_user("alice").await;
        let other = app.new_client();
        let someone_elses = other.csrf().await;
        for token in [None, Some(FORGED), Some(someone_elses.as_str())] {
            let cookieless = app.new_client();
            let response = cookieless
                .post_json_with_token("/api/auth/login", &json!({ "login": "alice", "password": PASSWORD }), token)
                .await;
            assert_csrf_failed(response, &format!("cookieless sign-in with {token:?}")).await;
            assert!(cookieless.session_cookie().is_none());

            let response = cookieless
                .post_json_with_token(
                    "/api/auth/signup",
                    &json!({ "username": "bob", "email": "bob@example.com", "password": PASSWORD }),
                    token,
                )
                .await;
            assert_csrf_failed(response, &format!("cookieless sign-up with {token:?}")).await;
        }
        // A form-encoded cookieless sign-in with a token field is refused too.
        let cookieless = app.new_client();
        let response = cookieless
            .post_form("/api/auth/login", &[("csrf_token", someone_elses.as_str()), ("login", "alice"), ("password", PASSWORD)])
            .await;
        assert_csrf_failed(response, "cookieless form sign-in").await;
        assert_eq!(app.new_client().signup("bob", "bob@example.com", PASSWORD).await.status(), StatusCode::CREATED);
    }
}

db_test! {
    async fn sec_c1_both_header_spellings_are_accepted(app) {
        app.create_user("alice").await;
        for header in ["X-CSRF-Token", "X-CSRFToken", "x-csrftoken"] {
            let client = app.new_client();
            let token = client.csrf().await;
            let response = client
                .http
                .post(client.url("/api/auth/login"))
                .header(header, &token)
                .json(&json!({ "login": "alice", "password": PASSWORD }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "header {header}");
            let token = client.csrf().await;
            let response = client
                .http
                .post(client.url("/api/auth/logout"))
                .header(header, &token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::NO_CONTENT, "header {header}");
            assert_eq!(verify_status(&client).await, StatusCode::UNAUTHORIZED);
        }
        // A wrong token under the old spelling is refused like any other.
        let client = app.new_client();
        client.csrf().await;
        let response = client
            .http
            .post(client.url("/api/auth/login"))
            .header("X-CSRFToken", FORGED)
            .json(&json!({ "login": "alice", "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_csrf_failed(response, "forged X-CSRFToken").await;
    }
}

db_test! {
    async fn sec_c1_the_token_may_come_in_the_csrf_token_field(app) {
        app.create_user("alice").await;
        // Form-encoded.
        let client = app.new_client();
        let token = client.csrf().await;
        let response = client
            .post_form("/api/auth/login", &[("csrf_token", token.as_str()), ("login", "alice"), ("password", PASSWORD)])
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let token = client.csrf().await;
        let response = client.post_form("/api/auth/logout", &[("csrf_token", token.as_str())]).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(verify_status(&client).await, StatusCode::UNAUTHORIZED);
        // A wrong field value is refused.
        let response = client
            .post_form("/api/auth/login", &[("csrf_token", FORGED), ("login", "alice"), ("password", PASSWORD)])
            .await;
        assert_csrf_failed(response, "forged csrf_token field").await;
        // In a JSON body.
        let client = app.new_client();
        let token = client.csrf().await;
        let response = client
            .post_json_with_token(
                "/api/auth/login",
                &json!({ "login": "alice", "password": PASSWORD, "csrf_token": token }),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}

db_test! {
    async fn sec_c1_the_token_rotates_at_sign_in(app) {
        app.create_user("alice").await;
        let client = app.new_client();
        let anonymous = client.csrf().await;
        let response = client
            .post_json_with_token("/api/auth/login", &json!({ "login": "alice", "password": PASSWORD }), Some(&anonymous))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let signed_in = client.csrf().await;
        assert_ne!(signed_in, anonymous, "the CSRF token survived sign-in");
        let response = client.post_json_with_token("/api/auth/logout", &json!({}), Some(&anonymous)).await;
        assert_csrf_failed(response, "the pre-sign-in token").await;
        assert_eq!(verify_status(&client).await, StatusCode::OK);
        let response = client.post_json_with_token("/api/auth/logout", &json!({}), Some(&signed_in)).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
}

db_test! {
    async fn sec_c1_the_token_rotates_at_sign_up(app) {
        let client = app.new_client();
        let anonymous = client.csrf().await;
        let response = client
            .post_json_with_token(
                "/api/auth/signup",
                &json!({ "username": "alice", "email": "alice@example.com", "password": PASSWORD }),
                Some(&anonymous),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let header = response.headers().get("x-csrf-token").map(|v| v.to_str().unwrap().to_owned());
        let signed_in = client.csrf().await;
        assert_eq!(header.as_deref(), Some(signed_in.as_str()), "sign-up must hand out the new token");
        assert_ne!(signed_in, anonymous);
        let response = client.post_json_with_token("/api/auth/logout", &json!({}), Some(&anonymous)).await;
        assert_csrf_failed(response, "the pre-sign-up token").await;
    }
}

db_test! {
    async fn the_login_response_carries_the_new_token_that_the_csrf_endpoint_returns(app) {
        app.create_user("alice").await;
        let client = app.new_client();
        let anonymous = client.csrf().await;
        let response = client
            .post_json_with_token("/api/auth/login", &json!({ "login": "alice", "password": PASSWORD }), Some(&anonymous))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let header = response
            .headers()
            .get("x-csrf-token")
            .expect("the login response has an X-CSRF-Token header")
            .to_str()
            .unwrap()
            .to_owned();
        assert_ne!(header, anonymous);
        let body: Value = response.json().await.unwrap();
        assert!(body["user"].is_object(), "{body}");
        assert_eq!(client.csrf().await, header);
        assert_eq!(client.csrf().await, header, "the token is stable within a session");
        // The page meta tag shows the same session's token.
        assert_eq!(client.page_csrf("/dashboard").await, header);
    }
}

db_test! {
    async fn the_csrf_token_is_not_the_session_cookie(app) {
        let token = app.csrf().await;
        let cookie = app.session_cookie().unwrap();
        assert_ne!(token, cookie);
        assert!(!token.contains(&cookie) && !cookie.contains(&token));
        assert!(token.len() >= 22, "token too short for 128 bits: {token:?}");
        // Two sessions, two tokens.
        assert_ne!(app.new_client().csrf().await, token);
    }
}

// ---------------------------------------------------------------------------------------------
// Forms

db_test! {
    async fn sec_c1_the_login_form_refuses_missing_wrong_and_foreign_tokens(app) {
        app.create_user("alice").await;
        let client = app.new_client();
        let own = client.page_csrf("/login").await;
        let stranger = app.new_client();
        let foreign = stranger.page_csrf("/login").await;
        let cases: [(&str, Option<&str>); 4] = [
            ("missing token", None),
            ("empty token", Some("")),
            ("forged token", Some(FORGED)),
            ("another session's token", Some(foreign.as_str())),
        ];
        for (what, token) in cases {
            let mut fields = vec![("login", "alice"), ("password", PASSWORD)];
            if let Some(token) = token {
                fields.push(("csrf_token", token));
            }
            let response = client.post_form("/login", &fields).await;
            assert_page_forbidden(response, what).await;
            assert_eq!(verify_status(&client).await, StatusCode::UNAUTHORIZED, "{what} signed the client in");
        }
        let response = client
            .post_form("/login", &[("csrf_token", own.as_str()), ("login", "alice"), ("password", PASSWORD)])
            .await;
        assert_redirect(&response, "/dashboard");
        assert_eq!(verify_status(&client).await, StatusCode::OK);
    }
}

db_test! {
    async fn sec_c1_a_form_sign_in_without_any_cookie_is_403(app) {
        app.create_user("alice").await;
        let stranger = app.new_client();
        let foreign = stranger.page_csrf("/login").await;
        for token in [None, Some(foreign.as_str())] {
            let cookieless = app.new_client();
            let mut fields = vec![("login", "alice"), ("password", PASSWORD)];
            if let Some(token) = token {
                fields.push(("csrf_token", token));
            }
            let response = cookieless.post_form("/login", &fields).await;
            assert!(set_cookie_named(&response, "latch_session").is_none(), "a cookieless sign-in got a session");
            assert_page_forbidden(response, "cookieless form sign-in").await;
        }
    }
}

db_test! {
    async fn sec_c1_the_register_form_refuses_missing_wrong_and_foreign_tokens(app) {
        let client = app.new_client();
        let own = client.page_csrf("/register").await;
        let stranger = app.new_client();
        let foreign = stranger.page_csrf("/register").await;
        let cases: [(&str, Option<&str>); 4] = [
            ("missing token", None),
            ("empty token", Some("")),
            ("forged token", Some(FORGED)),
            ("another session's token", Some(foreign.as_str())),
        ];
        let base = [("username", "alice"), ("email", "alice@example.com"), ("password", PASSWORD), ("confirm", PASSWORD)];
        for (what, token) in cases {
            let mut fields = base.to_vec();
            if let Some(token) = token {
                fields.push(("csrf_token", token));
            }
            let response = client.post_form("/register", &fields).await;
            assert_page_forbidden(response, what).await;
        }
        // Cookieless, too.
        let response = app.new_client().post_form("/register", &base).await;
        assert_page_forbidden(response, "cookieless register").await;
        // Nothing was created: the real submission succeeds.
        let mut fields = base.to_vec();
        fields.push(("csrf_token", own.as_str()));
        let response = client.post_form("/register", &fields).await;
        assert_redirect(&response, "/dashboard");
        assert_eq!(verify_status(&client).await, StatusCode::OK);
    }
}

db_test! {
    async fn sec_c1_the_logout_form_refuses_missing_wrong_and_foreign_tokens(app) {
        let client = signed_in(&app, "alice").await;
        let stranger = app.new_client();
        let foreign = stranger.page_csrf("/login").await;
        let cases: [(&str, Option<&str>); 4] = [
            ("missing token", None),
            ("empty token", Some("")),
            ("forged token", Some(FORGED)),
            ("another session's token", Some(foreign.as_str())),
        ];
        for (what, token) in cases {
            let fields: Vec<(&str, &str)> = token.map(|t| ("csrf_token", t)).into_iter().collect();
            let response = client.post_form("/logout", &fields).await;
            assert_page_forbidden(response, what).await;
            assert_eq!(verify_status(&client).await, StatusCode::OK, "{what} signed the client out");
        }
        let own = client.page_csrf("/dashboard").await;
        let response = client.post_form("/logout", &[("csrf_token", own.as_str())]).await;
        assert_redirect(&response, "/");
        assert_eq!(verify_status(&client).await, StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn sec_c1_the_form_token_rotates_at_sign_in(app) {
        app.create_user("alice").await;
        let client = app.new_client();
        let anonymous = client.page_csrf("/login").await;
        let response = client
            .post_form("/login", &[("csrf_token", anonymous.as_str()), ("login", "alice"), ("password", PASSWORD)])
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let signed_in = client.page_csrf("/dashboard").await;
        assert_ne!(signed_in, anonymous);
        let response = client.post_form("/logout", &[("csrf_token", anonymous.as_str())]).await;
        assert_page_forbidden(response, "the pre-sign-in token").await;
        assert_eq!(verify_status(&client).await, StatusCode::OK);
    }
}

db_test! {
    async fn every_form_page_carries_the_sessions_token_in_the_meta_tag_and_the_form(app) {
        let client = app.new_client();
        for path in ["/login", "/register"] {
            let html = client.get(path).await.text().await.unwrap();
            let meta = extract_meta_csrf(&html).unwrap_or_else(|| panic!("{path} has no csrf meta tag"));
            assert!(
                html.contains(&format!("name=\"csrf_token\" value=\"{meta}\"")),
                "{path}: the form's csrf_token field differs from the meta tag"
            );
            assert_eq!(client.csrf().await, meta, "{path}: the page token is not the session's");
        }
    }
}
