//! The admin area (issue 6): `/admin/users` and `/api/admin/users`.

use axum::Router;

use crate::app::AppState;

/// The admin routes.
pub fn router() -> Router<AppState> {
    Router::new()
}
