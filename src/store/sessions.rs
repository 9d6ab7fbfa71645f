//! Server-side sessions, keyed by the hash of the cookie's secret.

use super::{db_run, Db, StoreError};
use crate::clock::Timestamp;
use crate::domain::TokenHash;

/// A session and, when signed in, its user: what one request's lookup returns.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct SessionRecord {
    /// Public id (shown in session lists; not the cookie secret).
    pub id: i64,
    /// The signed-in user, or `None` for an anonymous session (CSRF only).
    pub user_id: Option<i64>,
    /// Whether it is a "remember me" session.
    pub remember: bool,
    /// Creation time (the absolute timeout counts from here).
    pub created_at: Timestamp,
    /// Last request seen (the idle timeout counts from here), updated at most once a minute.
    pub last_seen_at: Timestamp,
    /// The user's display name.
    pub username: Option<String>,
    /// The user's address.
    pub email: Option<String>,
    /// Whether the address was confirmed.
    pub email_verified: Option<bool>,
    /// Profile field.
    pub first_name: Option<String>,
    /// Profile field.
    pub last_name: Option<String>,
    /// Space-separated roles.
    pub roles: Option<String>,
    /// Locked by an administrator.
    pub locked: Option<bool>,
    /// When the user was created.
    pub user_created_at: Option<Timestamp>,
    /// The user's credential generation this session was made under (always the current
    /// one: the lookup refuses any other).
    pub credential_gen: i64,
    /// The signed-in user's second-factor flag.
    pub mfa_enabled: Option<bool>,
    /// The signed-in user's passkey count.
    pub passkey_count: Option<i64>,
    /// How the session was made ([`crate::domain::Factors`]' stored form).
    pub factors: String,
    /// A sign-in waiting for its second factor: the user it is for (the session itself is
    /// anonymous until then).
    pub pending_user_id: Option<i64>,
    /// Whether the pending sign-in asked for "remember me".
    pub pending_remember: bool,
}

/// Where a new session comes from.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// Client IP address.
    pub ip: Option<String>,
    /// `User-Agent` header, truncated.
    pub user_agent: Option<String>,
}

/// Whose a new session is.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    /// Nobody yet (a CSRF token for the sign-in form).
    Anonymous,
    /// A signed-in user: id, the credential generation the sign-in was checked under, and the
    /// stored factors.
    User(i64, i64, &'a str),
    /// A sign-in waiting for its second factor: user id, credential generation, remember me.
    Pending(i64, i64, bool),
}

/// Stores a new session and returns its public id, deleting the session `replacing` (a
/// rotation) first. On PostgreSQL both are one statement: a rotation at every sign-in, and
/// a round trip costs the database's CPU on the cores that also hash the passwords.
pub async fn insert(
    db: &Db,
    hash: &TokenHash,
    holder: Holder<'_>,
    remember: bool,
    now: Timestamp,
    client: &ClientInfo,
    replacing: Option<&TokenHash>,
) -> Result<i64, StoreError> {
    const INSERT: &str = "INSERT INTO sessions (token_hash, user_id, remember, created_at, \
         last_seen_at, ip, user_agent, credential_gen, factors, pending_user_id, pending_remember) \
         VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10) RETURNING id";
    const PG_ROTATE: &str = "WITH gone AS (DELETE FROM sessions WHERE token_hash = $11) \
         INSERT INTO sessions (token_hash, user_id, remember, created_at, \
         last_seen_at, ip, user_agent, credential_gen, factors, pending_user_id, pending_remember) \
         VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10) RETURNING id";
    let (user, gen, factors, pending, pending_remember) = match holder {
        Holder::Anonymous => (None, 0, "", None, false),
        Holder::User(id, gen, factors) => (Some(id), gen, factors, None, false),
        Holder::Pending(id, gen, remember) => (None, gen, "", Some(id), remember),
    };
    let (sql, old) = match (db, replacing) {
        (Db::Postgres(_), Some(old)) => (PG_ROTATE, Some(old.as_bytes())),
        (Db::Sqlite(_), Some(old)) => {
            // In-process: no round trip to save.
            delete_by_hash(db, old).await?;
            (INSERT, None)
        }
        (_, None) => (INSERT, None),
    };
    let (id,): (i64,) = db_run!(db, |pool| {
        let query = sqlx::query_as(sql)
            .bind(hash.as_bytes())
            .bind(user)
            .bind(remember)
            .bind(now)
            .bind(client.ip.as_deref())
            .bind(client.user_agent.as_deref())
            .bind(gen)
            .bind(factors)
            .bind(pending)
            .bind(pending_remember);
        let query = match old {
            Some(old) => query.bind(old),
            None => query,
        };
        query.fetch_one(pool).await
    })?;
    Ok(id)
}

