//! Personal API tokens (`Authorization: Bearer`), keyed by the hash of their secret.

use std::sync::LazyLock;

use super::users::{self, UserRecord};
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

/// A token found by its secret, with its owner as stored (one read per bearer request).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BearerRecord {
    /// Token id.
    pub token_id: i64,
    /// Expiry.
    pub expires_at: Option<Timestamp>,
    /// Last use.
    pub last_used_at: Option<Timestamp>,
    /// The owner, whose credential generation is the token's (the lookup checks it).
    #[sqlx(flatten)]
    pub user: UserRecord,
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

/// [`find`]'s statement: the token and its owner's columns in one indexed read.
pub fn find_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT t.id AS token_id, t.expires_at, t.last_used_at, {} \
             FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.credential_gen = u.credential_gen",
            users::columns_of("u")
        )
    });
    SQL.as_str()
}

/// The token with this secret hash and its owner, while its credential generation is the
/// owner's.
pub async fn find(db: &Db, hash: &TokenHash) -> Result<Option<BearerRecord>, StoreError> {
    Ok(db_run!(db, |pool| sqlx::query_as::<_, BearerRecord>(
        find_sql()
    )
    .bind(hash.as_bytes())
    .fetch_optional(pool)
    .await)?)
}

/// Records the use of the tokens whose ids follow at `$1` (never moving it back). Written
/// behind the request by [`super::touches`].
pub const TOUCH_SQL: &str = "UPDATE api_tokens SET last_used_at = $1 \
     WHERE (last_used_at IS NULL OR last_used_at < $1) AND id IN (";

#[cfg(test)]
mod tests {
    /// `fast_read` reads the columns by position: a change of order must show here first.
    #[test]
    fn the_bearer_lookup_has_the_column_order_fast_read_expects() {
        assert_eq!(
            super::find_sql(),
            "SELECT t.id AS token_id, t.expires_at, t.last_used_at, u.id, u.username, u.email, \
             u.email_verified, u.password_hash, u.first_name, u.last_name, u.roles, u.locked, \
             u.created_at, u.last_login_at, u.credential_gen, u.mfa_enabled, u.passkey_count \
             FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.credential_gen = u.credential_gen"
        );
    }
}
