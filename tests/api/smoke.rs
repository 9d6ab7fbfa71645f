use crate::db_test;
use crate::helpers::*;
use reqwest::StatusCode;

db_test! {
    async fn signup_then_verify_auth(app) {
        let response = app.signup("alice", "alice@example.com", PASSWORD).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let me = app.get("/api/auth/verify_auth").await;
        assert_eq!(me.status(), StatusCode::OK);
    }
}