/// The session lookup: the primary-key read of `sessions` joined to its user, through the
/// `session_lookup` view (see its migration: a short statement is cheaper to find in the
/// statement caches). Shared with [`super::fast_read`], which runs it on SQLite without sqlx
/// and reads the columns by position: `token_hash` first, then [`SessionRecord`]'s in order.
/// A signed-in session counts only while its credential generation is the user's (see
/// [`super::revocation`]).
pub(crate) const FIND_SQL: &str = "SELECT * FROM session_lookup WHERE token_hash = $1";

/// [`FIND_SQL`] for several sessions at once (PostgreSQL, [`super::session_batch`]).
pub(crate) const FIND_MANY_SQL: &str = "SELECT * FROM session_lookup WHERE token_hash = ANY($1)";

/// The one indexed lookup an authenticated request costs.
pub async fn find(db: &Db, hash: &TokenHash) -> Result<Option<SessionRecord>, StoreError> {
    let sql = FIND_SQL;
    Ok(db_run!(db, |pool| sqlx::query_as::<_, SessionRecord>(sql)
        .bind(hash.as_bytes())
        .fetch_optional(pool)
        .await)?)
}

/// Moves the idle timeout of the sessions whose ids follow forward to `$1` (never back:
/// another node may have written a later time). Written behind the request by
/// [`super::touches`].
pub const TOUCH_SQL: &str =
    "UPDATE sessions SET last_seen_at = $1 WHERE last_seen_at < $1 AND id IN (";

/// Ends one session by its secret's hash.
pub async fn delete_by_hash(db: &Db, hash: &TokenHash) -> Result<(), StoreError> {
    let sql = "DELETE FROM sessions WHERE token_hash = $1";
    db_run!(db, |pool| sqlx::query(sql)
        .bind(hash.as_bytes())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Ends every session of a user; returns how many ended.
pub async fn delete_for_user(db: &Db, user_id: i64) -> Result<u64, StoreError> {
    let sql = "DELETE FROM sessions WHERE user_id = $1";
    let done = db_run!(db, |pool| sqlx::query(sql)
        .bind(user_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done)
}

/// Sessions one purge statement deletes at most: a statement of its own per batch keeps
/// each write transaction short (SQLite has one writer; a million-row DELETE held it for
/// seconds, and every sign-in with it). Short bursts also disturb readers less: with
/// batches of 500 (and 40 ms pauses) the p99 of `verify_auth` during the purge of 1,000,000
/// expired sessions was 16.1 ms on SQLite, with 100 (and 20 ms) 10.4 ms; 200,000: 10.8–11.9
/// against 5.9 ms (`bench/million.sh`). The purge then takes about twice as long.
pub const PURGE_BATCH: i64 = 100;

/// One batch of the purge: `$1` idle cutoff, `$2` absolute cutoff, `$3` remember-me cutoff,
/// `$4` the batch size. Candidates are taken in `last_seen_at` order (its index), where
/// idle-expired sessions come first.
const DELETE_EXPIRED_SQL: &str = "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions \
     WHERE (remember = FALSE AND (last_seen_at < $1 OR created_at < $2)) \
     OR (remember = TRUE AND (last_seen_at < $3 OR created_at < $3)) \
     ORDER BY last_seen_at LIMIT $4)";

/// Which sessions have expired: those last seen or created before these times.
#[derive(Debug, Clone, Copy)]
pub struct ExpiryCutoffs {
    /// An ordinary session last seen before this is idle-expired.
    pub idle_before: Timestamp,
    /// An ordinary session created before this is past its absolute lifetime.
    pub created_before: Timestamp,
    /// A "remember me" session last seen or created before this has expired.
    pub remember_before: Timestamp,
}

/// Deletes at most [`PURGE_BATCH`] expired sessions; returns how many. Call it again until
/// it returns less than a batch.
pub async fn delete_expired_batch(db: &Db, cutoffs: ExpiryCutoffs) -> Result<u64, StoreError> {
    let done = db_run!(db, |pool| sqlx::query(DELETE_EXPIRED_SQL)
        .bind(cutoffs.idle_before)
        .bind(cutoffs.created_before)
        .bind(cutoffs.remember_before)
        .bind(PURGE_BATCH)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done)
}

/// SQLite file only: deletes every expired session, in batches of [`PURGE_BATCH`] with
/// `pause` between them, on a thread of its own at a low scheduling priority (nice 10, Linux)
/// and through a connection of its own; returns how many.
///
/// Why a thread: through sqlx the deletes ran on a worker thread at normal priority, and on
/// a busy machine their CPU time came straight out of the requests being served (the p99 of
/// an authenticated request rose several times during the purge of a million sessions). At
/// low priority the purge takes the CPU the requests leave. Each batch is its own short
/// transaction, so the write lock is free between batches for sign-ins and sign-outs.
pub async fn purge_sqlite_file(
    path: std::path::PathBuf,
    cutoffs: ExpiryCutoffs,
    pause: std::time::Duration,
) -> Result<u64, StoreError> {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("latch-purge".into())
        .spawn(move || {
            crate::priority::lower_current_thread();
            let _ = done_tx.send(purge_blocking(&path, cutoffs, pause));
        })
        .map_err(|e| StoreError::Unavailable(format!("cannot start the purge thread: {e}")))?;
    done_rx
        .await
        .map_err(|_| StoreError::Unavailable("the purge thread stopped".into()))?
}

fn purge_blocking(
    path: &std::path::Path,
    cutoffs: ExpiryCutoffs,
    pause: std::time::Duration,
) -> Result<u64, StoreError> {
    let unavailable = |e: rusqlite::Error| StoreError::Unavailable(e.to_string());
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(unavailable)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(unavailable)?;
    let mut statement = conn.prepare(DELETE_EXPIRED_SQL).map_err(unavailable)?;
    let mut total = 0;
    loop {
        let done = statement
            .execute([
                cutoffs.idle_before,
                cutoffs.created_before,
                cutoffs.remember_before,
                PURGE_BATCH,
            ])
            .map_err(unavailable)? as u64;
        total += done;
        if done < PURGE_BATCH as u64 {
            break;
        }
        std::thread::sleep(pause);
    }
    if total >= PURGE_BATCH as u64 {
        // A large purge leaves a long write-ahead log that readers keep from being reset,
        // and every page a reader looks up is searched in the log's index first: copy it back
        // into the database and truncate it (waiting, within the busy timeout, for readers
        // to move to the latest snapshot; it never blocks them).
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "checkpoint after the purge failed");
        }
    }
    Ok(total)
}

/// A signed-in session as its owner sees it in the session list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionSummary {
    /// Public id.
    pub id: i64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last request seen (to the minute).
    pub last_seen_at: Timestamp,
    /// Client IP at creation.
    pub ip: Option<String>,
    /// Client user agent at creation.
    pub user_agent: Option<String>,
    /// "Remember me" session.
    pub remember: bool,
    /// How it was made ([`crate::domain::Factors`]' stored form).
    pub factors: String,
}

