//! Wiring: state, router, listener and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, MetricsBind};
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
    metrics_listener: Option<TcpListener>,
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
        let metrics_listener = match config
            .metrics_bind()
            .map_err(|e| StartError::Other(e.to_string()))?
        {
            MetricsBind::Addr(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?,
            ),
            MetricsBind::Main | MetricsBind::Off => None,
        };
        if config.public_url.is_none() {
            config.public_url = Some(format!("http://{local_addr}"));
        }
        let state = AppState::new(config, clock).await?;
        Ok(Self {
            listener,
            metrics_listener,
            state,
            local_addr,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the separate `/metrics` listener, when `metrics_bind` names one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The shared state (tests use it to reach the database).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests and returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then stops accepting, closes idle connections and
    /// finishes in-flight requests (at most 9 s).
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        let purge = tokio::spawn(purge_loop(state.clone()));
        let limits = crate::server::Limits::from_config(&state.config);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut servers = tokio::task::JoinSet::new();
        servers.spawn(crate::server::serve(
            self.listener,
            web::router(state.clone()),
            limits,
            stop_rx.clone(),
        ));
        if let Some(listener) = self.metrics_listener {
            servers.spawn(crate::server::serve(
                listener,
                web::metrics_router(state.clone()),
                limits,
                stop_rx,
            ));
        }
        stop.await;
        let _ = stop_tx.send(true);
        let drained = async { while servers.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(9), drained)
            .await
            .is_err()
        {
            tracing::warn!("in-flight requests did not finish within 9 s; exiting anyway");
            servers.abort_all();
        }
        purge.abort();
        state.db.close().await;
        Ok(())
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

/// Completes at SIGTERM or SIGINT (Ctrl-C). The handlers are installed here, when the
/// future is made, not when it is first polled: a signal that arrives while the server is
/// still starting must stop it gracefully, not kill it with the default action.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let streams = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let (mut terminate, mut interrupt) = streams;
            let term = async {
                match terminate.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match interrupt.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            };
            tokio::select! {
                _ = term => {},
                _ = int => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown signal received; finishing in-flight requests");
    }
}
