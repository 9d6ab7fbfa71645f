//! `last_seen_at` (sessions) and `last_used_at` (API tokens) written behind the request
//! instead of inside it.
//!
//! Why: moving a session's idle timeout forward (once a minute per session) was the only write
//! of an authenticated request, and it waited for the database's write lock. On SQLite that
//! lock is shared with sign-ins and the purge of expired sessions, so the requests that
//! happened to touch their session waited behind a whole purge batch or sign-in: with a
//! thousand active sessions they were more than 1 % of requests, and they made the p99
//! (`bench/million.sh`). Here a request only notes the time; a task of its own writes what
//! was noted, every session seen since its last write in one statement per distinct second.
//!
//! Nothing about sessions gets weaker. This node reads its own notes back
//! ([`Touches::seen`], asked before the database is read: a note is forgotten only after its
//! write committed, so a read that starts later sees the write), so its view of a session's
//! idle time is exactly what it was with the write inside the request. Another node sees the write a few milliseconds later than
//! before, which is within the minute by which `last_seen_at` is rounded anyway. A write that
//! fails is logged and dropped: the session's next request after the touch interval notes
//! it again, and until then it is at most one minute closer to its idle timeout.
//!
//! An API token's `last_used_at` is only shown to its owner, so its notes are not read back.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::{db_run, Db, StoreError};
use crate::clock::Timestamp;
use crate::domain::TokenHash;

/// Sessions seen since their last write, waiting or being written (see the module docs).
#[derive(Debug)]
pub struct Touches {
    db: Db,
    touched: Touched,
    notes: Mutex<Notes>,
    /// Entries in both maps, so that [`Touches::seen`] skips the lock when there are none.
    count: AtomicUsize,
    /// Whether a writer task is running.
    running: AtomicBool,
}

#[derive(Debug, Default)]
struct Notes {
    /// Noted, not yet taken by the writer: by the session's token hash (what a lookup knows
    /// before it reads), its row id and the time.
    waiting: HashMap<TokenHash, Note>,
    /// Taken by the writer, whose statement has not yet committed.
    writing: HashMap<TokenHash, Note>,
}

/// The column a [`Touches`] moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touched {
    /// `sessions.last_seen_at`: the idle timeout.
    SessionLastSeen,
    /// `api_tokens.last_used_at`: shown in the owner's token list.
    TokenLastUsed,
}

impl Touched {
    /// The statement's head, up to the list of ids.
    fn statement(self) -> &'static str {
        match self {
            Self::SessionLastSeen => super::sessions::TOUCH_SQL,
            Self::TokenLastUsed => super::api_tokens::TOUCH_SQL,
        }
    }
}

/// Most rows one statement names.
const BATCH: usize = 500;

/// A row id and when it was seen.
#[derive(Debug, Clone, Copy)]
struct Note {
    id: i64,
    at: Timestamp,
}

impl Touches {
    /// Notes for the `touched` column in `db`.
    pub fn new(db: Db, touched: Touched) -> Arc<Self> {
        Arc::new(Self {
            db,
            touched,
            notes: Mutex::new(Notes::default()),
            count: AtomicUsize::new(0),
            running: AtomicBool::new(false),
        })
    }

    /// Notes that row `id` (of token hash `hash`) was seen at `at`, and starts the writer if
    /// it is not running. Must be called within a Tokio runtime.
    pub fn note(self: &Arc<Self>, hash: TokenHash, id: i64, at: Timestamp) {
        let Ok(mut notes) = self.notes.lock() else {
            return;
        };
        let entry = notes.waiting.entry(hash).or_insert_with(|| {
            self.count.fetch_add(1, Ordering::Release);
            Note { id, at }
        });
        entry.at = entry.at.max(at);
        drop(notes);
        if !self.running.swap(true, Ordering::AcqRel) {
            tokio::spawn(Arc::clone(self).write_all());
        }
    }

    /// The newest time noted for the session of `hash` that may not be in the database yet.
    /// Ask before reading the session: a note is forgotten only once its write committed.
    pub fn seen(&self, hash: &TokenHash) -> Option<Timestamp> {
        if self.count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let notes = self.notes.lock().ok()?;
        let at = |n: Option<&Note>| n.map(|n| n.at);
        at(notes.waiting.get(hash)).max(at(notes.writing.get(hash)))
    }

