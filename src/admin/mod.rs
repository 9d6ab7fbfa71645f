//! Administration: the user list, one user, locks, roles, "end all sessions" and deletion,
//! for the admin area (pages and JSON) and the CLI alike.

pub mod routes;

/// The admin routes: pages and JSON side by side.
pub fn routes() -> axum::Router<crate::state::AppState> {
    routes::router()
}
