//! PostgreSQL only: the session lookups of concurrent requests, answered by one query.
//!
//! Why: each lookup sent as its own statement costs a pool checkout, a round trip and a wake-up
//! of a PostgreSQL backend, and on a small machine that per-statement work (not the index
//! reads) was most of what an authenticated request cost. Here a lookup joins a queue; at most
//! [`MAX_IN_FLIGHT`] queries run at once, and each takes every lookup waiting at that moment
//! (`token_hash = ANY($1)`, up to [`MAX_BATCH`]). Unloaded, a lookup is one query as before;
//! under load the statements are shared.
//!
//! Freshness is the same as a query of its own: a lookup only ever joins a batch whose query
//! has not been sent yet, so its answer comes from a statement that started after the request
//! arrived. A sign-out, lock or revocation committed (on any node) before the request arrived
//! is seen, exactly as with one statement per request; nothing is cached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::PgPool;
use tokio::sync::oneshot;

use super::sessions::{SessionRecord, FIND_MANY_SQL};
use super::StoreError;
use crate::domain::TokenHash;

/// Queries in flight at once: while one runs, the next batch gathers.
const MAX_IN_FLIGHT: usize = 2;

/// Most lookups in one query.
const MAX_BATCH: usize = 64;

type Answer = Result<Option<SessionRecord>, StoreError>;

/// Gathers concurrent session lookups into shared queries (see the module documentation).
pub struct SessionBatcher {
    pool: PgPool,
    queue: Mutex<Vec<(TokenHash, oneshot::Sender<Answer>)>>,
    running: AtomicUsize,
}

impl std::fmt::Debug for SessionBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionBatcher")
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    token_hash: Vec<u8>,
    #[sqlx(flatten)]
    record: SessionRecord,
}

impl SessionBatcher {
    /// A batcher with [`MAX_IN_FLIGHT`] connections of its own, to the database `pool`
    /// connects to. Its own, because the pool's connections can all be held by writers: a
    /// flood of sign-ins from one address queues on that address's throttle lock, each
    /// holding a connection while it waits, and signed-in requests must not wait behind
    /// them. The connections are opened when first needed.
    pub fn new(pool: &PgPool) -> Arc<Self> {
        let options = pool.options();
        let own = sqlx::postgres::PgPoolOptions::new()
            .max_connections(MAX_IN_FLIGHT as u32)
            .acquire_timeout(options.get_acquire_timeout())
            .test_before_acquire(false)
            .connect_lazy_with((*pool.connect_options()).clone());
        Arc::new(Self {
            pool: own,
            queue: Mutex::new(Vec::new()),
            running: AtomicUsize::new(0),
        })
    }

    /// The session (joined to its user) whose secret hashes to `hash`, as
    /// [`super::sessions::find`] returns it.
    pub async fn find(self: &Arc<Self>, hash: TokenHash) -> Answer {
        let (tx, rx) = oneshot::channel();
        self.queue
            .lock()
            .map_err(|_| StoreError::Unavailable("session lookup queue poisoned".into()))?
            .push((hash, tx));
        if self.claim() {
            // A task of its own, so that a request cancelled mid-query does not cancel the
            // lookups of the others in its batch.
            tokio::spawn(Arc::clone(self).drain());
        }
        rx.await
            .map_err(|_| StoreError::Unavailable("session lookup abandoned".into()))?
    }

    /// Takes a runner slot if one is free.
    fn claim(&self) -> bool {
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_IN_FLIGHT).then_some(n + 1)
            })
            .is_ok()
    }

    fn take(&self) -> Vec<(TokenHash, oneshot::Sender<Answer>)> {
        let Ok(mut queue) = self.queue.lock() else {
            return Vec::new();
        };
        let n = queue.len().min(MAX_BATCH);
        queue.drain(..n).collect()
    }

    /// Runs batches until the queue is empty, then gives its slot back.
    async fn drain(self: Arc<Self>) {
        loop {
            let batch = self.take();
            if batch.is_empty() {
                self.running.fetch_sub(1, Ordering::AcqRel);
                // A lookup queued after `take` may have found every slot taken: look again
                // now that ours is free, and carry on if no one else took it.
                let waiting = self.queue.lock().map(|q| !q.is_empty()).unwrap_or(false);
                if waiting && self.claim() {
                    continue;
                }
                return;
            }
            self.answer(batch).await;
        }
    }

    async fn answer(&self, batch: Vec<(TokenHash, oneshot::Sender<Answer>)>) {
        let hashes: Vec<&[u8]> = batch.iter().map(|(h, _)| h.as_bytes()).collect();
        let rows: Result<Vec<Row>, sqlx::Error> = sqlx::query_as(FIND_MANY_SQL)
            .bind(&hashes)
            .fetch_all(&self.pool)
            .await;
        match rows {
            Ok(rows) => {
                let found: HashMap<Vec<u8>, SessionRecord> = rows
                    .into_iter()
                    .map(|row| (row.token_hash, row.record))
                    .collect();
                for (hash, tx) in batch {
                    let _ = tx.send(Ok(found.get(hash.as_bytes()).cloned()));
                }
            }
            Err(e) => {
                let error = StoreError::from(e);
                for (_, tx) in batch {
                    let _ = tx.send(Err(copy(&error)));
                }
            }
        }
    }
}

/// The same error for each waiter of a failed batch (a driver error keeps its message and
/// stays an internal error; the others are plain data).
fn copy(error: &StoreError) -> StoreError {
    match error {
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Conflict => StoreError::Conflict,
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Config(m) => StoreError::Config(m.clone()),
        StoreError::Migration(m) => StoreError::Migration(m.clone()),
        StoreError::Backend(e) => StoreError::Backend(sqlx::Error::Protocol(e.to_string())),
    }
}
