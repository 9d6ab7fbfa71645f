//! The example application (`examples/notes.rs`) served for real: latch's sign-up protects
//! its routes, its admin-only route refuses users, and `latch::testing` signs a user in
//! without the password hash.

#[allow(dead_code)]
#[path = "../../examples/notes.rs"]
mod notes;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

async fn serve_notes() -> (String, latch::Latch, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(Backend::Sqlite, dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    config.public_url = Some(format!("http://{addr}/auth"));
    let latch = latch::Latch::new(config).await.unwrap();
    let app = notes::app(latch.clone());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (format!("http://{addr}"), latch, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notes_example_is_protected_by_latch() {
    let (base, _latch, _dir) = serve_notes().await;
    let visitor = TestClient::new(&base);
    let auth = visitor.under("/auth");
    let page = visitor.get("/notes").await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()["location"], "/auth/login?next=%2Fnotes");
    assert_eq!(
        auth.signup("alice", "alice@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
    // Without the CSRF token the host's own form is refused too.
    let forged = visitor
        .post_json_with_token("/notes", &json!({"text": "x"}), None)
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let token = auth.csrf().await;
    let saved = visitor
        .post_json_with_token("/notes", &json!({"text": "buy <milk>"}), Some(&token))
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let html = visitor.get("/notes").await.text().await.unwrap();
    assert!(
        html.contains("alice's notes") && html.contains("buy &lt;milk&gt;"),
        "{html}"
    );
    assert_eq!(
        visitor.get("/admin/stats").await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latch_testing_signs_a_user_in_without_the_password_hash() {
    let (base, latch, _dir) = serve_notes().await;
    let hashes_before = latch.state().hasher.computations();
    let session = latch::testing::signed_in(&latch, "bob", "bob@example.com")
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let page = client
        .get(format!("{base}/notes"))
        .header("Cookie", &session.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("bob's notes"));
    let saved = client
        .post(format!("{base}/notes"))
        .header("Cookie", &session.cookie)
        .header("X-CSRF-Token", &session.csrf_token)
        .json(&json!({"text": "from a test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), StatusCode::OK);
    assert_eq!(
        latch.state().hasher.computations(),
        hashes_before,
        "a hash was computed"
    );
}

/// Every link, form action and redirect of latch's pages follows the `/auth` prefix the notes
/// application nests it under, and so does the link in a mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latch_nested_under_a_prefix_keeps_every_link_under_it() {
    let (base, _latch, dir) = serve_notes().await;
    let visitor = TestClient::new(&base);
    let auth = visitor.under("/auth");

    // A latch page refusing a visitor sends them to the nested sign-in page, back to itself.
    let account = auth.get("/account").await;
    assert_eq!(account.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        account.headers()["location"],
        "/auth/login?next=%2Fauth%2Faccount"
    );

    let login = auth.get("/login").await;
    assert_eq!(login.status(), StatusCode::OK);
    let html = login.text().await.unwrap();
    assert!(html.contains(r#"action="/auth/login""#), "{html}");
    assert!(html.contains(r#"href="/auth/static/latch.css""#), "{html}");
    assert!(html.contains(r#"href="/auth/register"#), "{html}");
    for stray in [r#"href="/login"#, r#"action="/login"#, r#"href="/static/"#] {
        assert!(!html.contains(stray), "{stray} in {html}");
    }
    assert_eq!(auth.get("/static/latch.css").await.status(), StatusCode::OK);

    // The sign-up form, posted the way a browser does, lands on the nested dashboard.
    let token = extract_meta_csrf(&html).unwrap();
    let created = auth
        .post_form(
            "/register",
            &[
                ("csrf_token", token.as_str()),
                ("username", "carol"),
                ("email", "carol@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    assert_eq!(created.headers()["location"], "/auth/dashboard");
    let dashboard = auth.get("/dashboard").await.text().await.unwrap();
    assert!(dashboard.contains(r#"href="/auth/account""#), "{dashboard}");
    assert!(
        dashboard.contains(r#"action="/auth/logout""#),
        "{dashboard}"
    );

    // The signed-in user reaches the application's own routes with the same cookie.
    assert_eq!(visitor.get("/notes").await.status(), StatusCode::OK);

    // A form's redirect stays under the prefix.
    let token = auth.page_csrf("/account").await;
    let saved = auth
        .post_form(
            "/account/profile",
            &[("csrf_token", token.as_str()), ("first_name", "Carol")],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        saved.headers()["location"],
        "/auth/account?done=profile_saved"
    );

    // An error page's styles and home link are latch's, under the prefix.
    let missing = auth.get("/posts/999999").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let html = missing.text().await.unwrap();
    assert!(
        html.contains(r#"href="/auth/static/pico.min.css""#),
        "{html}"
    );

    // Mailed links are built from `public_url`, which carries the prefix.
    let other = TestClient::new(&base).under("/auth");
    let sent = other
        .post_json(
            "/api/auth/password/forgot",
            &json!({"email": "carol@example.com"}),
        )
        .await;
    assert!(sent.status().is_success(), "{}", sent.status());
    let mail = outbox_mails_in(&dir.path().join("outbox"))
        .into_iter()
        .rev()
        .find(|m| m.subject.contains("Reset"))
        .expect("a reset mail");
    assert!(
        mail.body
            .contains(&format!("{base}/auth/reset-password?token=")),
        "{}",
        mail.body
    );

    // Signing out goes to latch's home page under the prefix.
    let token = auth.page_csrf("/dashboard").await;
    let out = auth
        .post_form("/logout", &[("csrf_token", token.as_str())])
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(out.headers()["location"], "/auth/");
}
