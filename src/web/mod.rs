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
pub mod view;

use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::app::AppState;
use error::ApiError;

/// The whole application's routes and middleware.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(pages::router())
        .merge(api::router())
        .merge(account_api::router())
        .merge(account_pages::router())
        .merge(admin::router())
        .merge(posts::router())
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/static/{file}", get(assets::static_file))
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
