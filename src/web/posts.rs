//! Posts (issue 6): a small blog where users may change only their own posts.

use axum::Router;

use crate::app::AppState;

/// The posts routes.
pub fn router() -> Router<AppState> {
    Router::new()
}
