//! An opt-in, in-memory cache of session lookups (`session_cache_ms`, off by default).
//!
//! Without it every authenticated request reads its session from the database, so a
//! sign-out or revocation on any node is seen by the next request on every node. With it a
//! node may answer from memory for up to `session_cache_ms` after it last read that session:
//! that is the documented staleness bound for changes made elsewhere (another node, the
//! CLI). Changes made through this node are seen at once: every request that may write
//! (any method but GET, HEAD and OPTIONS) empties the cache before its response is sent
//! ([`SessionCache::invalidate`]), and an entry read from the database before an
//! invalidation is never served after it (each entry carries the generation it was read
//! under). An application that embeds latch and changes users or sessions from its own
//! routes (which latch's middleware does not wrap) calls
//! [`AppState::sessions_changed`](crate::state::AppState::sessions_changed) itself, or leaves
//! the cache off.
//!
//! Hand-written rather than a caching crate: what it needs is the generation check and a
//! clear-all, on a map bounded by entry count; both are a few lines over a `HashMap`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::sessions::SessionRecord;
use crate::domain::TokenHash;

/// Entries kept at most; when full, the cache is emptied (entries of dead sessions are only
/// dropped that way or by the next invalidation).
const MAX_ENTRIES: usize = 100_000;

/// Session records by token hash, each served for at most `ttl` after it was read.
#[derive(Debug)]
pub struct SessionCache {
    ttl: Duration,
    generation: AtomicU64,
    entries: RwLock<HashMap<TokenHash, Entry>>,
}

#[derive(Debug)]
struct Entry {
    record: SessionRecord,
    read_at: Instant,
    generation: u64,
}

/// The generation a database read started under: pass it back to [`SessionCache::put`].
#[derive(Debug, Clone, Copy)]
pub struct ReadTicket(u64);

impl SessionCache {
    /// A cache serving entries for `ttl`; `None` for a zero `ttl` (off).
    ///
    /// ```
    /// use std::time::Duration;
    /// use latch::store::session_cache::SessionCache;
    ///
    /// assert!(SessionCache::new(Duration::ZERO).is_none(), "0 is off");
    /// let cache = SessionCache::new(Duration::from_millis(1000)).unwrap();
    /// let ticket = cache.ticket(); // taken before a database read
    /// cache.invalidate(); // a sign-out through this node
    /// // …so what that read returns is never served (see `put`).
    /// # let _ = ticket;
    /// ```
    pub fn new(ttl: Duration) -> Option<Self> {
        (!ttl.is_zero()).then(|| Self {
            ttl,
            generation: AtomicU64::new(0),
            entries: RwLock::new(HashMap::new()),
        })
    }

    /// The record for `hash`, if one was read less than `ttl` ago and no invalidation came
    /// since.
    pub fn get(&self, hash: &TokenHash) -> Option<SessionRecord> {
        let generation = self.generation.load(Ordering::Acquire);
        let entries = self.entries.read().ok()?;
        let entry = entries.get(hash)?;
        (entry.generation == generation && entry.read_at.elapsed() < self.ttl)
            .then(|| entry.record.clone())
    }

    /// Call before reading a session from the database; the read's result may then be
    /// [`put`](Self::put) with the ticket.
    pub fn ticket(&self) -> ReadTicket {
        ReadTicket(self.generation.load(Ordering::Acquire))
    }

    /// Keeps `record`, read under `ticket`. A read that started before an invalidation is
    /// stored as already stale, so it is never served.
    pub fn put(&self, hash: TokenHash, record: SessionRecord, ticket: ReadTicket) {
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&hash) {
            entries.clear();
        }
        entries.insert(
            hash,
            Entry {
                record,
                read_at: Instant::now(),
                generation: ticket.0,
            },
        );
    }

    /// Records this node's write of `last_seen_at` in the entry of `hash`, if it has one (so
    /// the next requests do not write it again); the entry's age is unchanged.
    pub fn touched(&self, hash: &TokenHash, at: crate::clock::Timestamp) {
        if let Ok(mut entries) = self.entries.write() {
            if let Some(entry) = entries.get_mut(hash) {
                entry.record.last_seen_at = at;
            }
        }
    }

    /// Forgets `hash` (a cached session that looked expired or locked is read again).
    pub fn remove(&self, hash: &TokenHash) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(hash);
        }
    }

    /// Makes every entry stale at once (a change made through this node).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: i64) -> SessionRecord {
        SessionRecord {
            id,
            ..SessionRecord::default()
        }
    }

    fn hash(byte: u8) -> TokenHash {
        let secret = char::from(b'a' + byte).to_string().repeat(43);
        crate::domain::SecretToken::from_client(&secret)
            .unwrap()
            .hash()
    }

    #[test]
    fn zero_is_off() {
        assert!(SessionCache::new(Duration::ZERO).is_none());
    }

    #[test]
    fn an_entry_is_served_until_its_ttl_and_forgotten_on_invalidation() {
        let cache = SessionCache::new(Duration::from_millis(50)).unwrap();
        cache.put(hash(1), record(1), cache.ticket());
        assert_eq!(cache.get(&hash(1)).map(|r| r.id), Some(1));
        assert!(cache.get(&hash(2)).is_none());
        cache.invalidate();
        assert!(cache.get(&hash(1)).is_none());
        cache.put(hash(1), record(1), cache.ticket());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get(&hash(1)).is_none(), "served past its ttl");
    }

    #[test]
    fn a_read_that_started_before_an_invalidation_is_never_served() {
        let cache = SessionCache::new(Duration::from_secs(60)).unwrap();
        let ticket = cache.ticket();
        cache.invalidate();
        cache.put(hash(1), record(1), ticket);
        assert!(cache.get(&hash(1)).is_none());
    }
}
