//! Failure counters for throttling, keyed by a short string (`user:<id>`, `login:<hash>`,
//! `ip:<addr>`).

use super::{db_run, Db, StoreError};
use crate::clock::Timestamp;

/// One limit to check in [`reserve`]: at most `max` events of `key` since `since`.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    /// The counter.
    pub key: &'a str,
    /// Events allowed in the window.
    pub max: i64,
    /// Start of the window.
    pub since: Timestamp,
}

/// The outcome of [`reserve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Every limit had room: one event was recorded per key (these ids), before the attempt
    /// is evaluated. A failed attempt keeps them; others give them back with [`release`].
    Granted(Vec<i64>),
    /// The check at this index is used up; its oldest event in the window is at `oldest`.
    Refused {
        /// Index into the checks.
        index: usize,
        /// Time of the oldest counted event.
        oldest: Option<Timestamp>,
    },
}

/// Counts and decides atomically: either every check has room and one event per key is
/// recorded, or nothing is written. Concurrent callers are serialised per key (SQLite:
/// `BEGIN IMMEDIATE` takes the single write lock before reading; PostgreSQL: a transaction
/// advisory lock per key, taken in a fixed order so two callers cannot deadlock), so N
/// parallel attempts never evaluate more than the limit.
pub async fn reserve(
    db: &Db,
    checks: &[Check<'_>],
    now: Timestamp,
) -> Result<Reservation, StoreError> {
    match db {
        Db::Sqlite(pool) => reserve_sqlite(pool, checks, now).await,
        Db::Postgres(pool) => reserve_postgres(pool, checks, now).await,
    }
}

/// [`reserve`] on SQLite: `BEGIN IMMEDIATE` holds the database's one write lock from before
/// the counts until the commit, and the statements run in-process (no round trips to save).
async fn reserve_sqlite(
    pool: &sqlx::SqlitePool,
    checks: &[Check<'_>],
    now: Timestamp,
) -> Result<Reservation, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for (index, check) in checks.iter().enumerate() {
        let (count, oldest): (i64, Option<Timestamp>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(at) FROM throttle_events WHERE key = $1 AND at >= $2",
        )
        .bind(check.key)
        .bind(check.since)
        .fetch_one(&mut *tx)
        .await?;
        if count >= check.max {
            return Ok(Reservation::Refused { index, oldest });
        }
    }
    let mut ids = Vec::with_capacity(checks.len());
    for check in checks {
        let (id,): (i64,) =
            sqlx::query_as("INSERT INTO throttle_events (key, at) VALUES ($1, $2) RETURNING id")
                .bind(check.key)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
        ids.push(id);
    }
    tx.commit().await?;
    Ok(Reservation::Granted(ids))
}

/// [`reserve`] on PostgreSQL: one call of the function `latch_throttle_reserve` (see its
/// migration), one round trip instead of four (begin, the locks, the counts and inserts,
/// commit): the database's own work is part of every sign-in's cost, on the same cores. As
/// one statement it is its own transaction, so the advisory locks are held until it commits.
async fn reserve_postgres(
    pool: &sqlx::PgPool,
    checks: &[Check<'_>],
    now: Timestamp,
) -> Result<Reservation, StoreError> {
    let keys: Vec<&str> = checks.iter().map(|c| c.key).collect();
    let maxes: Vec<i64> = checks.iter().map(|c| c.max).collect();
    let sinces: Vec<Timestamp> = checks.iter().map(|c| c.since).collect();
    let rows: Vec<(i64, i64, Option<Timestamp>, Option<i64>)> =
        sqlx::query_as("SELECT * FROM latch_throttle_reserve($1, $2, $3, $4)")
            .bind(&keys)
            .bind(&maxes)
            .bind(&sinces)
            .bind(now)
            .fetch_all(pool)
            .await?;
    if let Some(index) = rows.iter().position(|(n, max, _, _)| n >= max) {
        // Nothing was inserted.
        return Ok(Reservation::Refused {
            index,
            oldest: rows[index].2,
        });
    }
    let ids: Option<Vec<i64>> = rows.iter().map(|(_, _, _, id)| *id).collect();
    let ids =
        ids.ok_or_else(|| StoreError::Unavailable("a throttle event was not recorded".into()))?;
    Ok(Reservation::Granted(ids))
}

/// Events of [`reserve`] to give back, and a key whose events to forget: what a successful
/// attempt undoes. Applied by [`apply`], or with a sign-in's own bookkeeping
/// ([`super::users::record_sign_in`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Release<'a> {
    /// The attempt's events.
    pub ids: &'a [i64],
    /// A key whose every event goes too (a completed sign-in clears the account's count).
    pub clear: Option<&'a str>,
}

/// Applies `release` on its own.
pub async fn apply(db: &Db, release: &Release<'_>) -> Result<(), StoreError> {
    delete_events(db, release.ids, release.clear).await
}

/// Gives back events recorded by [`reserve`] (an attempt that turned out not to be a failure).
pub async fn release(db: &Db, ids: &[i64]) -> Result<(), StoreError> {
    delete_events(db, ids, None).await
}

/// Forgets the failures of `key` (a successful sign-in clears the account's count).
pub async fn clear(db: &Db, key: &str) -> Result<(), StoreError> {
    delete_events(db, &[], Some(key)).await
}

/// Deletes the events `ids` and every event of `key`, two ids per statement (a sign-in
/// reserves at most two: the account's and the client IP's). No row has the id -1, and
/// `key = NULL` matches nothing.
async fn delete_events(db: &Db, ids: &[i64], key: Option<&str>) -> Result<(), StoreError> {
    let sql = "DELETE FROM throttle_events WHERE id = $1 OR id = $2 OR key = $3";
    let mut pairs: Vec<(i64, i64)> = ids
        .chunks(2)
        .map(|pair| (pair[0], pair.get(1).copied().unwrap_or(-1)))
        .collect();
    if pairs.is_empty() && key.is_some() {
        pairs.push((-1, -1));
    }
    for (index, (first, second)) in pairs.into_iter().enumerate() {
        let key = if index == 0 { key } else { None };
        db_run!(db, |pool| sqlx::query(sql)
            .bind(first)
            .bind(second)
            .bind(key)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Deletes failures older than `before`.
pub async fn purge(db: &Db, before: Timestamp) -> Result<u64, StoreError> {
    let sql = "DELETE FROM throttle_events WHERE at < $1";
    let n = db_run!(db, |pool| sqlx::query(sql)
        .bind(before)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n)
}
