//! The application: the router of every capability, the listener and graceful shutdown.

pub use crate::state::{AppState, StartError};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, MetricsBind};

use axum::routing::get;
use axum::Router;

/// Every capability's routes under the shared middleware: what `latch serve` answers.
/// `/metrics` is here only when `metrics_bind` leaves it on the main listener.
pub fn router(state: AppState) -> Router {
    let metrics_here = matches!(state.config.metrics_bind(), Ok(MetricsBind::Main));
    crate::web::with_middleware(routes(metrics_here, &state), state)
}

/// latch's pages and API for another axum application: the same routes and layers as
/// [`router`] but no fallback (the host application keeps its own 404) and no `/metrics`
/// (the host decides what it exports). Merge it into the host's router:
///
/// ```no_run
/// # async fn run() -> anyhow::Result<()> {
/// use axum::{routing::get, Router};
/// use latch::web::extract::RequireUser;
///
/// async fn secret(RequireUser(user): RequireUser) -> String {
///     format!("hello, {}", user.username)
/// }
///
/// let state = latch::state::AppState::new(
///     latch::config::Config::default(),
///     std::sync::Arc::new(latch::clock::SystemClock),
/// )
/// .await?;
/// let app: Router = Router::new()
///     .route("/secret", get(secret))
///     .with_state(state.clone())
///     .merge(latch::app::embedded_router(state));
/// # Ok(())
/// # }
/// ```
pub fn embedded_router(state: AppState) -> Router {
    crate::web::layered(routes(false, &state), state)
}

fn routes(with_metrics: bool, state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .merge(crate::auth::routes())
        .merge(crate::mfa::routes())
        .merge(crate::passkeys::routes())
        .merge(crate::forward_auth::routes())
        .merge(crate::account::routes())
        .merge(crate::tokens::routes())
        .merge(crate::admin::routes())
        .merge(crate::posts::routes())
        .merge(crate::client::routes())
        .merge(crate::ops::routes(with_metrics))
        .route("/api/openapi.json", get(crate::openapi::openapi_json))
        .route("/static/{file}", get(crate::web::assets::static_file));
    // The hold of `require_mfa_roles` only where a role needs it: the setting is fixed at
    // start, and the layer would otherwise cost every request a boxed future for nothing.
    if state.config.require_mfa_roles.is_empty() {
        routes
    } else {
        routes.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::mfa::gate::hold,
        ))
    }
}

/// `/metrics` alone, for its own listener (`metrics_bind` set to an address).
pub fn metrics_router(state: AppState) -> Router {
    crate::web::with_middleware(crate::ops::metrics_routes(), state)
}

impl crate::handle::Latch {
    /// latch's pages and API as a `Router<()>` to merge into an application (see
    /// [`embedded_router`]).
    pub fn router(&self) -> Router {
        embedded_router(self.state().clone())
    }
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
        let state =
            AppState::with_metrics(config, clock, crate::telemetry::metrics_handle()).await?;
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
        let purge = tokio::spawn(crate::handle::purge_loop(state.clone()));
        let limits = crate::server::Limits::from_config(&state.config);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut servers = tokio::task::JoinSet::new();
        servers.spawn(crate::server::serve(
            self.listener,
            router(state.clone()),
            limits,
            stop_rx.clone(),
        ));
        if let Some(listener) = self.metrics_listener {
            servers.spawn(crate::server::serve(
                listener,
                metrics_router(state.clone()),
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
        for touches in [&state.touches, &state.token_uses] {
            if let Err(e) = touches.flush().await {
                tracing::warn!(error = %e, "could not write a last use at shutdown");
            }
        }
        state.db.close().await;
        Ok(())
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
