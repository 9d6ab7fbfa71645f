//! latch's schema migrations, tracked in a table of latch's own (`_latch_migrations`).
//!
//! sqlx's migrator records every migration in `_sqlx_migrations` and refuses to run when
//! that table holds versions it does not know, so an application that embeds latch could not
//! keep its own sqlx migrations in the same database. sqlx 0.8 cannot rename that table,
//! hence this small runner over the same embedded migration files (`sqlx::migrate!`): each
//! pending migration runs in a transaction with its row, under a lock (SQLite: `BEGIN
//! IMMEDIATE`; PostgreSQL: an advisory lock) so several processes may start at once, and an
//! applied migration whose file changed is refused. A database migrated by earlier versions
//! of latch (rows in `_sqlx_migrations`) is adopted once, without running anything again.

use sqlx::migrate::Migrator;

use super::{Db, StoreError};

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// The key of the PostgreSQL advisory lock held while migrating.
const PG_LOCK: i64 = 0x6c61_7463_6800;

const CREATE_SQLITE: &str = "CREATE TABLE IF NOT EXISTS _latch_migrations (\
     version INTEGER PRIMARY KEY, description TEXT NOT NULL, checksum BLOB NOT NULL, \
     applied_at INTEGER NOT NULL)";
const CREATE_POSTGRES: &str = "CREATE TABLE IF NOT EXISTS _latch_migrations (\
     version BIGINT PRIMARY KEY, description TEXT NOT NULL, checksum BYTEA NOT NULL, \
     applied_at BIGINT NOT NULL)";
const SQLX_TABLE_SQLITE: &str =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'";
const SQLX_TABLE_POSTGRES: &str =
    "SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() \
     AND tablename = '_sqlx_migrations'";

/// Applies every pending migration, all in one transaction that holds the lock.
pub async fn run(db: &Db) -> Result<(), StoreError> {
    macro_rules! migrate_in {
        ($tx:ident, $migrator:expr, $create:expr, $sqlx_table:expr) => {{
            sqlx::query($create).execute(&mut *$tx).await?;
            let (ours,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM _latch_migrations")
                .fetch_one(&mut *$tx)
                .await?;
            let (sqlx_table,): (i64,) = sqlx::query_as($sqlx_table).fetch_one(&mut *$tx).await?;
            if ours == 0 && sqlx_table > 0 {
                let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                    "SELECT version, checksum FROM _sqlx_migrations WHERE success = TRUE",
                )
                .fetch_all(&mut *$tx)
                .await?;
                for (version, checksum) in rows {
                    if let Some(m) = $migrator.iter().find(|m| m.version == version) {
                        record!($tx, m.version, &*m.description, &checksum);
                    }
                }
            }
            for migration in $migrator.iter() {
                let applied: Option<(Vec<u8>,)> =
                    sqlx::query_as("SELECT checksum FROM _latch_migrations WHERE version = $1")
                        .bind(migration.version)
                        .fetch_optional(&mut *$tx)
                        .await?;
                match applied {
                    Some((checksum,)) if checksum == *migration.checksum => continue,
                    Some(_) => {
                        return Err(StoreError::Migration(format!(
                            "migration {} ({}) was changed after it was applied",
                            migration.version, migration.description
                        )))
                    }
                    None => {}
                }
                sqlx::raw_sql(&migration.sql)
                    .execute(&mut *$tx)
                    .await
                    .map_err(|e| {
                        StoreError::Migration(format!(
                            "migration {} ({}): {e}",
                            migration.version, migration.description
                        ))
                    })?;
                record!(
                    $tx,
                    migration.version,
                    &*migration.description,
                    &*migration.checksum
                );
            }
            $tx.commit().await?;
            Ok(())
        }};
    }
    macro_rules! record {
        ($tx:ident, $version:expr, $description:expr, $checksum:expr) => {
            sqlx::query(
                "INSERT INTO _latch_migrations (version, description, checksum, applied_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind($version)
            .bind($description)
            .bind($checksum)
            .bind(now())
            .execute(&mut *$tx)
            .await?
        };
    }
    match db {
        Db::Sqlite(pool) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            migrate_in!(tx, SQLITE, CREATE_SQLITE, SQLX_TABLE_SQLITE)
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PG_LOCK)
                .execute(&mut *tx)
                .await?;
            migrate_in!(tx, POSTGRES, CREATE_POSTGRES, SQLX_TABLE_POSTGRES)
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}
