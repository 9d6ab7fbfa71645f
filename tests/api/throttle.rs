//! A4/A5: sign-in throttling per account and per client IP, in the database.

use crate::db_test;
use crate::helpers::*;
use reqwest::StatusCode;

async fn fail(client: &TestClient, login: &str, times: usize) {
    for _ in 0..times {
        let response = client.login(login, "wrong password!", false).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn sec_a4_sixth_attempt_is_refused_even_with_the_right_password(app) {
        app.create_user("alice").await;
        fail(&app, "alice", 5).await;
        let response = app.login("alice", PASSWORD, false).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: i64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=900).contains(&retry), "{retry}");
        let (_, code) = error_code(response).await;
        assert_eq!(code, "too_many_attempts");
        // The same account by email, and through the HTML form, is throttled too.
        let by_email = app.login("alice@example.com", PASSWORD, false).await;
        assert_eq!(by_email.status(), StatusCode::TOO_MANY_REQUESTS);
        let browser = app.new_client();
        let token = browser.page_csrf("/login").await;
        let form = browser
            .post_form("/login", &[("csrf_token", &token), ("login", "alice"), ("password", PASSWORD)])
            .await;
        assert_eq!(form.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(form.headers().contains_key("retry-after"));
    }
}

db_test! {
    async fn sec_a4_throttle_ends_when_the_window_passes(app) {
        app.create_user("alice").await;
        fail(&app, "alice", 5).await;
        assert_eq!(app.login("alice", PASSWORD, false).await.status(), StatusCode::TOO_MANY_REQUESTS);
        app.clock.advance(15 * 60 + 1);
        assert_eq!(app.login("alice", PASSWORD, false).await.status(), StatusCode::OK);
    }
}

db_test! {
    async fn sec_a4_unknown_accounts_are_throttled_like_known_ones(app) {
        fail(&app, "ghost", 5).await;
        let response = app.login("ghost", "whatever it is", false).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(response.headers().contains_key("retry-after"));
    }
}

db_test! {
    async fn another_account_from_the_same_client_is_unaffected(app) {
        app.create_user("alice").await;
        app.create_user("bob").await;
        fail(&app, "alice", 5).await;
        assert_eq!(app.login("bob", PASSWORD, false).await.status(), StatusCode::OK);
    }
}

db_test! {
    async fn a_successful_sign_in_clears_the_account_count(app) {
        app.create_user("alice").await;
        fail(&app, "alice", 4).await;
        assert_eq!(app.login("alice", PASSWORD, false).await.status(), StatusCode::OK);
        fail(&app, "alice", 4).await;
        assert_eq!(app.login("alice", PASSWORD, false).await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn sec_a5_per_ip_limit_covers_many_accounts() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.throttle_ip_failures = 8).await;
    app.create_user("victim").await;
    for i in 0..8 {
        fail(&app, &format!("user{i}"), 1).await;
    }
    let response = app.login("victim", PASSWORD, false).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn successful_sign_ins_do_not_count_against_the_client_limit() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.throttle_ip_failures = 3).await;
    app.create_user("alice").await;
    fail(&app, "alice", 2).await;
    // Each success gives back both events it reserved (the account's and the client's) and
    // clears the account's failures; the client's two failures stay.
    for _ in 0..5 {
        assert_eq!(
            app.login("alice", PASSWORD, false).await.status(),
            StatusCode::OK
        );
    }
    fail(&app, "bob", 1).await;
    let response = app.login("alice", PASSWORD, false).await;
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the client's three failures"
    );
}
