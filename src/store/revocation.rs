//! Revocation: one transaction that bumps the user's credential generation and ends what the
//! old credential opened (sessions, API tokens, pending reset links).
//!
//! Deleting rows alone cannot close the race with a sign-in that read the old password hash
//! (or the unlocked flag) before the revocation and inserts its session after it. The
//! generation closes it: a session or token records the generation it was proven under, the
//! lookups accept it only while that is still the user's, and the bump commits together with
//! the deletions, so whatever order the two transactions commit in, the late session is dead.

use super::{db_run, Db, StoreError};

/// Bumps the generation (and replaces the hash when `$2` is not NULL).
pub(super) const BUMP_SQL: &str = "UPDATE users SET credential_gen = credential_gen + 1, \
     password_hash = COALESCE($2, password_hash) WHERE id = $1 RETURNING credential_gen";
/// Ends every session of user `$1`.
pub(super) const END_SESSIONS_SQL: &str = "DELETE FROM sessions WHERE user_id = $1";
/// Ends every API token of user `$1`.
pub(super) const END_API_TOKENS_SQL: &str = "DELETE FROM api_tokens WHERE user_id = $1";
pub(super) const KEEP_API_TOKENS_SQL: &str =
    "UPDATE api_tokens SET credential_gen = $2 WHERE user_id = $1";
const END_RESET_LINKS_SQL: &str =
    "DELETE FROM tokens WHERE user_id = $1 AND purpose = 'reset_password'";

/// What a revocation replaces and keeps; every session always ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct Revocation<'a> {
    /// A new password hash (reset, change, a password set by an administrator); pending
    /// reset links die with the old password.
    pub new_hash: Option<&'a str>,
    /// Carry the API tokens over to the new generation instead of ending them (only a
    /// self-service password change where the user asked for it).
    pub keep_api_tokens: bool,
}

/// What a revocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revoked {
    /// The user's generation from now on (a session re-issued to the actor carries it).
    pub credential_gen: i64,
    /// Sessions deleted.
    pub sessions_ended: u64,
    /// API tokens deleted.
    pub api_tokens_ended: u64,
}

/// Applies `revocation` to user `id` in one transaction; `None` when there is no such user.
pub async fn revoke(
    db: &Db,
    id: i64,
    revocation: Revocation<'_>,
) -> Result<Option<Revoked>, StoreError> {
    Ok(db_run!(db, |pool| {
        let mut tx = pool.begin().await?;
        // The bump comes first: on PostgreSQL its row lock makes a concurrent revocation of
        // the same user wait, and a racing sign-in's session is then dead either way.
        let Some((credential_gen,)): Option<(i64,)> = sqlx::query_as(BUMP_SQL)
            .bind(id)
            .bind(revocation.new_hash)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let sessions_ended = sqlx::query(END_SESSIONS_SQL)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if revocation.new_hash.is_some() {
            sqlx::query(END_RESET_LINKS_SQL)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let api_tokens_ended = if revocation.keep_api_tokens {
            sqlx::query(KEEP_API_TOKENS_SQL)
                .bind(id)
                .bind(credential_gen)
                .execute(&mut *tx)
                .await?;
            0
        } else {
            sqlx::query(END_API_TOKENS_SQL)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        };
        tx.commit().await?;
        Some(Revoked {
            credential_gen,
            sessions_ended,
            api_tokens_ended,
        })
    }))
}
