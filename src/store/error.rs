/// What can go wrong in the store, in terms callers act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No row matched.
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write.
    #[error("conflict with an existing row")]
    Conflict,
    /// The database cannot be reached right now (pool timeout, I/O, busy).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database URL or options are wrong.
    #[error("{0}")]
    Config(String),
    /// Migrations could not be applied.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Anything else the driver reported.
    #[error("database error: {0}")]
    Backend(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(ref db) if db.is_unique_violation() => StoreError::Conflict,
            // SQLITE_BUSY / SQLITE_LOCKED after the busy timeout: transient.
            sqlx::Error::Database(ref db) if matches!(db.code().as_deref(), Some("5" | "6")) => {
                StoreError::Unavailable(e.to_string())
            }
            // PostgreSQL connection exceptions (08…) and an administrator's shutdown or a
            // crash (57P…): the server went away, not the query's fault.
            sqlx::Error::Database(ref db)
                if db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) =>
            {
                StoreError::Unavailable(e.to_string())
            }
            // A connection cut mid-message (a proxy or the network failing) reads as a
            // protocol error.
            sqlx::Error::Protocol(_) => StoreError::Unavailable(e.to_string()),
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            other => StoreError::Backend(other),
        }
    }
}
