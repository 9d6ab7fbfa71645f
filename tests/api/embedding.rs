//! latch inside another axum application: the host keeps its own state and its own 404, and
//! latch's extractors work on the host's routes through `FromRef`.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::Router;
use latch::state::AppState;
use latch::RequireUser;
use reqwest::StatusCode;

use crate::helpers::*;

#[derive(Clone)]
struct HostState {
    latch: latch::Latch,
    greeting: &'static str,
}

impl FromRef<HostState> for latch::Latch {
    fn from_ref(host: &HostState) -> latch::Latch {
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
    let latch = latch::Latch::new(config).await.unwrap();
    let host = HostState {
        latch: latch.clone(),
        greeting: "welcome back",
    };
    // Merging panics if both routers had a fallback: latch's embedded router has none.
    let app: Router = Router::new()
        .route("/hello", get(hello))
        .route("/v1/me", get(hello))
        .fallback(host_404)
        .with_state(host)
        .merge(latch.router());
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
    // The refusal follows `Accept`, not the path: the host's JSON route answers 401 JSON.
    let json = client
        .http
        .get(client.url("/v1/me"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::UNAUTHORIZED);
    let (_, code) = error_code(json).await;
    assert_eq!(code, "unauthenticated");
    let browser = client
        .http
        .get(client.url("/v1/me"))
        .header(
            "Accept",
            "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status(), StatusCode::SEE_OTHER);
    let missing = client.get("/no-such-page").await;
    assert_eq!(missing.text().await.unwrap(), "the host's own 404");
    let signup = client.signup("alice", "alice@example.com", PASSWORD).await;
    assert_eq!(signup.status(), StatusCode::CREATED);
    let hello = client.get("/hello").await;
    assert_eq!(hello.status(), StatusCode::OK);
    assert_eq!(hello.text().await.unwrap(), "welcome back, alice");
}

/// A host application's own sqlx migrations in a directory of its own.
fn host_migrations(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("host-migrations");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(
        path.join("1_notes.sql"),
        "CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL);",
    )
    .unwrap();
    path
}

/// The host migrates with sqlx, latch with its own table, in either order, twice.
async fn host_and_latch_share_a_database(database_url: String) {
    let dir = tempfile::tempdir().unwrap();
    let host = sqlx::migrate::Migrator::new(host_migrations(dir.path()))
        .await
        .unwrap();
    let mut config = test_config(Backend::Sqlite, dir.path());
    config.database_url = database_url;
    for _ in 0..2 {
        let db = latch::store::Db::connect(&config).await.unwrap();
        match &db {
            latch::store::Db::Sqlite(pool) => host.run(pool).await.unwrap(),
            latch::store::Db::Postgres(pool) => host.run(pool).await.unwrap(),
        }
        db.migrate().await.unwrap();
        let state = AppState::new(config.clone(), Arc::new(latch::clock::SystemClock))
            .await
            .expect("latch starts beside the host's migrations");
        drop(state);
        db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latch_migrations_live_apart_from_the_hosts_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    host_and_latch_share_a_database(format!(
        "sqlite://{}",
        dir.path().join("shared.db").display()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set LATCH_TEST_DATABASE_URL and run with --ignored"]
async fn latch_migrations_live_apart_from_the_hosts_on_postgres() {
    let url = fresh_postgres_database();
    host_and_latch_share_a_database(url.clone()).await;
    drop_postgres_database(&url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_migrated_by_an_earlier_latch_is_adopted_without_rerunning() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let mut config = test_config(Backend::Sqlite, dir.path());
    config.database_url = url;
    let db = latch::store::Db::connect(&config).await.unwrap();
    let latch::store::Db::Sqlite(pool) = &db else {
        unreachable!()
    };
    // What earlier versions did: sqlx's migrator and its `_sqlx_migrations` table.
    sqlx::migrate!("migrations/sqlite").run(pool).await.unwrap();
    db.migrate()
        .await
        .expect("the old schema is adopted, nothing runs twice");
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM _latch_migrations")
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(rows >= 8, "{rows} adopted");
    db.migrate().await.unwrap();
}
