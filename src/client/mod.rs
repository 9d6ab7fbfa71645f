//! The browser client: `/app`, one page that drives the JSON API through `/static/latch.js`
//! (sign up, sign in with the second step or a passkey when the account has one, who am I,
//! sign out).
//! The page is a server-rendered shell; its script is `static/app.js`, allowed by the CSP as
//! `'self'` (no inline script, no `eval`). `latch.js` is also an ES module other front-ends
//! can import (see the README).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use minijinja::context;

use crate::state::AppState;
use crate::web::view::{self, Frame, HtmlResult};

/// The client's routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/app", get(app_get))
}

/// `GET /app`.
async fn app_get(State(state): State<AppState>, frame: Frame) -> HtmlResult {
    view::render(
        &state,
        &frame,
        "app.html",
        StatusCode::OK,
        None,
        context! { passkeys_on => state.relying_party.is_ok() },
    )
}
