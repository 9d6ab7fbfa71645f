//! SQLite only: the lookup of every authenticated request (the session of a cookie, the API
//! token of a bearer secret), run inline on a small set of read-only connections instead of
//! through sqlx.
//!
//! Why: sqlx gives each SQLite connection its own worker thread, so every query is two
//! thread handoffs. Profiling `verify_auth` under load showed about half of the process's CPU
//! in those futex wake-ups and context switches, against a few microseconds for the indexed
//! read itself. Reading inline keeps the answer exactly as fresh as a sqlx query (each
//! statement is its own read transaction, so a sign-out or revocation by any process is seen
//! by the next request), and in WAL mode a reader never waits for a writer, so the read
//! cannot stall the runtime. Any error, or all connections busy, makes the caller use sqlx.
//! Writes always go through sqlx.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::api_tokens::{self, BearerRecord};
use super::sessions::{SessionRecord, FIND_SQL};
use super::users::UserRecord;
use crate::domain::TokenHash;

/// Bytes of the database file each reader maps (address space, not memory: pages are the
/// kernel's page cache, shared by every connection).
const MMAP_SIZE: i64 = 1 << 30;

/// Read-only connections to the SQLite file, used round-robin.
pub struct SqliteReader {
    connections: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for SqliteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqliteReader({} connections)", self.connections.len())
    }
}

impl SqliteReader {
    /// Opens `count` read-only connections to the database file; `None` when it cannot (an
    /// in-memory database, say), and then every lookup goes through sqlx.
    pub fn open(path: &Path, count: usize) -> Option<Self> {
        if path.as_os_str().is_empty() || path.to_string_lossy().contains(":memory:") {
            return None;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut connections = Vec::with_capacity(count);
        for _ in 0..count.max(1) {
            let conn = Connection::open_with_flags(path, flags).ok()?;
            conn.busy_timeout(Duration::from_millis(20)).ok()?;
            // Read the file through a shared memory map rather than a `pread` per page into
            // each connection's own 2 MB cache: with a million sessions, lookups of random
            // sessions miss that cache on nearly every page.
            conn.pragma_update(None, "mmap_size", MMAP_SIZE).ok()?;
            conn.prepare_cached(FIND_SQL).ok()?;
            conn.prepare_cached(api_tokens::find_sql()).ok()?;
            connections.push(Mutex::new(conn));
        }
        Some(Self {
            connections,
            next: AtomicUsize::new(0),
        })
    }

    /// The session for `hash`; `None` when no connection was free or the read failed (the
    /// caller then asks sqlx).
    pub fn find_session(&self, hash: &TokenHash) -> Option<Option<SessionRecord>> {
        self.with_connection(|conn| read_session(conn, hash))
    }

    /// The API token for `hash` with its owner (see [`api_tokens::find`]); `None` as for
    /// [`Self::find_session`].
    pub fn find_bearer(&self, hash: &TokenHash) -> Option<Option<BearerRecord>> {
        self.with_connection(|conn| read_bearer(conn, hash))
    }

    /// Runs `read` on the first free connection; `None` when none was free or it failed.
    fn with_connection<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Option<T> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.connections.len();
        let conn = (0..n).find_map(|i| self.connections[(start + i) % n].try_lock().ok())?;
        match read(&conn) {
            Ok(found) => Some(found),
            Err(e) => {
                tracing::debug!(error = %e, "inline read failed; using the pool");
                None
            }
        }
    }
}

fn read_session(conn: &Connection, hash: &TokenHash) -> rusqlite::Result<Option<SessionRecord>> {
    let mut statement = conn.prepare_cached(FIND_SQL)?;
    // Column 0 is `token_hash` (see `FIND_SQL`).
    statement
        .query_row([hash.as_bytes()], |row| {
            Ok(SessionRecord {
                id: row.get(1)?,
                user_id: row.get(2)?,
                remember: row.get(3)?,
                created_at: row.get(4)?,
                last_seen_at: row.get(5)?,
                username: row.get(6)?,
                email: row.get(7)?,
                email_verified: row.get(8)?,
                first_name: row.get(9)?,
                last_name: row.get(10)?,
                roles: row.get(11)?,
                locked: row.get(12)?,
                user_created_at: row.get(13)?,
                credential_gen: row.get(14)?,
                mfa_enabled: row.get(15)?,
                factors: row.get(16)?,
                pending_user_id: row.get(17)?,
                pending_remember: row.get(18)?,
                passkey_count: row.get(19)?,
            })
        })
        .optional()
}

/// Columns by position, in the order of [`api_tokens::find_sql`] (its test pins the order).
fn read_bearer(conn: &Connection, hash: &TokenHash) -> rusqlite::Result<Option<BearerRecord>> {
    let mut statement = conn.prepare_cached(api_tokens::find_sql())?;
    statement
        .query_row([hash.as_bytes()], |row| {
            Ok(BearerRecord {
                token_id: row.get(0)?,
                expires_at: row.get(1)?,
                last_used_at: row.get(2)?,
                user: UserRecord {
                    id: row.get(3)?,
                    username: row.get(4)?,
                    email: row.get(5)?,
                    email_verified: row.get(6)?,
                    password_hash: row.get(7)?,
                    first_name: row.get(8)?,
                    last_name: row.get(9)?,
                    roles: row.get(10)?,
                    locked: row.get(11)?,
                    created_at: row.get(12)?,
                    last_login_at: row.get(13)?,
                    credential_gen: row.get(14)?,
                    mfa_enabled: row.get(15)?,
                    passkey_count: row.get(16)?,
                },
            })
        })
        .optional()
}
