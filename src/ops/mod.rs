//! Operations endpoints: liveness, readiness and metrics.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the database answers.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            crate::web::error::ApiError::Unavailable.into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let Some(exporter) = state.metrics.as_ref() else {
        return crate::web::error::ApiError::NotFound.into_response();
    };
    metrics::gauge!("latch_password_hash_slots_free").set(state.hasher.available_slots() as f64);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        exporter.render(),
    )
        .into_response()
}

/// The operations routes: `/healthz`, `/readyz` and, when asked, `/metrics`.
pub fn routes(with_metrics: bool) -> axum::Router<AppState> {
    use axum::routing::get;
    let routes = axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if with_metrics {
        routes.route("/metrics", get(metrics))
    } else {
        routes
    }
}

/// `/metrics` alone, for its own listener.
pub fn metrics_routes() -> axum::Router<AppState> {
    axum::Router::new().route("/metrics", axum::routing::get(metrics))
}
