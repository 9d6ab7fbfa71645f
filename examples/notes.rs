//! A small notes application with latch in front: its own state and routes, latch's sign-up,
//! sign-in and account pages nested under `/auth`, every notes route behind `RequireUser`, and
//! one admin-only route behind `RequireAdmin`.
//!
//! `public_url` ends in `/auth`, the prefix latch is nested under: refusals on the notes routes
//! then redirect to `/auth/login`, and mailed links point under `/auth` too.
//!
//! ```sh
//! cargo run --example notes            # http://127.0.0.1:3000/notes
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRef, State};
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use latch::web::input::Input;
use latch::{Config, Latch, RequireAdmin, RequireUser};

/// The application's own state, with latch's handle in it.
#[derive(Clone)]
pub struct Notes {
    latch: Latch,
    notes: Arc<Mutex<HashMap<i64, Vec<String>>>>,
}

impl FromRef<Notes> for Latch {
    fn from_ref(app: &Notes) -> Latch {
        app.latch.clone()
    }
}

#[derive(serde::Deserialize)]
struct NewNote {
    text: String,
}

/// The signed-in user's notes and a form to add one (CSRF-protected by `Input`).
async fn list(State(app): State<Notes>, RequireUser(user): RequireUser) -> Html<String> {
    let notes = app
        .notes
        .lock()
        .map(|n| n.get(&user.id).cloned().unwrap_or_default());
    let items: String = notes
        .unwrap_or_default()
        .iter()
        .map(|n| format!("<li>{}</li>", escape(n)))
        .collect();
    Html(format!(
        "<h1>{}'s notes</h1><ul>{items}</ul>",
        escape(&user.username)
    ))
}

/// Adds a note: JSON or a form, with the CSRF token of the session.
async fn add(
    State(app): State<Notes>,
    RequireUser(user): RequireUser,
    input: Input<NewNote>,
) -> &'static str {
    if let Ok(mut notes) = app.notes.lock() {
        notes.entry(user.id).or_default().push(input.data.text);
    }
    "saved"
}

/// Only administrators.
async fn stats(State(app): State<Notes>, RequireAdmin(_admin): RequireAdmin) -> String {
    let count: usize = app
        .notes
        .lock()
        .map(|n| n.values().map(Vec::len).sum())
        .unwrap_or(0);
    format!("{count} notes")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The whole application: its routes with its state, then latch's pages and API under `/auth`.
pub fn app(latch: Latch) -> Router {
    let state = Notes {
        latch: latch.clone(),
        notes: Arc::default(),
    };
    Router::new()
        .route("/notes", get(list).post(add))
        .route("/admin/stats", get(stats))
        .with_state(state)
        .nest("/auth", latch.router())
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config {
        database_url: "sqlite://notes.db".into(),
        public_url: Some("http://127.0.0.1:3000/auth".into()),
        ..Default::default()
    };
    let latch = Latch::new(config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("notes on http://127.0.0.1:3000/notes");
    axum::serve(
        listener,
        app(latch).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await?;
    Ok(())
}
