//! Second-factor rows: the TOTP secret with its last accepted step, and hashed recovery
//! codes. Every change that turns the second factor on or off writes `users.mfa_enabled` in
//! the same transaction, so the flag the session lookup reads never disagrees with the rows.

use super::revocation::{BUMP_SQL, END_SESSIONS_SQL, KEEP_API_TOKENS_SQL};
use super::{db_run, Db, StoreError};
use crate::clock::Timestamp;

/// Inside a transaction `$tx` (in a [`db_run!`] arm): ends every session of `$user` under a
/// new credential generation and carries the API tokens over to it; evaluates to
/// `(new generation, sessions ended)`.
macro_rules! end_sessions {
    ($tx:ident, $user:expr) => {{
        let (credential_gen,): (i64,) = sqlx::query_as(BUMP_SQL)
            .bind($user)
            .bind(None::<&str>)
            .fetch_one(&mut *$tx)
            .await?;
        let ended = sqlx::query(END_SESSIONS_SQL)
            .bind($user)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
        sqlx::query(KEEP_API_TOKENS_SQL)
            .bind($user)
            .bind(credential_gen)
            .execute(&mut *$tx)
            .await?;
        (credential_gen, ended)
    }};
}

/// Inside a transaction `$tx`: replaces every recovery code of `$user` by `$hashes`.
macro_rules! replace_codes {
    ($tx:ident, $user:expr, $hashes:expr, $now:expr) => {{
        sqlx::query(DELETE_CODES_SQL)
            .bind($user)
            .execute(&mut *$tx)
            .await?;
        for hash in $hashes {
            sqlx::query(INSERT_CODE_SQL)
                .bind($user)
                .bind(&hash[..])
                .bind($now)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}

/// A user's TOTP secret as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TotpRecord {
    /// The shared secret (20 random bytes).
    pub secret: Vec<u8>,
    /// When the first right code turned it on; `None` while only set up.
    pub confirmed_at: Option<Timestamp>,
    /// The last accepted 30-second step (0: none yet).
    pub last_step: i64,
}

/// Stores a new unconfirmed secret, replacing an unconfirmed one; `false` (nothing written)
/// when TOTP is already on.
pub async fn set_up(
    db: &Db,
    user_id: i64,
    secret: &[u8],
    now: Timestamp,
) -> Result<bool, StoreError> {
    let sql = "INSERT INTO mfa_totp (user_id, secret, created_at, last_step) \
               VALUES ($1, $2, $3, 0) \
               ON CONFLICT (user_id) DO UPDATE SET secret = $2, created_at = $3, last_step = 0 \
               WHERE mfa_totp.confirmed_at IS NULL";
    let n = db_run!(db, |pool| sqlx::query(sql)
        .bind(user_id)
        .bind(secret)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// The user's TOTP row, confirmed or not.
pub async fn find(db: &Db, user_id: i64) -> Result<Option<TotpRecord>, StoreError> {
    let sql = "SELECT secret, confirmed_at, last_step FROM mfa_totp WHERE user_id = $1";
    Ok(db_run!(db, |pool| sqlx::query_as::<_, TotpRecord>(sql)
        .bind(user_id)
        .fetch_optional(pool)
        .await)?)
}

/// Accepts `step` of a confirmed secret by a compare-and-set: `true` for exactly one caller,
/// and never again for this step or an earlier one (replay, also from another process).
pub async fn accept_step(db: &Db, user_id: i64, step: i64) -> Result<bool, StoreError> {
    let sql = "UPDATE mfa_totp SET last_step = $2 \
               WHERE user_id = $1 AND last_step < $2 AND confirmed_at IS NOT NULL";
    let n = db_run!(db, |pool| sqlx::query(sql)
        .bind(user_id)
        .bind(step)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// What confirming a secret did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirmed {
    /// The user's credential generation from now on (the re-issued session carries it).
    pub credential_gen: i64,
    /// Sessions ended.
    pub sessions_ended: u64,
}

/// Turns TOTP on in one transaction: the unconfirmed secret accepts `step` (compare-and-set),
/// `users.mfa_enabled` is set, the recovery codes are replaced by `code_hashes`, and every
/// session ends under a new credential generation (API tokens are carried over). `None` when
/// there is no unconfirmed secret or the step was already used.
pub async fn confirm(
    db: &Db,
    user_id: i64,
    step: i64,
    code_hashes: &[[u8; 32]],
    now: Timestamp,
) -> Result<Option<Confirmed>, StoreError> {
    let accept = "UPDATE mfa_totp SET confirmed_at = $3, last_step = $2 \
                  WHERE user_id = $1 AND confirmed_at IS NULL AND last_step < $2";
    let enable = "UPDATE users SET mfa_enabled = TRUE WHERE id = $1";
    Ok(db_run!(db, |pool| {
        let mut tx = pool.begin().await?;
        let n = sqlx::query(accept)
            .bind(user_id)
            .bind(step)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n != 1 {
            return Ok(None);
        }
        sqlx::query(enable).bind(user_id).execute(&mut *tx).await?;
        replace_codes!(tx, user_id, code_hashes, now);
        let (credential_gen, sessions_ended) = end_sessions!(tx, user_id);
        tx.commit().await?;
        Some(Confirmed {
            credential_gen,
            sessions_ended,
        })
    }))
}

const DELETE_CODES_SQL: &str = "DELETE FROM mfa_recovery_codes WHERE user_id = $1";
const INSERT_CODE_SQL: &str =
    "INSERT INTO mfa_recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)";

/// Uses a recovery code: deletes its row; `true` for exactly one caller.
pub async fn use_recovery_code(db: &Db, user_id: i64, hash: &[u8; 32]) -> Result<bool, StoreError> {
    let sql = "DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND code_hash = $2";
    let n = db_run!(db, |pool| sqlx::query(sql)
        .bind(user_id)
        .bind(&hash[..])
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Replaces every recovery code of a user whose TOTP is on; `false` (nothing written) when it
/// is off.
pub async fn replace_recovery_codes(
    db: &Db,
    user_id: i64,
    code_hashes: &[[u8; 32]],
    now: Timestamp,
) -> Result<bool, StoreError> {
    let lock = "UPDATE users SET mfa_enabled = mfa_enabled WHERE id = $1 AND mfa_enabled = TRUE";
    Ok(db_run!(db, |pool| {
        let mut tx = pool.begin().await?;
        // Writing the user row first serialises this with a concurrent disable or reset.
        let on = sqlx::query(lock)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if on != 1 {
            return Ok(false);
        }
        replace_codes!(tx, user_id, code_hashes, now);
        tx.commit().await?;
        true
    }))
}

/// How many unused recovery codes the user has.
pub async fn recovery_codes_left(db: &Db, user_id: i64) -> Result<i64, StoreError> {
    let sql = "SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = $1";
    let (n,): (i64,) = db_run!(db, |pool| sqlx::query_as(sql)
        .bind(user_id)
        .fetch_one(pool)
        .await)?;
    Ok(n)
}

/// What removing the second factor did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// Whether a confirmed second factor was on before.
    pub was_on: bool,
    /// Sessions ended (only when asked to).
    pub sessions_ended: u64,
    /// Passkeys removed (only with the sessions: a reset).
    pub passkeys_removed: u64,
}

/// Removes every second factor of a user (TOTP, set up or on, and recovery codes) in one
/// transaction; with `end_sessions` (an administrator's reset), also the passkeys, and every
/// session ends under a new credential generation (API tokens carried over). `None` when
/// there is no such user.
pub async fn remove_all(
    db: &Db,
    user_id: i64,
    end_sessions: bool,
) -> Result<Option<Removed>, StoreError> {
    let disable = "UPDATE users SET mfa_enabled = FALSE WHERE id = $1 RETURNING id";
    let delete_totp = "DELETE FROM mfa_totp WHERE user_id = $1 RETURNING confirmed_at";
    Ok(db_run!(db, |pool| {
        let mut tx = pool.begin().await?;
        // The user row first: it serialises this with a concurrent confirm or regeneration.
        let found: Option<(i64,)> = sqlx::query_as(disable)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Ok(None);
        }
        let totp: Option<(Option<i64>,)> = sqlx::query_as(delete_totp)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
        let was_on = totp.is_some_and(|(confirmed_at,)| confirmed_at.is_some());
        sqlx::query(DELETE_CODES_SQL)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let (mut sessions_ended, mut passkeys_removed) = (0, 0);
        if end_sessions {
            passkeys_removed = sqlx::query("DELETE FROM passkeys WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("UPDATE users SET passkey_count = 0 WHERE id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            sessions_ended = end_sessions!(tx, user_id).1;
        }
        tx.commit().await?;
        Some(Removed {
            was_on,
            sessions_ended,
            passkeys_removed,
        })
    }))
}
