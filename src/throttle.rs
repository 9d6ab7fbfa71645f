//! Rate limits kept in the database (so they hold across processes).
//!
//! Every limit is decided atomically by [`take`]: it counts the key's events in the window
//! and records this one in the same serialised step, *before* the attempt is evaluated. So
//! however many requests arrive at once, at most the limit of them are ever evaluated (a
//! check-then-count limiter lets all parallel requests through). An attempt that turns out
//! not to be a failure gives its events back ([`Taken::give_back`]).
//!
//! One limit is kept in memory instead, [`passkey_start`]: what it limits is itself a
//! database write.

use sha2::{Digest, Sha256};

use crate::state::AppState;
use crate::store::sessions::ClientInfo;
use crate::store::throttle::{self, Check, Reservation};
use crate::store::StoreError;

/// A limit: at most `max` events of one key per `window` seconds.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Events allowed in the window.
    pub max: i64,
    /// Window length in seconds.
    pub window: i64,
}

/// Events recorded by [`take`]; they count until given back.
#[derive(Debug)]
#[must_use = "a taken attempt counts as a failure unless it is given back"]
pub struct Taken {
    ids: Vec<i64>,
}

impl Taken {
    /// Keeps the events: the attempt failed (or the limit counts requests, not failures).
    pub fn keep(self) {}

    /// Removes the events: the attempt was not a failure.
    pub async fn give_back(self, state: &AppState) -> Result<(), StoreError> {
        throttle::release(&state.db, &self.ids).await
    }

    /// The events to give back, with a key to [`clear`], for a statement that gives them
    /// back together with its own work (a sign-in's bookkeeping,
    /// [`crate::store::users::record_sign_in`]); events it does not give back stay counted.
    pub fn release<'a>(&'a self, clear: Option<&'a str>) -> throttle::Release<'a> {
        throttle::Release {
            ids: &self.ids,
            clear,
        }
    }
}

/// The answer of [`take`].
#[derive(Debug)]
pub enum Decision {
    /// Every limit had room; one event per key is now recorded.
    Allowed(Taken),
    /// A limit is used up: seconds until its oldest event leaves the window.
    Wait(i64),
}

/// Takes one event under each `(key, limit)`, atomically: all or nothing.
pub async fn take(state: &AppState, limits: &[(&str, Limit)]) -> Result<Decision, StoreError> {
    let now = state.clock.now();
    let checks: Vec<Check<'_>> = limits
        .iter()
        .map(|(key, limit)| Check {
            key,
            max: limit.max,
            since: now - limit.window,
        })
        .collect();
    Ok(match throttle::reserve(&state.db, &checks, now).await? {
        Reservation::Granted(ids) => Decision::Allowed(Taken { ids }),
        Reservation::Refused { index, oldest } => {
            let window = limits.get(index).map_or(1, |(_, l)| l.window);
            Decision::Wait((oldest.unwrap_or(now) + window - now).max(1))
        }
    })
}

/// The limits of a password check (sign-in, or the current password of a change): the
/// account's and, when the client IP is known, the IP's.
pub fn sign_in_limits<'a>(
    state: &AppState,
    account_key: &'a str,
    ip_key: Option<&'a str>,
) -> Vec<(&'a str, Limit)> {
    let config = &state.config;
    let window = config.throttle_window_secs;
    let mut limits = vec![(
        account_key,
        Limit {
            max: config.throttle_account_failures,
            window,
        },
    )];
    if let Some(ip) = ip_key {
        limits.push((
            ip,
            Limit {
                max: config.throttle_ip_failures,
                window,
            },
        ));
    }
    limits
}

/// Forgets every event of `key` (a successful sign-in clears the account's count).
pub async fn clear(state: &AppState, key: &str) -> Result<(), StoreError> {
    throttle::clear(&state.db, key).await
}

/// The account counter of a sign-in identifier with no account: a fixed-size digest, so
/// nothing stored grows with what an attacker types.
pub fn login_key(normalized_login: &str) -> String {
    let digest = Sha256::digest(normalized_login.as_bytes());
    let mut key = String::with_capacity(6 + 32);
    key.push_str("login:");
    for byte in &digest[..16] {
        key.push_str(&format!("{byte:02x}"));
    }
    key
}

/// The per-IP counter of failed sign-ins and password checks, when the IP is known.
pub fn ip_key(client: &ClientInfo) -> Option<String> {
    client.ip.as_deref().map(|ip| format!("ip:{ip}"))
}

/// Counts a passkey sign-in start of `client` in memory (no database write), per client IP as
/// the other per-IP limits see it; `Err` is the seconds to wait. A client without a known
/// address (an embedding without connection info) is not limited, as with the other per-IP
/// limits.
pub fn passkey_start(state: &AppState, client: &ClientInfo) -> Result<(), i64> {
    match client.ip.as_deref().and_then(|ip| ip.parse().ok()) {
        Some(ip) => state.passkey_starts.check(ip, state.clock.now()),
        None => Ok(()),
    }
}

/// The account counter of a known user (sign-in and current-password checks share it).
pub fn user_key(user_id: i64) -> String {
    format!("user:{user_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_keys_have_a_fixed_size() {
        let short = login_key("a");
        let long = login_key(&"x".repeat(1 << 20));
        assert_eq!(short.len(), long.len());
        assert_eq!(short.len(), 38);
        assert_ne!(short, login_key("b"));
        assert_eq!(short, login_key("a"));
    }
}