/// Session lifetimes, to tell live sessions from expired ones still in the table.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Current time.
    pub now: Timestamp,
    /// Idle timeout of ordinary sessions.
    pub idle: i64,
    /// Absolute timeout of ordinary sessions.
    pub absolute: i64,
    /// Idle and absolute timeout of "remember me" sessions.
    pub remember: i64,
}

/// The live sessions of a user, newest first.
pub async fn list_for_user(
    db: &Db,
    user_id: i64,
    life: Lifetimes,
) -> Result<Vec<SessionSummary>, StoreError> {
    let sql =
        "SELECT id, created_at, last_seen_at, ip, user_agent, remember, factors FROM sessions \
               WHERE user_id = $1 \
                 AND credential_gen = (SELECT credential_gen FROM users WHERE id = $1) AND ( \
                 (remember = FALSE AND last_seen_at >= $2 AND created_at >= $3) \
                 OR (remember = TRUE AND last_seen_at >= $4 AND created_at >= $4)) \
               ORDER BY last_seen_at DESC, id DESC";
    Ok(db_run!(db, |pool| sqlx::query_as::<_, SessionSummary>(
        sql
    )
    .bind(user_id)
    .bind(life.now - life.idle)
    .bind(life.now - life.absolute)
    .bind(life.now - life.remember)
    .fetch_all(pool)
    .await)?)
}

/// Ends one session of a user by its public id; `false` when the user has no such session
/// (another user's id included).
pub async fn delete_one_for_user(db: &Db, user_id: i64, id: i64) -> Result<bool, StoreError> {
    let sql = "DELETE FROM sessions WHERE user_id = $1 AND id = $2";
    let n = db_run!(db, |pool| sqlx::query(sql)
        .bind(user_id)
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// Ends every session of a user except one; returns how many ended.
pub async fn delete_others_for_user(db: &Db, user_id: i64, keep: i64) -> Result<u64, StoreError> {
    let sql = "DELETE FROM sessions WHERE user_id = $1 AND id <> $2";
    let n = db_run!(db, |pool| sqlx::query(sql)
        .bind(user_id)
        .bind(keep)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n)
}
