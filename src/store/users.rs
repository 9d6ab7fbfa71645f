//! Users and roles.

use super::{db_run, Db, StoreError};
use crate::clock::Timestamp;

/// A user as stored (the password hash included: never serialise this type).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRecord {
    /// Primary key.
    pub id: i64,
    /// Display form (NFKC).
    pub username: String,
    /// Normalised address.
    pub email: String,
    /// Whether the address was confirmed.
    pub email_verified: bool,
    /// PHC string.
    pub password_hash: String,
    /// Optional profile field.
    pub first_name: Option<String>,
    /// Optional profile field.
    pub last_name: Option<String>,
    /// Space-separated role names (`user` is implicit and not stored).
    pub roles: String,
    /// Refused sign-in by an administrator.
    pub locked: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last successful sign-in.
    pub last_login_at: Option<Timestamp>,
    /// Credential generation: bumped by every revocation; sessions and API tokens made under
    /// an older one are dead.
    pub credential_gen: i64,
    /// Whether a second factor (TOTP) is on.
    pub mfa_enabled: bool,
    /// How many passkeys the user has (kept with the passkey rows).
    pub passkey_count: i64,
}

impl UserRecord {
    /// The explicit roles, sorted.
    pub fn role_list(&self) -> Vec<String> {
        split_roles(&self.roles)
    }
}

/// Splits the stored role column.
pub fn split_roles(roles: &str) -> Vec<String> {
    let mut list: Vec<String> = roles.split_whitespace().map(str::to_owned).collect();
    list.sort();
    list.dedup();
    list
}

/// What a new account needs.
#[derive(Debug)]
pub struct NewUser<'a> {
    /// Display form.
    pub username: &'a str,
    /// Unique key.
    pub username_norm: &'a str,
    /// Normalised address (also the unique key).
    pub email: &'a str,
    /// PHC string.
    pub password_hash: &'a str,
    /// Optional profile field.
    pub first_name: Option<&'a str>,
    /// Optional profile field.
    pub last_name: Option<&'a str>,
    /// Space-separated roles.
    pub roles: &'a str,
    /// Creation time.
    pub created_at: Timestamp,
}

const USER_COLUMNS: &str = "id, username, email, email_verified, password_hash, first_name, \
     last_name, roles, locked, created_at, last_login_at, credential_gen, mfa_enabled, \
     passkey_count";

/// The columns of [`UserRecord`] qualified by `alias`, for a join that reads the user with
/// another row (built once by its caller).
pub fn columns_of(alias: &str) -> String {
    let qualified: Vec<String> = USER_COLUMNS
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect();
    qualified.join(", ")
}

/// Inserts a user; [`StoreError::Conflict`] when the username or email is taken.
pub async fn insert(db: &Db, user: &NewUser<'_>) -> Result<UserRecord, StoreError> {
    let sql = format!(
        "INSERT INTO users (username, username_norm, email, email_norm, password_hash, \
         first_name, last_name, roles, created_at) \
         VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8) RETURNING {USER_COLUMNS}"
    );
    let row = db_run!(db, |pool| sqlx::query_as::<_, UserRecord>(&sql)
        .bind(user.username)
        .bind(user.username_norm)
        .bind(user.email)
        .bind(user.password_hash)
        .bind(user.first_name)
        .bind(user.last_name)
        .bind(user.roles)
        .bind(user.created_at)
        .fetch_one(pool)
        .await)?;
    Ok(row)
}

/// Which of the two unique keys is already used: `(username_taken, email_taken)`.
pub async fn taken(
    db: &Db,
    username_norm: &str,
    email_norm: &str,
) -> Result<(bool, bool), StoreError> {
    let sql = "SELECT username_norm = $1, email_norm = $2 FROM users \
               WHERE username_norm = $1 OR email_norm = $2";
    let rows: Vec<(bool, bool)> = db_run!(db, |pool| sqlx::query_as(sql)
        .bind(username_norm)
        .bind(email_norm)
        .fetch_all(pool)
        .await)?;
    Ok(rows
        .iter()
        .fold((false, false), |(u, e), (ru, re)| (u || *ru, e || *re)))
}

