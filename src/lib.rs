//! latch: user authentication for web applications.
//!
//! One library with all the logic and a thin `latch` binary. The library gives an axum
//! application sign-up, sign-in, server-side sessions with remember-me, CSRF protection,
//! safe `?next=` redirects, email verification, password reset, throttling, an audit log,
//! HTML pages and a JSON API, on SQLite or PostgreSQL.
//!
//! Run it as a service:
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let config = latch::config::Config::default();
//! let app = latch::app::App::build(config).await?;
//! println!("listening on http://{}", app.local_addr());
//! app.run_until_stopped().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Or protect your own axum routes the way Flask-Login's `login_required` does: declare the
//! user in the handler's signature. Anonymous API requests get 401, pages a redirect to
//! `/login?next=…`; [`CurrentUser`] makes sign-in optional.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use latch::{Config, Latch, RequireUser};
//!
//! async fn secret(RequireUser(user): RequireUser) -> String {
//!     format!("hello, {}", user.username)
//! }
//!
//! # async fn run() -> anyhow::Result<()> {
//! let latch = Latch::new(Config { database_url: "sqlite://app.db".into(), ..Default::default() }).await?;
//! let app: Router = Router::new()
//!     .route("/secret", get(secret))
//!     .with_state(latch.clone())
//!     .merge(latch.router()); // /login, /register, /api/auth/*, …
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! The layers of the crate and what each may import are in `docs/architecture.md`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod account;
pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod bearer;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod csrf;
pub mod domain;
pub mod forward_auth;
pub mod handle;
pub mod import;
pub mod mail;
pub mod mfa;
pub mod openapi;
pub mod ops;
pub mod passkeys;
pub mod passwords;
pub mod posts;
pub mod priority;
pub mod server;
pub mod sessions;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod templates;
pub mod testing;
pub mod throttle;
pub mod tokens;
pub mod user;
pub mod web;
pub mod werkzeug;

pub use config::Config;
pub use handle::{Latch, LatchBuilder};
pub use state::StartError;
pub use web::extract::{CurrentUser, RequireUser};
pub use web::roles::{RequireAdmin, RequireRole};
