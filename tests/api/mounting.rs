//! latch served under a path prefix by a proxy that strips it: `public_url` carries the
//! prefix (`https://example.com/auth`), the routes stay at the root of latch's listener, and
//! every link, form action, redirect and mailed link of its pages starts with the prefix
//! (docs/configuration.md, `public_url`).

use crate::db_test;
use reqwest::StatusCode;

use crate::helpers::*;

db_test! {
    async fn a_prefix_in_public_url_is_put_before_every_page_link(app) {
        let app = app_with_prefix(&app).await;
        let client = app.new_client();
        let account = client.get("/account").await;
        assert_eq!(account.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            account.headers()["location"],
            "/auth/login?next=%2Fauth%2Faccount"
        );
        let html = client.get("/login?next=%2Fauth%2Faccount").await.text().await.unwrap();
        assert!(html.contains(r#"action="/auth/login""#), "{html}");
        assert!(html.contains(r#"href="/auth/forgot-password""#), "{html}");
        assert!(!html.contains(r#"href="/static/"#), "{html}");

        let token = extract_meta_csrf(&html).unwrap();
        app.create_user("dave").await;
        let signed_in = client
            .post_form(
                "/login",
                &[
                    ("csrf_token", token.as_str()),
                    ("login", "dave"),
                    ("password", PASSWORD),
                    ("next", "/auth/account"),
                ],
            )
            .await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        assert_eq!(signed_in.headers()["location"], "/auth/account");
        // Without a `next`, the dashboard under the prefix.
        let again = client.get("/login").await;
        assert_eq!(again.headers()["location"], "/auth/dashboard");

        let forgot = crate::lifecycle::forgot(&app.new_client(), "dave@example.com").await;
        assert_eq!(forgot.status(), StatusCode::ACCEPTED);
        let mail = app.last_mail_to("dave@example.com").expect("a reset mail");
        assert!(
            mail.body.contains("http://example.com/auth/reset-password?token="),
            "{}",
            mail.body
        );
    }
}

/// A fresh latch on `app`'s kind of database, with `public_url` under `/auth` (plain http, so
/// that the test client sends its cookies back).
async fn app_with_prefix(app: &TestApp) -> TestApp {
    let backend = if app.database_url.starts_with("postgres") {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    TestApp::spawn_with(backend, |config| {
        config.public_url = Some("http://example.com/auth".into());
    })
    .await
}
