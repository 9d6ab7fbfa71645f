//! Rate limits kept in the database (so they hold across processes): count the events of a
//! key within a window, and tell how long until the oldest one leaves it.

use crate::app::AppState;
use crate::store::{throttle, StoreError};

/// A limit: at most `max` events of one key per `window` seconds.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Events allowed in the window.
    pub max: i64,
    /// Window length in seconds.
    pub window: i64,
}

/// Seconds to wait when `key` has used up `limit`, else `None`.
pub async fn retry_after(
    state: &AppState,
    key: &str,
    limit: Limit,
) -> Result<Option<i64>, StoreError> {
    let now = state.clock.now();
    let (count, oldest) = throttle::count_since(&state.db, key, now - limit.window).await?;
    Ok((count >= limit.max).then(|| (oldest.unwrap_or(now) + limit.window - now).max(1)))
}

/// The first of several limits that is used up, as seconds to wait.
pub async fn first_exceeded(
    state: &AppState,
    checks: &[(&str, Limit)],
) -> Result<Option<i64>, StoreError> {
    for (key, limit) in checks {
        if let Some(wait) = retry_after(state, key, *limit).await? {
            return Ok(Some(wait));
        }
    }
    Ok(None)
}

/// Counts one event for each key.
pub async fn hit(state: &AppState, keys: &[&str]) -> Result<(), StoreError> {
    throttle::record(&state.db, keys, state.clock.now()).await
}
