//! The HTTP plumbing every capability shares: body decoding, extractors (the signed-in user,
//! roles, the client), the error mapping (one `ApiError`, JSON or HTML), page rendering,
//! middleware and static assets. No routes of its own but the fallbacks: each capability owns
//! its routes, and [`crate::app::router`] merges them.

pub mod assets;
pub mod base;
pub mod error;
pub mod extract;
pub mod input;
pub mod middleware;
pub mod openapi;
pub mod peer;
pub mod roles;
mod scope;
pub mod view;

use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::state::AppState;
use error::ApiError;

/// The fallbacks and layers every listener's routes get.
pub fn with_middleware(routes: Router<AppState>, state: AppState) -> Router {
    layered(
        routes
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed),
        state,
    )
}

/// The shared layer (request observation, which also turns a panic into a 500) without
/// fallbacks:
/// for routes merged into another application's router, which has its own fallback (axum
/// refuses to merge two).
pub fn layered(routes: Router<AppState>, state: AppState) -> Router {
    // One layer: axum boxes each layer applied to a router separately, and clones every box
    // on every request. (The body limit is applied where a body is read, `input::read_body`.)
    routes
        .layer(middleware::ObserveLayer(state.clone()))
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
