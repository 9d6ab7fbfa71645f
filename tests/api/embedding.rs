//! latch inside another axum application: the host keeps its own state and its own 404, and
//! latch's extractors work on the host's routes through `FromRef`.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::Router;
use latch::state::AppState;
use latch::web::extract::RequireUser;
use reqwest::StatusCode;

use crate::helpers::*;

#[derive(Clone)]
struct HostState {
    latch: AppState,
    greeting: &'static str,
}

impl FromRef<HostState> for AppState {
    fn from_ref(host: &HostState) -> AppState {
        host.latch.clone()
    }
}

async fn hello(State(host): State<HostState>, RequireUser(user): RequireUser) -> String {
    format!("{}, {}", host.greeting, user.username)
}

async fn host_404() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "the host's own 404")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_app_with_its_own_state_and_fallback_uses_latchs_extractors() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(Backend::Sqlite, dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    config.public_url = Some(format!("http://{addr}"));
    let latch = AppState::new(config, Arc::new(latch::clock::SystemClock))
        .await
        .unwrap();
    let host = HostState {
        latch: latch.clone(),
        greeting: "welcome back",
    };
    // Merging panics if both routers had a fallback: latch's embedded router has none.
    let app: Router = Router::new()
        .route("/hello", get(hello))
        .fallback(host_404)
        .with_state(host)
        .merge(latch::app::embedded_router(latch));
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let client = TestClient::new(&format!("http://{addr}"));
    let anonymous = client.get("/hello").await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(anonymous.headers()["location"], "/login?next=%2Fhello");
    let missing = client.get("/no-such-page").await;
    assert_eq!(missing.text().await.unwrap(), "the host's own 404");
    let signup = client.signup("alice", "alice@example.com", PASSWORD).await;
    assert_eq!(signup.status(), StatusCode::CREATED);
    let hello = client.get("/hello").await;
    assert_eq!(hello.status(), StatusCode::OK);
    assert_eq!(hello.text().await.unwrap(), "welcome back, alice");
}
