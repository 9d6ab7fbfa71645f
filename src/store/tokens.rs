//! Single-use mailed tokens, keyed by hash.

use super::{db_run, Db, StoreError};
use crate::clock::Timestamp;
use crate::domain::TokenHash;

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Confirms an email address (at sign-up, or a new address on change).
    VerifyEmail,
    /// Sets a new password.
    ResetPassword,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
        }
    }
}

/// A consumed token: whose it was, and for which address.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsumedToken {
    /// The account.
    pub user_id: i64,
    /// The address being verified (verification tokens).
    pub email: Option<String>,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// Stores a token.
pub async fn insert(
    db: &Db,
    hash: &TokenHash,
    user_id: i64,
    purpose: Purpose,
    email: Option<&str>,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO tokens (token_hash, user_id, purpose, email, created_at, expires_at) \
               VALUES ($1, $2, $3, $4, $5, $6)";
    db_run!(db, |pool| sqlx::query(sql)
        .bind(hash.as_bytes())
        .bind(user_id)
        .bind(purpose.as_str())
        .bind(email)
        .bind(now)
        .bind(expires_at)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Deletes the token and returns it: a token can be consumed once, even by racing requests.
pub async fn consume(
    db: &Db,
    hash: &TokenHash,
    purpose: Purpose,
) -> Result<Option<ConsumedToken>, StoreError> {
    let sql = "DELETE FROM tokens WHERE token_hash = $1 AND purpose = $2 \
               RETURNING user_id, email, expires_at";
    Ok(db_run!(db, |pool| sqlx::query_as::<_, ConsumedToken>(sql)
        .bind(hash.as_bytes())
        .bind(purpose.as_str())
        .fetch_optional(pool)
        .await)?)
}

/// Deletes every token of a user for one purpose (a new reset token, or a password change,
/// kills the older ones).
pub async fn delete_for_user(db: &Db, user_id: i64, purpose: Purpose) -> Result<(), StoreError> {
    let sql = "DELETE FROM tokens WHERE user_id = $1 AND purpose = $2";
    db_run!(db, |pool| sqlx::query(sql)
        .bind(user_id)
        .bind(purpose.as_str())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Deletes expired tokens.
pub async fn purge(db: &Db, now: Timestamp) -> Result<u64, StoreError> {
    let sql = "DELETE FROM tokens WHERE expires_at < $1";
    let n = db_run!(db, |pool| sqlx::query(sql)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n)
}
