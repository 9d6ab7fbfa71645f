//! The database: one store on SQLite or PostgreSQL.
//!
//! Both backends run the same SQL (`$1` placeholders, `RETURNING`, times bound from Rust as
//! Unix seconds). [`db_run!`] expands one query body into a match arm per pool, so each query
//! is written once and checked by the compiler against both drivers. Only the migrations
//! differ (`migrations/sqlite`, `migrations/postgres`), because DDL is where the dialects do.

pub mod admin;
pub mod api_tokens;
pub mod audit;
mod error;
pub mod fast_read;
mod files;
pub mod mfa;
mod migrate;
pub mod passkeys;
pub mod posts;
pub mod revocation;
pub mod session_batch;
pub mod session_cache;
pub mod sessions;
pub mod throttle;
pub mod tokens;
pub mod touches;
pub mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::config::{Config, DatabaseKind};
pub use error::StoreError;

/// A connection pool to one of the supported databases.
#[derive(Clone, Debug)]
pub enum Db {
    /// An embedded SQLite file.
    Sqlite(SqlitePool),
    /// A PostgreSQL server.
    Postgres(PgPool),
}

/// Runs the same query body against whichever pool `$db` holds.
///
/// ```ignore
/// db_run!(db, |pool| sqlx::query("SELECT 1").execute(pool).await)
/// ```
macro_rules! db_run {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use db_run;

impl Db {
    /// Opens a pool for the configured database (creating a SQLite file when missing). It
    /// connects once, so an unreachable database is reported at start.
    pub async fn connect(config: &Config) -> Result<Self, StoreError> {
        let kind = config
            .database_kind()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        let acquire = Duration::from_secs(config.db_acquire_timeout_secs);
        let url = config.database_url.as_str();
        match kind {
            DatabaseKind::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(|e| StoreError::Config(format!("database_url: {e}")))?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10));
                if !is_in_memory(url, options.get_filename()) {
                    files::restrict_sqlite_files(options.get_filename()).map_err(|e| {
                        StoreError::Config(format!(
                            "cannot create the database file {} readable by its owner only: {e}",
                            options.get_filename().display()
                        ))
                    })?;
                }
                let max = if config.db_max_connections == 0 {
                    4
                } else {
                    config.db_max_connections
                };
                let pool = SqlitePoolOptions::new()
                    .max_connections(max)
                    .min_connections(1)
                    .acquire_timeout(acquire)
                    // A ping before every query would double the cost of each request, and
                    // an embedded file has no connection to lose.
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await?;
                Ok(Db::Sqlite(pool))
            }
            DatabaseKind::Postgres => {
                let options = PgConnectOptions::from_str(url)
                    .map_err(|e| StoreError::Config(format!("database_url: {e}")))?;
                let max = if config.db_max_connections == 0 {
                    10
                } else {
                    config.db_max_connections
                };
                let pool = PgPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(acquire)
                    // No ping round trip before every query: a connection broken by a
                    // database restart fails one query (503) and is replaced.
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await?;
                Ok(Db::Postgres(pool))
            }
        }
    }

    /// Applies every migration not yet applied, tracked in `_latch_migrations` (apart from
    /// an embedding application's own sqlx migrations). Safe to run again, and from several
    /// processes at once (it takes a database lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate::run(self).await
    }

    /// The file of a SQLite database (`None` for PostgreSQL).
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        match self {
            Db::Sqlite(pool) => Some(pool.connect_options().get_filename().to_path_buf()),
            Db::Postgres(_) => None,
        }
    }

    /// PostgreSQL only: the batcher of session lookups (see [`session_batch`]).
    pub fn session_batcher(&self) -> Option<std::sync::Arc<session_batch::SessionBatcher>> {
        match self {
            Db::Sqlite(_) => None,
            Db::Postgres(pool) => Some(session_batch::SessionBatcher::new(pool)),
        }
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        db_run!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Closes every connection (at shutdown).
    pub async fn close(&self) {
        db_run!(self, |pool| pool.close().await)
    }
}

/// Whether a SQLite URL names an in-memory database (no file to protect).
fn is_in_memory(url: &str, filename: &std::path::Path) -> bool {
    let name = filename.to_string_lossy();
    name.is_empty()
        || name.contains(":memory:")
        || name.starts_with("file:sqlx-in-memory")
        || url.contains("mode=memory")
}
