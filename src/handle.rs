//! [`Latch`]: latch as a library, one cheap clonable handle for an axum application.
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
//! let app = Router::new().route("/secret", get(secret)).with_state(latch.clone()).merge(latch.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! The handle owns the cleanup of expired sessions, throttle events and mailed tokens: a task
//! started by [`Latch::new`] and stopped when the last clone is dropped. Nothing global is
//! installed (no metrics recorder, no log subscriber: the `latch` binary does that).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::state::{AppState, StartError};

/// latch in an application: its state and the cleanup task it owns. Handlers of any state `S`
/// with `Latch: FromRef<S>` can use the extractors ([`crate::RequireUser`] and friends).
#[derive(Clone)]
pub struct Latch {
    state: AppState,
    _cleanup: Option<Arc<Cleanup>>,
}

impl std::fmt::Debug for Latch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Latch")
    }
}

impl Latch {
    /// Connects to and migrates the configured database, and starts the cleanup task.
    pub async fn new(config: Config) -> Result<Self, StartError> {
        Self::with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Latch::new`] with another time source (tests move a [`crate::clock::ManualClock`]).
    pub async fn with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let state = AppState::new(config, clock).await?;
        let task = tokio::spawn(purge_loop(state.clone()));
        Ok(Self {
            state,
            _cleanup: Some(Arc::new(Cleanup(task))),
        })
    }

    /// The shared state (database, configuration, hasher…), for capability functions.
    pub fn state(&self) -> &AppState {
        &self.state
    }
}

/// Every route of latch already holds the state; this lets its extractors ask for a `Latch`
/// whatever the router's state is.
impl FromRef<AppState> for Latch {
    fn from_ref(state: &AppState) -> Self {
        Self {
            state: state.clone(),
            _cleanup: None,
        }
    }
}

/// The cleanup task; aborted when the last handle goes.
struct Cleanup(tokio::task::JoinHandle<()>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Deletes expired sessions, throttle events and mailed tokens every ten minutes.
pub async fn purge_loop(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        match crate::sessions::purge_expired(&state).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "purged expired sessions"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not purge expired sessions"),
        }
    }
}
