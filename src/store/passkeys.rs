//! Passkey rows and the ceremonies waiting between their start and finish.
//!
//! A ceremony is taken by deleting its row (`DELETE … RETURNING`), so a challenge works once
//! even when two nodes receive the same response; a sign-in advances the signature counter by
//! a compare-and-set, so two racing uses of one counter value get one success.

use super::{db_run, Db, StoreError};
use crate::clock::Timestamp;

/// A passkey as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PasskeyRecord {
    /// Primary key (the id the API shows).
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// The credential id the authenticator chose.
    pub credential_id: Vec<u8>,
    /// The user's WebAuthn user handle.
    pub user_handle: Vec<u8>,
    /// The name its owner gave it.
    pub name: String,
    /// The verified credential as JSON (public key and flags).
    pub credential: String,
    /// The last signature counter seen (0: the authenticator keeps none).
    pub sign_count: i64,
    /// When it was registered.
    pub created_at: Timestamp,
    /// When it last signed someone in.
    pub last_used_at: Option<Timestamp>,
}

const COLUMNS: &str = "id, user_id, credential_id, user_handle, name, credential, sign_count, \
                       created_at, last_used_at";

/// A new passkey.
#[derive(Debug)]
pub struct NewPasskey<'a> {
    /// Owner.
    pub user_id: i64,
    /// The credential id.
    pub credential_id: &'a [u8],
    /// The user's handle.
    pub user_handle: &'a [u8],
    /// Its name.
    pub name: &'a str,
    /// The credential as JSON.
    pub credential: &'a str,
    /// The counter at registration.
    pub sign_count: i64,
}

/// Moves `users.passkey_count` by `delta` in step with the rows (`SET x = x + d` reads the
/// row it locks, so concurrent changes add up).
const COUNT_SQL: &str = "UPDATE users SET passkey_count = passkey_count + $2 WHERE id = $1";

/// Stores a passkey (and counts it on the user row, in one transaction);
/// [`StoreError::Conflict`] when the credential id is registered already (to this user or
/// another).
pub async fn insert(
    db: &Db,
    new: &NewPasskey<'_>,
    now: Timestamp,
) -> Result<PasskeyRecord, StoreError> {
    let sql = format!(
        "INSERT INTO passkeys (user_id, credential_id, user_handle, name, credential, \
         sign_count, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    );
    Ok(db_run!(db, |pool| {
        let mut tx = pool.begin().await?;
        let record = sqlx::query_as::<_, PasskeyRecord>(&sql)
            .bind(new.user_id)
            .bind(new.credential_id)
            .bind(new.user_handle)
            .bind(new.name)
            .bind(new.credential)
            .bind(new.sign_count)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(COUNT_SQL)
            .bind(new.user_id)
            .bind(1_i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        record
    }))
}

/// The passkeys of a user, oldest first.
pub async fn list(db: &Db, user_id: i64) -> Result<Vec<PasskeyRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY id");
    Ok(db_run!(db, |pool| sqlx::query_as::<_, PasskeyRecord>(
        &sql
    )
    .bind(user_id)
    .fetch_all(pool)
    .await)?)
}

/// How many passkeys a user has.
pub async fn count(db: &Db, user_id: i64) -> Result<i64, StoreError> {
    let sql = "SELECT COUNT(*) FROM passkeys WHERE user_id = $1";
    let (n,): (i64,) = db_run!(db, |pool| sqlx::query_as(sql)
        .bind(user_id)
        .fetch_one(pool)
        .await)?;
    Ok(n)
}

/// The passkey with this credential id.
pub async fn find_by_credential_id(
    db: &Db,
    credential_id: &[u8],
) -> Result<Option<PasskeyRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE credential_id = $1");
    Ok(db_run!(db, |pool| sqlx::query_as::<_, PasskeyRecord>(
        &sql
    )
    .bind(credential_id)
    .fetch_optional(pool)
    .await)?)
}

/// Renames passkey `id` of `user_id`; `None` when the user has no such passkey.
pub async fn rename(
    db: &Db,
    user_id: i64,
    id: i64,
    name: &str,
) -> Result<Option<PasskeyRecord>, StoreError> {
    let sql =
        format!("UPDATE passkeys SET name = $3 WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}");
    Ok(db_run!(db, |pool| sqlx::query_as::<_, PasskeyRecord>(
        &sql
    )
    .bind(id)
    .bind(user_id)
    .bind(name)
    .fetch_optional(pool)
    .await)?)
}

/// Deletes passkey `id` of `user_id` (and uncounts it, in one transaction); `false` when the
/// user has no such passkey.
pub async fn delete(db: &Db, user_id: i64, id: i64) -> Result<bool, StoreError> {
    let sql = "DELETE FROM passkeys WHERE id = $1 AND user_id = $2";
    Ok(db_run!(db, |pool| {
        let mut tx = pool.begin().await?;
        let n = sqlx::query(sql)
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 1 {
            sqlx::query(COUNT_SQL)
                .bind(user_id)
                .bind(-1_i64)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        n == 1
    }))
}

/// Records a use: the counter moves from `seen` to `counter` only if nobody moved it since
/// (`false` otherwise: another use of the same counter value won).
pub async fn record_use(
    db: &Db,
    id: i64,
    seen: i64,
    counter: i64,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let sql = "UPDATE passkeys SET sign_count = $3, last_used_at = $4 \
               WHERE id = $1 AND sign_count = $2";
    let n = db_run!(db, |pool| sqlx::query(sql)
        .bind(id)
        .bind(seen)
        .bind(counter)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// What a ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Adding a passkey to a signed-in user.
    Register,
    /// Signing in (or completing a pending second step).
    SignIn,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::SignIn => "sign_in",
        }
    }
}

/// A ceremony taken from the store.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Ceremony {
    /// The user a registration is for (`None` for a sign-in).
    pub user_id: Option<i64>,
    /// webauthn-rs's state of the ceremony, as JSON.
    pub state: String,
    /// When it stops being accepted.
    pub expires_at: Timestamp,
}

/// Stores a started ceremony under its challenge.
pub async fn start_ceremony(
    db: &Db,
    challenge: &[u8],
    purpose: Purpose,
    user_id: Option<i64>,
    state: &str,
    expires_at: Timestamp,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO passkey_challenges (challenge, purpose, user_id, state, expires_at) \
               VALUES ($1, $2, $3, $4, $5)";
    db_run!(db, |pool| sqlx::query(sql)
        .bind(challenge)
        .bind(purpose.as_str())
        .bind(user_id)
        .bind(state)
        .bind(expires_at)
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Takes the ceremony of `challenge` for `purpose`: its row is deleted, so exactly one caller
/// gets it. Expiry is the caller's to check (an expired row is still removed).
pub async fn take_ceremony(
    db: &Db,
    challenge: &[u8],
    purpose: Purpose,
) -> Result<Option<Ceremony>, StoreError> {
    let sql = "DELETE FROM passkey_challenges WHERE challenge = $1 AND purpose = $2 \
               RETURNING user_id, state, expires_at";
    Ok(db_run!(db, |pool| sqlx::query_as::<_, Ceremony>(sql)
        .bind(challenge)
        .bind(purpose.as_str())
        .fetch_optional(pool)
        .await)?)
}

/// Deletes ceremonies that expired before `now` (run with the periodic purge).
pub async fn purge_ceremonies(db: &Db, now: Timestamp) -> Result<u64, StoreError> {
    let sql = "DELETE FROM passkey_challenges WHERE expires_at < $1";
    Ok(db_run!(db, |pool| sqlx::query(sql)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?)
}
