//! latch: user authentication for web applications.
//!
//! One library with all the logic and a thin `latch` binary. The library gives an axum
//! application sign-up, sign-in, server-side sessions with remember-me, CSRF protection,
//! safe `?next=` redirects, HTML pages and a JSON API, on SQLite or PostgreSQL.
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
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod account;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod csrf;
pub mod domain;
pub mod mail;
pub mod passwords;
pub mod sessions;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod web;
