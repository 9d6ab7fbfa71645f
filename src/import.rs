//! `latch import werkzeug`: users from a Flask application's database.
//!
//! Rows are read in pages of 500 from the source table (SQLite or PostgreSQL, opened
//! read-only), checked with latch's own rules, and inserted with their Werkzeug hash as is;
//! [`crate::passwords`] accepts it and replaces it with Argon2id at the first sign-in.
//! Existing users (same normalised username or email) are skipped, so a re-run is safe.

use std::str::FromStr;

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::domain::{EmailAddress, Username};
use crate::state::AppState;
use crate::store::users::{self, NewUser};
use crate::store::{db_run, Db, StoreError};
use crate::werkzeug::WerkzeugHash;

/// Where the users are and what their columns are called.
#[derive(Debug, Clone)]
pub struct Source {
    /// `sqlite://path` or `postgres://…`.
    pub url: String,
    /// Table name.
    pub table: String,
    /// Primary key column.
    pub id: String,
    /// Username column.
    pub username: String,
    /// Email column.
    pub email: String,
    /// Password hash column.
    pub hash: String,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Report {
    /// Rows read.
    pub seen: u64,
    /// Users created.
    pub imported: u64,
    /// Rows whose user already exists.
    pub existing: u64,
    /// Rows refused: id, username, reason.
    pub invalid: Vec<(String, String, String)>,
}

/// Why an import could not run.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A table or column name is not a plain identifier.
    #[error("{0:?} is not a valid table or column name (letters, digits and _ only)")]
    Identifier(String),
    /// The source database could not be opened or read.
    #[error("source database: {0}")]
    Source(String),
    /// latch's own database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

const PAGE: i64 = 500;

fn identifier(name: &str) -> Result<String, ImportError> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(format!("\"{name}\""))
    } else {
        Err(ImportError::Identifier(name.to_owned()))
    }
}

async fn open(url: &str) -> Result<Db, ImportError> {
    let source = |e: sqlx::Error| ImportError::Source(e.to_string());
    if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(source)?
            .read_only(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(source)?;
        Ok(Db::Sqlite(pool))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .map_err(source)?;
        Ok(Db::Postgres(pool))
    } else {
        Err(ImportError::Source(
            "the URL must start with sqlite:// or postgres://".into(),
        ))
    }
}

type Row = (String, Option<String>, Option<String>, Option<String>);

/// Imports every row; `progress(done, total)` is called after each page.
pub async fn werkzeug(
    state: &AppState,
    from: &Source,
    mut progress: impl FnMut(u64, u64),
) -> Result<Report, ImportError> {
    let table = identifier(&from.table)?;
    let (id, username, email, hash) = (
        identifier(&from.id)?,
        identifier(&from.username)?,
        identifier(&from.email)?,
        identifier(&from.hash)?,
    );
    let db = open(&from.url).await?;
    let source = |e: sqlx::Error| ImportError::Source(e.to_string());
    let count_sql = format!("SELECT COUNT(*) FROM {table}");
    let (total,): (i64,) =
        db_run!(&db, |pool| sqlx::query_as(&count_sql).fetch_one(pool).await).map_err(source)?;
    let page_sql = format!(
        "SELECT CAST({id} AS TEXT), CAST({username} AS TEXT), CAST({email} AS TEXT), CAST({hash} AS TEXT) \
         FROM {table} ORDER BY {id} LIMIT $1 OFFSET $2"
    );
    let mut report = Report::default();
    let mut offset = 0;
    loop {
        let rows: Vec<Row> = db_run!(&db, |pool| sqlx::query_as(&page_sql)
            .bind(PAGE)
            .bind(offset)
            .fetch_all(pool)
            .await)
        .map_err(source)?;
        if rows.is_empty() {
            break;
        }
        offset += PAGE;
        for row in rows {
            import_row(state, row, &mut report).await?;
        }
        progress(report.seen, u64::try_from(total).unwrap_or(0));
    }
    db.close().await;
    Ok(report)
}

/// A row checked against latch's rules: the reason it cannot be imported, if any.
fn check_row(
    name: Option<&str>,
    email: Option<&str>,
    hash: &str,
) -> Result<(Username, EmailAddress), String> {
    let username =
        Username::parse(name.unwrap_or_default()).map_err(|m| format!("invalid username: {m}"))?;
    let email = EmailAddress::parse(email.unwrap_or_default())
        .map_err(|m| format!("invalid email: {m}"))?;
    if WerkzeugHash::parse(hash).is_none() {
        return Err("unknown or unsupported password hash format".into());
    }
    Ok((username, email))
}

async fn import_row(
    state: &AppState,
    (id, name, email, hash): Row,
    report: &mut Report,
) -> Result<(), ImportError> {
    report.seen += 1;
    let hash = hash.unwrap_or_default();
    let (username, email) = match check_row(name.as_deref(), email.as_deref(), &hash) {
        Ok(checked) => checked,
        Err(reason) => {
            report.invalid.push((id, name.unwrap_or_default(), reason));
            return Ok(());
        }
    };
    let new = NewUser {
        username: username.as_str(),
        username_norm: &username.normalized(),
        email: email.as_str(),
        password_hash: &hash,
        first_name: None,
        last_name: None,
        roles: "",
        created_at: state.clock.now(),
    };
    match users::insert(&state.db, &new).await {
        Ok(_) => report.imported += 1,
        Err(StoreError::Conflict) => report.existing += 1,
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
