//! Wiring: state, router, listener and graceful shutdown.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::passwords::PasswordHasher;
use crate::store::{Db, StoreError};
use crate::web;

/// What every handler shares: one `Arc`, so the clone every request makes is one atomic
/// increment (fields are reached through `Deref`).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The contents of [`AppState`].
pub struct Shared {
    /// The effective configuration (with `public_url` filled in).
    pub config: Arc<Config>,
    /// The database.
    pub db: Db,
    /// Argon2id with bounded concurrency.
    pub hasher: PasswordHasher,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Page templates.
    pub templates: Arc<web::templates::Templates>,
    /// Prometheus exporter.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Outgoing mail.
    pub mailer: Arc<crate::mail::Mailer>,
    /// Parsed `trusted_proxies`.
    pub trusted_proxies: Arc<Vec<web::client_ip::IpRange>>,
    /// SQLite only: inline read path for the session lookup (see [`crate::store::fast_read`]).
    pub session_reader: Option<crate::store::fast_read::SqliteReader>,
}

impl AppState {
    /// Connects and migrates the database and prepares the hasher: everything but the
    /// listener (the CLI's user commands use this too).
    pub async fn new(config: Config, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let metrics = crate::telemetry::metrics_handle();
        metrics::gauge!("latch_password_hash_queue_depth").set(0.0);
        let db = Db::connect(&config).await?;
        db.migrate().await?;
        let hasher = PasswordHasher::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            config.hash_workers,
        )
        .map_err(|e| StartError::Other(e.to_string()))?;
        hasher
            .warm_up()
            .await
            .map_err(|e| StartError::Other(e.to_string()))?;
        let mailer = crate::mail::Mailer::from_config(&config)
            .map_err(|e| StartError::Other(e.to_string()))?;
        let trusted_proxies = config
            .trusted_proxies
            .iter()
            .filter_map(|p| web::client_ip::IpRange::parse(p))
            .collect();
        let session_reader = db.sqlite_path().and_then(|path| {
            let count = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
            crate::store::fast_read::SqliteReader::open(&path, count)
        });
        Ok(Self(Arc::new(Shared {
            session_reader,
            mailer: Arc::new(mailer),
            trusted_proxies: Arc::new(trusted_proxies),
            config: Arc::new(config),
            db,
            hasher,
            clock,
            templates: Arc::new(web::templates::Templates::new()),
            metrics,
        })))
    }
}

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// A bound, ready-to-run latch server.
pub struct App {
    listener: TcpListener,
    state: AppState,
    local_addr: SocketAddr,
}

impl App {
    /// Connects and migrates the database, binds the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> Result<Self, StartError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`App::build`] with another time source (tests move a [`crate::clock::ManualClock`]).
    pub async fn build_with_clock(
        mut config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.bind,
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| StartError::Other(e.to_string()))?;
        if config.public_url.is_none() {
            config.public_url = Some(format!("http://{local_addr}"));
        }
        let state = AppState::new(config, clock).await?;
        Ok(Self {
            listener,
            state,
            local_addr,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The shared state (tests use it to reach the database).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests and returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then finishes in-flight requests (at most 10 s).
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        let purge = tokio::spawn(purge_loop(state.clone()));
        let router = web::router(state.clone());
        let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            stop.await;
            let _ = stopped_tx.send(());
        });
        let mut server = std::pin::pin!(server.into_future());
        let result = tokio::select! {
            r = &mut server => r,
            _ = async {
                let _ = stopped_rx.await;
                tokio::time::sleep(Duration::from_secs(9)).await;
            } => {
                tracing::warn!("in-flight requests did not finish within 9 s; exiting anyway");
                Ok(())
            }
        };
        purge.abort();
        state.db.close().await;
        result
    }
}

/// Deletes expired sessions every ten minutes.
async fn purge_loop(state: AppState) {
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

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
