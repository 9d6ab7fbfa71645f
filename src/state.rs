//! The application state every capability shares: configuration, database, hasher, clock,
//! templates, mailer. It sits below every capability and the web plumbing, so they import it
//! and it imports none of them (docs/architecture.md).

use std::net::SocketAddr;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::passwords::PasswordHasher;
use crate::store::touches::{Touched, Touches};
use crate::store::{Db, StoreError};

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
    pub templates: Arc<crate::templates::Templates>,
    /// Prometheus exporter: installed by `latch serve` ([`crate::app::App`]); `None` for an
    /// application that embeds latch, whose process-wide recorder is its own to choose.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Outgoing mail.
    pub mailer: Arc<crate::mail::Mailer>,
    /// Parsed `trusted_proxies`.
    pub trusted_proxies: Arc<Vec<crate::domain::client_ip::IpRange>>,
    /// SQLite only: inline read path for the session and bearer lookups (see
    /// [`crate::store::fast_read`]).
    pub sqlite_reader: Option<crate::store::fast_read::SqliteReader>,
    /// PostgreSQL only: concurrent session lookups share one query (see
    /// [`crate::store::session_batch`]).
    pub session_batcher: Option<Arc<crate::store::session_batch::SessionBatcher>>,
    /// The path of `public_url` (`""` or like `/auth`): the prefix of latch's pages when a
    /// proxy strips it or an application nests latch there (see `web::base`).
    pub base_path: Arc<str>,
    /// Forward-auth rules, compiled once at start.
    pub access_rules: Arc<crate::domain::access::AccessRules>,
    /// Where an absolute `next` may lead (`redirect_domains`).
    pub return_domains: Arc<crate::domain::ReturnDomains>,
    /// The WebAuthn relying party of passkeys, or the one line that says why they are off
    /// (see [`Config::passkey_relying_party`]).
    pub relying_party: Result<Arc<webauthn_rs_core::WebauthnCore>, Arc<str>>,
    /// The opt-in session cache (`session_cache_ms`; `None` when off).
    pub session_cache: Option<crate::store::session_cache::SessionCache>,
    /// `last_seen_at` written behind the request (see [`crate::store::touches`]).
    pub touches: Arc<Touches>,
    /// API tokens' `last_used_at`, likewise.
    pub token_uses: Arc<Touches>,
    /// The per-request metric handles, registered once per label set.
    pub http_metrics: crate::telemetry::HttpMetrics,
    /// Passkey sign-ins started per client IP, counted in memory (see
    /// [`crate::throttle::passkey_start`]).
    pub passkey_starts: crate::domain::local_limit::LocalLimiter,
}

/// How long a passkey ceremony may take, and the timeout the browser is given.
pub const PASSKEY_CEREMONY_SECS: u64 = 5 * 60;

/// How many client addresses the in-memory passkey-start limit tracks at most (a few MiB);
/// past that, new clients wait until a minute-long window frees room.
pub const PASSKEY_START_CLIENTS: usize = 100_000;

impl AppState {
    /// Sessions or users changed through this node: the session cache, when on, forgets what
    /// it holds (see [`crate::store::session_cache`]).
    pub fn sessions_changed(&self) {
        if let Some(cache) = &self.session_cache {
            cache.invalidate();
        }
    }

    /// Connects and migrates the database and prepares the hasher: everything but the
    /// listener (the CLI's user commands use this too).
    pub async fn new(config: Config, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        Self::build(config, clock, None).await
    }

    /// [`AppState::new`] exporting metrics to `metrics` (what `latch serve` does; the library
    /// itself never installs a process-wide recorder).
    pub async fn with_metrics(
        config: Config,
        clock: Arc<dyn Clock>,
        metrics: metrics_exporter_prometheus::PrometheusHandle,
    ) -> Result<Self, StartError> {
        Self::build(config, clock, Some(metrics)).await
    }

    async fn build(
        config: Config,
        clock: Arc<dyn Clock>,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> Result<Self, StartError> {
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
        let access_rules = config.access_rules()?;
        let return_domains =
            crate::domain::ReturnDomains::new(&config.redirect_domains, !config.is_https());
        let trusted_proxies = config
            .trusted_proxies
            .iter()
            .filter_map(|p| crate::domain::client_ip::IpRange::parse(p))
            .collect();
        let sqlite_reader = db.sqlite_path().and_then(|path| {
            let count = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
            crate::store::fast_read::SqliteReader::open(&path, count)
        });
        let relying_party = config
            .passkey_relying_party()
            .map(|(rp_id, origin)| {
                // The core crate rather than `webauthn_rs::Webauthn`, whose passkey calls
                // require user verification; latch prefers it and records whether it was done.
                Arc::new(webauthn_rs_core::WebauthnCore::new_unsafe_experts_only(
                    "latch",
                    &rp_id,
                    vec![origin],
                    std::time::Duration::from_secs(PASSKEY_CEREMONY_SECS),
                    Some(false),
                    Some(false),
                ))
            })
            .map_err(Arc::from);
        let session_batcher = db.session_batcher();
        let passkey_starts = crate::domain::local_limit::LocalLimiter::new(
            u32::try_from(config.throttle_ip_passkey_starts_per_minute).unwrap_or(u32::MAX),
            60,
            PASSKEY_START_CLIENTS,
        );
        Ok(Self(Arc::new(Shared {
            passkey_starts,
            relying_party,
            sqlite_reader,
            session_cache: crate::store::session_cache::SessionCache::new(
                std::time::Duration::from_millis(config.session_cache_ms),
            ),
            session_batcher,
            touches: Touches::new(db.clone(), Touched::SessionLastSeen),
            token_uses: Touches::new(db.clone(), Touched::TokenLastUsed),
            access_rules: Arc::new(access_rules),
            return_domains: Arc::new(return_domains),
            base_path: Arc::from(config.base_path()),
            mailer: Arc::new(mailer),
            trusted_proxies: Arc::new(trusted_proxies),
            config: Arc::new(config),
            db,
            hasher,
            clock,
            templates: Arc::new(crate::templates::Templates::new()),
            metrics,
            http_metrics: crate::telemetry::HttpMetrics::default(),
        })))
    }
}

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is invalid.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
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
