//! Points of the contract a review found broken once; each test fails without its fix.

use crate::db_test;
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

db_test! {
    async fn sec_c1_a_made_up_bearer_header_does_not_exempt_sign_in_from_csrf(app) {
        app.create_user("alice").await;
        for (path, body) in [
            ("/api/auth/login", json!({"login": "alice", "password": PASSWORD})),
            ("/api/auth/signup", json!({"username": "mallory", "email": "m@example.com", "password": PASSWORD})),
        ] {
            let response = reqwest::Client::new()
                .post(app.url(path))
                .bearer_auth("nonsense")
                .json(&body)
                .send()
                .await
                .unwrap();
            let (status, code) = error_code(response).await;
            assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "csrf_failed"), "{path}");
        }
    }
}

db_test! {
    async fn sec_h1_a_malformed_path_parameter_gets_the_envelope_or_a_page(app) {
        app.signup("alice", "alice@example.com", PASSWORD).await;
        for path in ["/api/posts/%ff", "/api/admin/users/%ff"] {
            let response = app.get(path).await;
            assert!(response.status().is_client_error(), "{path}");
            let body: Value = response.json().await.unwrap_or_else(|_| panic!("{path}: not JSON"));
            assert!(body["error"]["code"].is_string(), "{path}: {body}");
        }
        let page = app.get("/posts/%ff").await;
        assert!(page.status().is_client_error());
        assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    }
}

db_test! {
    async fn login_and_register_forms_show_each_message_as_text(app) {
        let token = app.page_csrf("/register").await;
        let response = app.post_form("/register", &[("csrf_token", &token), ("username", "a"), ("email", "x"), ("password", "p")]).await;
        let html = response.text().await.unwrap();
        assert!(html.contains("Must be 3 to 32 characters long."), "{html}");
        assert!(!html.contains("[&quot;"), "a message is shown as a JSON array: {html}");
    }
}

db_test! {
    async fn a_login_form_posted_to_login_with_next_in_the_query_goes_there(app) {
        app.create_user("alice").await;
        let token = app.page_csrf("/login").await;
        let response = app.post_form("/login?next=%2Fposts", &[("csrf_token", &token), ("login", "alice"), ("password", PASSWORD)]).await;
        assert_redirect(&response, "/posts");
    }
}

db_test! {
    async fn a_409_has_no_fields_member(app) {
        app.create_user("alice").await;
        let response = app.new_client().signup("alice", "other@example.com", PASSWORD).await;
        assert_eq!(response.status(), StatusCode::CONFLICT);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "username_taken");
        assert!(body["error"].get("fields").is_none(), "{body}");
    }
}

db_test! {
    async fn the_served_openapi_document_is_docs_openapi_json(app) {
        let response = app.new_client().get("/api/openapi.json").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let served: Value = response.json().await.unwrap();
        let saved = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json")).unwrap();
        let saved: Value = serde_json::from_str(&saved).unwrap();
        assert!(served == saved, "docs/openapi.json is stale: LATCH_WRITE_OPENAPI=1 cargo test openapi");
    }
}
