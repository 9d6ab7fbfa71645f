//! HTTP: the router, pages, JSON API, extractors and the mapping of errors to responses.

pub mod account_api;
pub mod account_pages;
pub mod admin;
pub mod api;
pub mod assets;
pub mod client_ip;
pub mod error;
pub mod extract;
pub mod input;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod posts;
pub mod roles;
pub mod templates;
pub mod token_pages;
pub mod view;

use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::app::AppState;
use crate::config::MetricsBind;
use error::ApiError;

/// The whole application's routes and middleware; `/metrics` only when `metrics_bind` leaves
/// it on the main listener.
pub fn router(state: AppState) -> Router {
    let metrics_here = matches!(state.config.metrics_bind(), Ok(MetricsBind::Main));
    let routes = Router::new()
        .merge(pages::router())
        .merge(api::router())
        .merge(account_api::router())
        .merge(account_pages::router())
        .merge(token_pages::router())
        .merge(admin::router())
        .merge(posts::router())
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/static/{file}", get(assets::static_file));
    let routes = if metrics_here {
        routes.route("/metrics", get(ops::metrics))
    } else {
        routes
    };
    with_middleware(routes, state)
}

/// `/metrics` alone, for its own listener (`metrics_bind` set to an address).
pub fn metrics_router(state: AppState) -> Router {
    with_middleware(Router::new().route("/metrics", get(ops::metrics)), state)
}

/// The fallbacks and layers every listener's routes get.
fn with_middleware(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(input::MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::observe,
        ))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .with_state(state)
}

async fn not_found(uri: Uri) -> Response {
    if extract::is_api_path(uri.path()) {
        ApiError::NotFound.into_response()
    } else {
        ApiError::NotFound.into_page()
    }
}

async fn method_not_allowed(uri: Uri) -> Response {
    if extract::is_api_path(uri.path()) {
        ApiError::MethodNotAllowed.into_response()
    } else {
        ApiError::MethodNotAllowed.into_page()
    }
}
