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
    config.public_url = Some(format!("http://{addr}"));
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
    let page = visitor.get("/notes").await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()["location"], "/login?next=%2Fnotes");
    assert_eq!(
        visitor
            .signup("alice", "alice@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
    // Without the CSRF token the host's own form is refused too.
    let forged = visitor
        .post_json_with_token("/notes", &json!({"text": "x"}), None)
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let saved = visitor
        .post_json("/notes", &json!({"text": "buy <milk>"}))
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
