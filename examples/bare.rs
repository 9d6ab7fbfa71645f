//! The floor for benchmarks: a bare axum handler on the same runtime settings as latch,
//! answering a small JSON body (and `/healthz` with `ok`, like the peers' floor). `bench/run.sh`
//! and `bench/compare.sh` report latch's throughput as a ratio of this.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".into());
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/api/auth/verify_auth",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"user":{"id":1,"username":"bench"}}"#,
                )
                    .into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bare axum listening on http://{addr}");
    axum::serve(listener, app).await
}