    /// Writes everything noted so far (at shutdown, when no writer task may finish).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let taken = self.take();
        let result = write(&self.db, self.touched, &taken).await;
        self.done(&taken);
        result
    }

    /// The writer task: writes until nothing is waiting, then stops.
    async fn write_all(self: Arc<Self>) {
        loop {
            let taken = self.take();
            if taken.is_empty() {
                self.running.store(false, Ordering::Release);
                // A note made after `take` may have seen the writer still running: look
                // again now that it is marked stopped, and carry on if no one restarted it.
                // (Only `waiting` counts: `writing` may hold a shutdown flush's entries.)
                if self.has_waiting() && !self.running.swap(true, Ordering::AcqRel) {
                    continue;
                }
                return;
            }
            if let Err(e) = write(&self.db, self.touched, &taken).await {
                let touched = self.touched;
                tracing::warn!(error = %e, rows = taken.len(), ?touched, "could not write a last use");
            }
            self.done(&taken);
        }
    }

    fn has_waiting(&self) -> bool {
        self.notes.lock().is_ok_and(|n| !n.waiting.is_empty())
    }

    /// Moves what is waiting to `writing` and returns a copy of it.
    fn take(&self) -> HashMap<TokenHash, Note> {
        let Ok(mut notes) = self.notes.lock() else {
            return HashMap::new();
        };
        let taken = std::mem::take(&mut notes.waiting);
        for (&hash, &note) in &taken {
            match notes.writing.get_mut(&hash) {
                // Another write of this session is in flight (only with `flush`): it stays
                // counted once.
                Some(t) => {
                    t.at = t.at.max(note.at);
                    self.count.fetch_sub(1, Ordering::Relaxed);
                }
                None => {
                    notes.writing.insert(hash, note);
                }
            }
        }
        taken
    }

    /// Forgets the notes of `written` that no later note replaced.
    fn done(&self, written: &HashMap<TokenHash, Note>) {
        let Ok(mut notes) = self.notes.lock() else {
            return;
        };
        for (hash, note) in written {
            if notes.writing.get(hash).is_some_and(|t| t.at <= note.at) {
                notes.writing.remove(hash);
                self.count.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// One statement per distinct time: rows seen in the same second share it.
async fn write(
    db: &Db,
    touched: Touched,
    taken: &HashMap<TokenHash, Note>,
) -> Result<(), StoreError> {
    let mut by_time: BTreeMap<Timestamp, Vec<i64>> = BTreeMap::new();
    for note in taken.values() {
        by_time.entry(note.at).or_default().push(note.id);
    }
    for (at, ids) in by_time {
        for chunk in ids.chunks(BATCH) {
            touch_many(db, touched, at, chunk).await?;
        }
    }
    Ok(())
}

/// `touched`'s statement for `ids` at `at`.
async fn touch_many(
    db: &Db,
    touched: Touched,
    at: Timestamp,
    ids: &[i64],
) -> Result<(), StoreError> {
    let mut sql = String::from(touched.statement());
    for i in 0..ids.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('$');
        sql.push_str(&(i + 2).to_string());
    }
    sql.push(')');
    db_run!(db, |pool| {
        let mut query = sqlx::query(&sql).bind(at);
        for id in ids {
            query = query.bind(*id);
        }
        query.execute(pool).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn hash(n: u8) -> TokenHash {
        crate::domain::SecretToken::from_client(&format!("{n:0>43}"))
            .expect("a well-formed token")
            .hash()
    }

    async fn memory_db() -> Db {
        let config = Config {
            database_url: "sqlite::memory:".into(),
            db_max_connections: 1,
            ..Config::default()
        };
        let db = Db::connect(&config).await.expect("in-memory SQLite");
        db.migrate().await.expect("migrations");
        db
    }

    #[tokio::test]
    async fn a_note_is_read_back_until_it_is_written() {
        let touches = Touches::new(memory_db().await, Touched::SessionLastSeen);
        assert_eq!(touches.seen(&hash(1)), None);
        touches.note(hash(1), 1, 100);
        touches.note(hash(1), 1, 90); // an older time never moves the note back
        touches.note(hash(2), 2, 95);
        assert_eq!(touches.seen(&hash(1)), Some(100));
        assert_eq!(touches.seen(&hash(2)), Some(95));
        assert_eq!(touches.seen(&hash(3)), None);
        touches.flush().await.expect("flush");
        // The writer task may still hold its own copy for a moment.
        for _ in 0..100 {
            if touches.count.load(Ordering::Relaxed) == 0
                && !touches.running.load(Ordering::Acquire)
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(touches.seen(&hash(1)), None);
        assert_eq!(touches.count.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_later_note_outlives_the_write_of_an_earlier_one() {
        let touches = Touches::new(memory_db().await, Touched::SessionLastSeen);
        {
            let mut notes = touches.notes.lock().unwrap();
            notes.waiting.insert(hash(7), Note { id: 7, at: 100 });
        }
        touches.count.store(1, Ordering::Relaxed);
        let first = touches.take();
        // Noted again while the first write is in flight, and taken by a second writer.
        touches
            .notes
            .lock()
            .unwrap()
            .waiting
            .insert(hash(7), Note { id: 7, at: 160 });
        touches.count.fetch_add(1, Ordering::Relaxed);
        let second = touches.take();
        assert_eq!(touches.count.load(Ordering::Relaxed), 1);
        touches.done(&first);
        assert_eq!(
            touches.seen(&hash(7)),
            Some(160),
            "the later note is not yet written"
        );
        touches.done(&second);
        assert_eq!(touches.seen(&hash(7)), None);
        assert_eq!(touches.count.load(Ordering::Relaxed), 0);
    }
}