/// Finds a user by normalised username or email.
pub async fn find_by_login(db: &Db, norm: &str) -> Result<Option<UserRecord>, StoreError> {
    let column = if norm.contains('@') {
        "email_norm"
    } else {
        "username_norm"
    };
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {column} = $1");
    Ok(db_run!(db, |pool| sqlx::query_as::<_, UserRecord>(&sql)
        .bind(norm)
        .fetch_optional(pool)
        .await)?)
}

/// Finds a user by id.
pub async fn find_by_id(db: &Db, id: i64) -> Result<Option<UserRecord>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    Ok(db_run!(db, |pool| sqlx::query_as::<_, UserRecord>(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

/// All users, oldest first.
pub async fn list(db: &Db) -> Result<Vec<UserRecord>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id");
    Ok(db_run!(db, |pool| sqlx::query_as::<_, UserRecord>(&sql)
        .fetch_all(pool)
        .await)?)
}

/// Records a sign-in of user `id` checked under credential generation `gen` (and stores a
/// rehashed password), unless a revocation committed since: then nothing is written and it
/// returns `false` (a rehash of the old password must never overwrite a password reset that
/// committed meanwhile). When it is recorded, the sign-in's throttle events are given back as
/// `release` says, in the same statement on PostgreSQL (one round trip and one commit
/// fewer per sign-in); a sign-in that fails this way keeps them, like a wrong password.
pub async fn record_sign_in(
    db: &Db,
    (id, gen): (i64, i64),
    now: Timestamp,
    new_hash: Option<&str>,
    release: &super::throttle::Release<'_>,
) -> Result<bool, StoreError> {
    match db {
        Db::Sqlite(pool) => {
            let sql = "UPDATE users SET last_login_at = $1, \
                       password_hash = COALESCE($2, password_hash) \
                       WHERE id = $3 AND credential_gen = $4";
            let done = sqlx::query(sql)
                .bind(now)
                .bind(new_hash)
                .bind(id)
                .bind(gen)
                .execute(pool)
                .await?;
            let recorded = done.rows_affected() > 0;
            if recorded {
                super::throttle::apply(db, release).await?;
            }
            Ok(recorded)
        }
        Db::Postgres(pool) => {
            // A data-modifying WITH runs whether or not the query reads it.
            let sql = "WITH u AS (UPDATE users SET last_login_at = $1, \
                           password_hash = COALESCE($2, password_hash) \
                           WHERE id = $3 AND credential_gen = $4 RETURNING id), \
                       r AS (DELETE FROM throttle_events WHERE EXISTS (SELECT 1 FROM u) \
                           AND (id = ANY($5) OR key = $6)) \
                       SELECT COUNT(*) FROM u";
            let (recorded,): (i64,) = sqlx::query_as(sql)
                .bind(now)
                .bind(new_hash)
                .bind(id)
                .bind(gen)
                .bind(release.ids)
                .bind(release.clear)
                .fetch_one(pool)
                .await?;
            Ok(recorded > 0)
        }
    }
}

/// Whether a role of that name exists.
pub async fn role_exists(db: &Db, name: &str) -> Result<bool, StoreError> {
    let sql = "SELECT COUNT(*) FROM roles WHERE name = $1";
    let (count,): (i64,) = db_run!(db, |pool| sqlx::query_as(sql)
        .bind(name)
        .fetch_one(pool)
        .await)?;
    Ok(count > 0)
}

/// Marks `email` verified, if it is still the user's address.
pub async fn mark_verified(db: &Db, id: i64, email: &str) -> Result<bool, StoreError> {
    let sql = "UPDATE users SET email_verified = TRUE WHERE id = $1 AND email = $2";
    let n = db_run!(db, |pool| sqlx::query(sql)
        .bind(id)
        .bind(email)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// Replaces the address with a verified new one; [`StoreError::Conflict`] when taken.
pub async fn set_verified_email(db: &Db, id: i64, email: &str) -> Result<(), StoreError> {
    let sql = "UPDATE users SET email = $1, email_norm = $1, email_verified = TRUE WHERE id = $2";
    db_run!(db, |pool| sqlx::query(sql)
        .bind(email)
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Updates the optional profile fields.
pub async fn set_profile(
    db: &Db,
    id: i64,
    first_name: Option<&str>,
    last_name: Option<&str>,
) -> Result<(), StoreError> {
    let sql = "UPDATE users SET first_name = $1, last_name = $2 WHERE id = $3";
    db_run!(db, |pool| sqlx::query(sql)
        .bind(first_name)
        .bind(last_name)
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}
