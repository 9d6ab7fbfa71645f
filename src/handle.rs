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
        config.validate()?;
        let state = AppState::new(config, clock).await?;
        let task = tokio::spawn(purge_loop(state.clone()));
        Ok(Self {
            state,
            _cleanup: Some(Arc::new(Cleanup(task))),
        })
    }

    /// A [`LatchBuilder`], starting from the default configuration.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), latch::StartError> {
    /// let latch = latch::Latch::builder()
    ///     .database_url("sqlite://app.db")
    ///     .public_url("https://example.com/auth")
    ///     .build()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder() -> LatchBuilder {
        LatchBuilder {
            config: Config::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The shared state (database, configuration, hasher…), for capability functions.
    pub fn state(&self) -> &AppState {
        &self.state
    }
}

/// Builds a [`Latch`] setting by setting; [`LatchBuilder::config`] takes a whole [`Config`]
/// (for instance one read by [`Config::load`]).
#[must_use]
pub struct LatchBuilder {
    config: Config,
    clock: Arc<dyn Clock>,
}

impl LatchBuilder {
    /// Replaces every setting.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// `sqlite://path` or `postgres://…`.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.config.database_url = url.into();
        self
    }

    /// The external URL of latch's pages, with the prefix latch is nested under, if any
    /// (`https://example.com/auth`): links, redirects and mailed links follow it.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.config.public_url = Some(url.into());
        self
    }

    /// Another time source.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the settings, connects, migrates and starts the cleanup task.
    pub async fn build(self) -> Result<Latch, StartError> {
        Latch::with_clock(self.config, self.clock).await
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
        let started = std::time::Instant::now();
        match crate::sessions::purge_expired(&state).await {
            Ok(n) if n > 0 => tracing::info!(
                deleted = n,
                ms = started.elapsed().as_millis() as u64,
                "purged expired sessions"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not purge expired sessions"),
        }
    }
}
