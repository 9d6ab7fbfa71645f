//! Failure counters for throttling, keyed by a string (`user:<id>`, `login:<name>`, `ip:<addr>`).

use super::{db_run, Db, StoreError};
use crate::clock::Timestamp;

/// Failures of `key` since `since`: how many, and the time of the oldest.
pub async fn count_since(
    db: &Db,
    key: &str,
    since: Timestamp,
) -> Result<(i64, Option<Timestamp>), StoreError> {
    let sql = "SELECT COUNT(*), MIN(at) FROM throttle_events WHERE key = $1 AND at >= $2";
    let row: (i64, Option<Timestamp>) = db_run!(db, |pool| sqlx::query_as(sql)
        .bind(key)
        .bind(since)
        .fetch_one(pool)
        .await)?;
    Ok(row)
}

/// Records one failure for each key.
pub async fn record(db: &Db, keys: &[&str], now: Timestamp) -> Result<(), StoreError> {
    let sql = "INSERT INTO throttle_events (key, at) VALUES ($1, $2)";
    for key in keys {
        db_run!(db, |pool| sqlx::query(sql)
            .bind(*key)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Forgets the failures of `key` (a successful sign-in clears the account's count).
pub async fn clear(db: &Db, key: &str) -> Result<(), StoreError> {
    let sql = "DELETE FROM throttle_events WHERE key = $1";
    db_run!(db, |pool| sqlx::query(sql)
        .bind(key)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
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
