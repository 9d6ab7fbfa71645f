//! Personal API tokens (`Authorization: Bearer`), keyed by the hash of their secret.

use super::{db_run, Db, StoreError};
use crate::clock::Timestamp;
use crate::domain::TokenHash;

/// A token as its owner sees it (never the secret).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiTokenRecord {
    /// Public id.
    pub id: i64,
    /// The owner's label.
    pub name: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last authenticated request (to the minute).
    pub last_used_at: Option<Timestamp>,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
}

/// A token found by its secret, with its owner's id.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BearerRecord {
    /// Token id.
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// Expiry.
    pub expires_at: Option<Timestamp>,
    /// Last use.
    pub last_used_at: Option<Timestamp>,
    /// The owner's credential generation it was made under.
    pub credential_gen: i64,
}

const COLUMNS: &str = "id, name, created_at, last_used_at, expires_at";

/// Stores a new token for `user_id`, valid while the user's credential generation is `gen`
/// (the one the request creating it was authenticated under; see [`super::revocation`]).
pub async fn insert(
    db: &Db,
    hash: &TokenHash,
    (user_id, gen): (i64, i64),
    name: &str,
    now: Timestamp,
    expires_at: Option<Timestamp>,
) -> Result<ApiTokenRecord, StoreError> {
    let sql = format!(
        "INSERT INTO api_tokens (token_hash, user_id, name, created_at, expires_at, \
         credential_gen) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    );
    Ok(db_run!(db, |pool| sqlx::query_as::<_, ApiTokenRecord>(
        &sql
    )
    .bind(hash.as_bytes())
    .bind(user_id)
    .bind(name)
    .bind(now)
    .bind(expires_at)
    .bind(gen)
    .fetch_one(pool)
    .await)?)
}

/// The tokens of a user, newest first.
pub async fn list_for_user(db: &Db, user_id: i64) -> Result<Vec<ApiTokenRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE user_id = $1 \
         AND credential_gen = (SELECT credential_gen FROM users WHERE id = $1) ORDER BY id DESC"
    );
    Ok(db_run!(db, |pool| sqlx::query_as::<_, ApiTokenRecord>(
        &sql
    )
    .bind(user_id)
    .fetch_all(pool)
    .await)?)
}

/// Revokes one token of a user; `false` when the user has no token with that id.
pub async fn delete_for_user(db: &Db, user_id: i64, id: i64) -> Result<bool, StoreError> {
    let sql = "DELETE FROM api_tokens WHERE user_id = $1 AND id = $2";
    let n = db_run!(db, |pool| sqlx::query(sql)
        .bind(user_id)
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// The token with this secret hash, while its credential generation is its owner's.
pub async fn find(db: &Db, hash: &TokenHash) -> Result<Option<BearerRecord>, StoreError> {
    let sql = "SELECT t.id, t.user_id, t.expires_at, t.last_used_at, t.credential_gen \
               FROM api_tokens t JOIN users u ON u.id = t.user_id \
               WHERE t.token_hash = $1 AND t.credential_gen = u.credential_gen";
    Ok(db_run!(db, |pool| sqlx::query_as::<_, BearerRecord>(sql)
        .bind(hash.as_bytes())
        .fetch_optional(pool)
        .await)?)
}

/// Records a use.
pub async fn touch(db: &Db, id: i64, now: Timestamp) -> Result<(), StoreError> {
    let sql = "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2";
    db_run!(db, |pool| sqlx::query(sql)
        .bind(now)
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}
