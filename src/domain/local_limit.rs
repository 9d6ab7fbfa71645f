//! A rate limit kept in process memory, per client address: for a request that must not cost
//! a database write before it is counted (starting a passkey sign-in writes a challenge row,
//! so a limit counted in the database would double what it limits).
//!
//! Fixed windows per client: at most `max` events from a window's first event until
//! `window` seconds later. Memory stays bounded: at most `capacity` clients are tracked,
//! expired entries are swept once a window, and when every tracked client is still live a new
//! one is refused until room frees up (so a flood from many addresses costs neither memory nor
//! database writes). An IPv6 client is counted by its /64, the block one host usually holds,
//! so a host cannot step around the limit by changing the low bits of its address.
//!
//! The count is per process: with several nodes, a client gets the limit on each.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::clock::Timestamp;

/// What a client is counted under: an IPv4 address, or the /64 of an IPv6 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    V4(u32),
    V6(u64),
}

impl ClientKey {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => ClientKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(u32::from(v4)),
                None => ClientKey::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// When the client's current window began.
    start: Timestamp,
    /// Events in it.
    count: u32,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<ClientKey, Entry>,
    /// When expired entries were last removed.
    swept_at: Timestamp,
}

/// At most `max` events per client per `window` seconds, in memory.
#[derive(Debug)]
pub struct LocalLimiter {
    max: u32,
    window: i64,
    capacity: usize,
    inner: Mutex<Inner>,
}

impl LocalLimiter {
    /// A limiter of `max` events per `window` seconds per client, tracking at most
    /// `capacity` clients.
    pub fn new(max: u32, window: i64, capacity: usize) -> Self {
        Self {
            max,
            window: window.max(1),
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Counts one event of `ip` at `now`: `Ok` when it is within the limit, else `Err` with
    /// the seconds until the client may try again (at least 1).
    pub fn check(&self, ip: IpAddr, now: Timestamp) -> Result<(), i64> {
        let key = ClientKey::of(ip);
        // A panic while holding the lock cannot leave the map inconsistent (every change is
        // one insert or field write), so a poisoned lock is used as it is.
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now - inner.swept_at >= self.window {
            self.sweep(&mut inner, now);
        }
        if let Some(entry) = inner.entries.get_mut(&key) {
            if now - entry.start >= self.window {
                *entry = Entry {
                    start: now,
                    count: 1,
                };
                return Ok(());
            }
            if entry.count >= self.max {
                return Err((entry.start + self.window - now).max(1));
            }
            entry.count += 1;
            return Ok(());
        }
        // At most one sweep a second, so a flood of new clients on a full table does not
        // scan it on every request.
        if inner.entries.len() >= self.capacity && inner.swept_at != now {
            self.sweep(&mut inner, now);
        }
        if inner.entries.len() >= self.capacity {
            return Err(self.window);
        }
        inner.entries.insert(
            key,
            Entry {
                start: now,
                count: 1,
            },
        );
        Ok(())
    }

    /// Removes the clients whose window has passed.
    fn sweep(&self, inner: &mut Inner, now: Timestamp) {
        let window = self.window;
        inner.entries.retain(|_, e| now - e.start < window);
        inner.swept_at = now;
    }

    /// How many clients are tracked (for tests of the bound).
    pub fn tracked(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entries
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn allows_max_per_window_then_says_how_long_to_wait() {
        let limiter = LocalLimiter::new(3, 60, 100);
        let t = 1_000;
        for _ in 0..3 {
            assert_eq!(limiter.check(ip("192.0.2.1"), t), Ok(()));
        }
        assert_eq!(limiter.check(ip("192.0.2.1"), t), Err(60));
        assert_eq!(limiter.check(ip("192.0.2.1"), t + 45), Err(15));
        // Refusals are not counted: the window still ends where it began plus 60 s.
        assert_eq!(limiter.check(ip("192.0.2.1"), t + 59), Err(1));
        assert_eq!(limiter.check(ip("192.0.2.1"), t + 60), Ok(()));
    }

    #[test]
    fn clients_are_counted_apart() {
        let limiter = LocalLimiter::new(1, 60, 100);
        assert_eq!(limiter.check(ip("192.0.2.1"), 0), Ok(()));
        assert!(limiter.check(ip("192.0.2.1"), 0).is_err());
        assert_eq!(limiter.check(ip("192.0.2.2"), 0), Ok(()));
        assert_eq!(limiter.check(ip("2001:db8:0:1::1"), 0), Ok(()));
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_64_and_mapped_ipv4_as_ipv4() {
        let limiter = LocalLimiter::new(1, 60, 100);
        assert_eq!(limiter.check(ip("2001:db8:1:2::1"), 0), Ok(()));
        assert!(limiter
            .check(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"), 0)
            .is_err());
        assert_eq!(limiter.check(ip("2001:db8:1:3::1"), 0), Ok(()));
        assert_eq!(limiter.check(ip("198.51.100.7"), 0), Ok(()));
        assert!(limiter.check(ip("::ffff:198.51.100.7"), 0).is_err());
    }

    #[test]
    fn memory_stays_bounded() {
        let limiter = LocalLimiter::new(5, 60, 3);
        for last in 1..=3 {
            assert_eq!(limiter.check(ip(&format!("192.0.2.{last}")), 0), Ok(()));
        }
        // Full of live clients: a new one is refused (and not tracked), known ones go on.
        assert_eq!(limiter.check(ip("192.0.2.4"), 10), Err(60));
        assert_eq!(limiter.tracked(), 3);
        assert_eq!(limiter.check(ip("192.0.2.1"), 10), Ok(()));
        // Once their windows have passed, the old entries make room.
        assert_eq!(limiter.check(ip("192.0.2.4"), 60), Ok(()));
        assert_eq!(limiter.tracked(), 1);
    }

    #[test]
    fn expired_entries_are_swept_once_a_window() {
        let limiter = LocalLimiter::new(5, 60, 1_000);
        for last in 1..=100 {
            limiter.check(ip(&format!("192.0.2.{last}")), 0).unwrap();
        }
        assert_eq!(limiter.tracked(), 100);
        limiter.check(ip("198.51.100.1"), 30).unwrap();
        assert_eq!(limiter.tracked(), 101);
        limiter.check(ip("198.51.100.2"), 61).unwrap();
        assert_eq!(
            limiter.tracked(),
            2,
            "the entries of the past window are gone"
        );
    }
}
