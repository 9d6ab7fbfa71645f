//! Password hashing with Argon2id, off the async runtime and with bounded memory.
//!
//! Every hash runs on one of `workers` threads of the hasher's own, after taking one of
//! `workers` permits, so a flood of sign-ins queues instead of starving other requests. Each
//! permit owns one reusable Argon2 memory buffer: at most `workers` buffers ever exist,
//! whatever the load (running every hash at once, as a plain `spawn_blocking` per request
//! does, makes the allocator keep one 19 MiB buffer per concurrent request).
//!
//! The hashing threads run at a lower scheduling priority ([`crate::priority`], Linux): with one
//! hashing thread per core, a sign-in flood would otherwise take half of every core from the
//! runtime's workers, and the latency of every other request (a `verify_auth` at 16
//! connections: its p99 rose 6×) with it. At the lower priority a hash uses whatever CPU the
//! runtime leaves idle, so sign-ins alone still run at the machine's full Argon2 rate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use tokio::sync::{oneshot, OnceCell, Semaphore};

use crate::domain::Password;

/// Work for a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// Hashes above this memory cost are refused rather than computed (a hostile import).
const MAX_VERIFY_M_COST: u32 = 1024 * 1024;

/// Why hashing failed. Never caused by user input.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Argon2 rejected its inputs or parameters.
    #[error("argon2: {0}")]
    Argon2(String),
    /// The blocking task was cancelled or panicked.
    #[error("hashing task failed")]
    Task,
}

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Wrong password (or no account; see [`PasswordHasher::verify`]).
    Mismatch,
    /// The password is right; `needs_rehash` when the stored hash uses other parameters.
    Match {
        /// The stored hash should be replaced with one using the current parameters.
        needs_rehash: bool,
    },
}

/// Argon2id hashing with a bounded number of concurrent hashes.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    params: Params,
    slots: Arc<Semaphore>,
    buffers: Mutex<Vec<Vec<Block>>>,
    dummy: OnceCell<String>,
    computations: AtomicU64,
    /// The queue of the hashing threads; they end when the hasher (and so this) is dropped.
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl PasswordHasher {
    /// A hasher with the given Argon2id cost and `workers` concurrent hashes (0: one per core).
    pub fn new(m_cost: u32, t_cost: u32, p_cost: u32, workers: usize) -> Result<Self, HashError> {
        let params = Params::new(m_cost, t_cost, p_cost, None)
            .map_err(|e| HashError::Argon2(e.to_string()))?;
        let workers = if workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            workers
        };
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..workers {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("latch-hash-{n}"))
                .spawn(move || hashing_thread(&queue))
                .map_err(|e| HashError::Argon2(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                params,
                slots: Arc::new(Semaphore::new(workers)),
                buffers: Mutex::new(Vec::new()),
                dummy: OnceCell::new(),
                computations: AtomicU64::new(0),
                jobs: Mutex::new(jobs),
            }),
        })
    }

    /// Hashes `password` into a PHC string with a fresh random salt.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let params = self.inner.params.clone();
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| HashError::Argon2(e.to_string()))?;
        let password = password.clone();
        let output = self
            .run(move |inner| inner.compute(&params, password.expose(), &salt))
            .await?;
        Ok(phc_string(&self.inner.params, &salt, &output))
    }

    /// Checks `password` against `stored`. When `stored` is `None` (no such account) it
    /// checks against a dummy hash instead, so the caller takes the same time either way.
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<Verification, HashError> {
        // A hash imported from a Flask application: checked on the same bounded pool, and
        // always replaced by Argon2id once the password is known.
        if let Some(legacy) = stored.and_then(crate::werkzeug::WerkzeugHash::parse) {
            let password = password.clone();
            let matched = self
                .run(move |_| {
                    let typed = password.expose_typed();
                    let ok =
                        legacy.verify(password.expose()) || typed.is_some_and(|t| legacy.verify(t));
                    Ok(vec![u8::from(ok)])
                })
                .await?;
            return Ok(if matched == [1] {
                Verification::Match { needs_rehash: true }
            } else {
                Verification::Mismatch
            });
        }
        // No account, or a hash latch cannot read: the same work against the dummy hash.
        let (parsed, real) = match stored.and_then(ParsedHash::parse) {
            Some(parsed) => (parsed, true),
            None => (
                ParsedHash::parse(self.dummy_hash().await?)
                    .ok_or_else(|| HashError::Argon2("dummy hash unreadable".into()))?,
                false,
            ),
        };
        let password = password.clone();
        let expected = parsed.output.clone();
        let salt = parsed.salt.clone();
        let params = parsed.params.clone();
        let output = self
            .run(move |inner| inner.compute(&params, password.expose(), &salt))
            .await?;
        let matches = bool::from(output.as_slice().ct_eq(expected.as_slice()));
        Ok(if matches && real {
            Verification::Match {
                needs_rehash: !same_cost(&parsed.params, &self.inner.params)
                    || parsed.version != Version::V0x13,
            }
        } else {
            Verification::Mismatch
        })
    }

    /// The hash of a random password, computed once, that unknown-user sign-ins check against.
    async fn dummy_hash(&self) -> Result<&str, HashError> {
        self.inner
            .dummy
            .get_or_try_init(|| async {
                let random = crate::domain::SecretToken::generate()
                    .map_err(|e| HashError::Argon2(e.to_string()))?;
                self.hash(&Password::for_sign_in(random.expose())).await
            })
            .await
            .map(String::as_str)
    }

    /// Computes the dummy hash now, so the first unknown-user sign-in costs no more than any.
    pub async fn warm_up(&self) -> Result<(), HashError> {
        self.dummy_hash().await.map(|_| ())
    }

    /// Hashing slots free right now (for the metrics).
    pub fn available_slots(&self) -> usize {
        self.inner.slots.available_permits()
    }

    /// How many Argon2 computations this hasher has run (for tests of equal work).
    pub fn computations(&self) -> u64 {
        self.inner.computations.load(Ordering::Relaxed)
    }

    async fn run<F>(&self, work: F) -> Result<Vec<u8>, HashError>
    where
        F: FnOnce(&Inner) -> Result<Vec<u8>, HashError> + Send + 'static,
    {
        metrics::gauge!("latch_password_hash_queue_depth").increment(1.0);
        let permit = Arc::clone(&self.inner.slots).acquire_owned().await;
        metrics::gauge!("latch_password_hash_queue_depth").decrement(1.0);
        let permit = permit.map_err(|_| HashError::Task)?;
        let inner = Arc::clone(&self.inner);
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            // A panic drops `done`, which the caller sees as a failed task.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&inner)));
            drop(permit);
            if let Ok(outcome) = outcome {
                let _ = done.send(outcome);
            }
        });
        self.inner
            .jobs
            .lock()
            .map_err(|_| HashError::Task)?
            .send(job)
            .map_err(|_| HashError::Task)?;
        result.await.map_err(|_| HashError::Task)?
    }
}

/// A hashing thread: lowers its own priority, then runs jobs until the hasher is gone.
fn hashing_thread(queue: &Mutex<mpsc::Receiver<Job>>) {
    // A runtime worker with a request to answer preempts a hash; a hash still gets every
    // idle cycle.
    crate::priority::lower_current_thread();
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

impl Inner {
    /// Runs Argon2id in a pooled buffer. Called only while holding a slot permit, so the pool
    /// never holds more buffers than there are slots.
    fn compute(&self, params: &Params, password: &[u8], salt: &[u8]) -> Result<Vec<u8>, HashError> {
        self.computations.fetch_add(1, Ordering::Relaxed);
        let mut buffer = self
            .buffers
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_default();
        let blocks = params.block_count();
        if buffer.len() != blocks {
            buffer = vec![Block::default(); blocks];
        }
        let mut output = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
        let result = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password_into_with_memory(password, salt, &mut output, &mut buffer)
            .map_err(|e| HashError::Argon2(e.to_string()));
        // Keep only buffers of the current size, so an old-parameter hash does not pin memory.
        if blocks == self.params.block_count() {
            if let Ok(mut pool) = self.buffers.lock() {
                pool.push(buffer);
            }
        }
        result.map(|()| output)
    }
}

/// The parts of an Argon2id PHC string.
struct ParsedHash {
    params: Params,
    version: Version,
    salt: Vec<u8>,
    output: Vec<u8>,
}

impl ParsedHash {
    fn parse(phc: &str) -> Option<Self> {
        let hash = PasswordHash::new(phc).ok()?;
        if hash.algorithm != Algorithm::Argon2id.ident() {
            return None;
        }
        let version = Version::try_from(hash.version.unwrap_or(0x13)).ok()?;
        if version != Version::V0x13 {
            return None;
        }
        let output = hash.hash?;
        let mut params = Params::try_from(&hash).ok()?;
        if params.m_cost() > MAX_VERIFY_M_COST {
            return None;
        }
        params = Params::new(
            params.m_cost(),
            params.t_cost(),
            params.p_cost(),
            Some(output.len()),
        )
        .ok()?;
        Some(Self {
            params,
            version,
            salt: {
                let mut buf = [0u8; 64];
                hash.salt?.decode_b64(&mut buf).ok()?.to_vec()
            },
            output: output.as_bytes().to_vec(),
        })
    }
}

/// Whether two parameter sets cost the same (the output length is not a cost: a stored hash
/// always records it, the configured parameters leave it at the default).
fn same_cost(a: &Params, b: &Params) -> bool {
    (a.m_cost(), a.t_cost(), a.p_cost()) == (b.m_cost(), b.t_cost(), b.p_cost())
        && a.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)
            == b.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)
}

fn phc_string(params: &Params, salt: &[u8], output: &[u8]) -> String {
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    use base64::Engine;
    format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(output)
    )
}

/// Whether `phc` is an Argon2id hash with exactly these parameters (used by tests and the CLI).
pub fn uses_params(phc: &str, m: u32, t: u32, p: u32) -> bool {
    phc.starts_with(&format!("$argon2id$v=19$m={m},t={t},p={p}$"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> PasswordHasher {
        PasswordHasher::new(64, 1, 1, 2).unwrap()
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let h = hasher();
        let pw = Password::for_sign_in("correct horse");
        let phc = h.hash(&pw).await.unwrap();
        assert!(uses_params(&phc, 64, 1, 1), "{phc}");
        // A hash with the current parameters does not ask for a rehash.
        assert_eq!(
            h.verify(&pw, Some(&phc)).await.unwrap(),
            Verification::Match {
                needs_rehash: false
            }
        );
        let wrong = Password::for_sign_in("wrong horse");
        assert_eq!(
            h.verify(&wrong, Some(&phc)).await.unwrap(),
            Verification::Mismatch
        );
    }

    #[tokio::test]
    async fn interoperates_with_the_reference_encoder() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
        let h = hasher();
        let pw = Password::for_sign_in("interop test");
        let ours = h.hash(&pw).await.unwrap();
        let argon = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        );
        argon
            .verify_password(pw.expose(), &PasswordHash::new(&ours).unwrap())
            .unwrap();
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let theirs = argon.hash_password(pw.expose(), &salt).unwrap().to_string();
        assert!(matches!(
            h.verify(&pw, Some(&theirs)).await.unwrap(),
            Verification::Match { .. }
        ));
    }

    #[tokio::test]
    async fn old_parameters_ask_for_a_rehash() {
        let old = PasswordHasher::new(32, 1, 1, 1).unwrap();
        let pw = Password::for_sign_in("rehash me please");
        let phc = old.hash(&pw).await.unwrap();
        assert_eq!(
            hasher().verify(&pw, Some(&phc)).await.unwrap(),
            Verification::Match { needs_rehash: true }
        );
    }

    #[tokio::test]
    async fn werkzeug_hashes_match_and_ask_for_a_rehash() {
        let stored = "pbkdf2:sha256:1000$Nqq2h5XAggzYy0pK$a7de6a1cc3e32bb94989245612294f76365f7f5faadc19b92bca73c3911f2bed";
        let h = hasher();
        let right = Password::for_sign_in("flask password 3");
        let wrong = Password::for_sign_in("flask password 4");
        assert_eq!(
            h.verify(&right, Some(stored)).await.unwrap(),
            Verification::Match { needs_rehash: true }
        );
        assert_eq!(
            h.verify(&wrong, Some(stored)).await.unwrap(),
            Verification::Mismatch
        );
    }

    #[tokio::test]
    async fn unknown_users_and_garbage_never_match() {
        let h = hasher();
        let pw = Password::for_sign_in("anything");
        assert_eq!(h.verify(&pw, None).await.unwrap(), Verification::Mismatch);
        assert_eq!(
            h.verify(&pw, Some("not a hash")).await.unwrap(),
            Verification::Mismatch
        );
        assert_eq!(
            h.verify(&pw, Some("pbkdf2:sha256:1000$salt$abcd"))
                .await
                .unwrap(),
            Verification::Mismatch
        );
    }

    #[tokio::test]
    async fn unknown_user_costs_one_hash_like_a_wrong_password() {
        let h = hasher();
        h.warm_up().await.unwrap();
        let phc = h
            .hash(&Password::for_sign_in("the real one"))
            .await
            .unwrap();
        let pw = Password::for_sign_in("a guess");
        let before = h.computations();
        h.verify(&pw, Some(&phc)).await.unwrap();
        let wrong_password = h.computations() - before;
        let before = h.computations();
        h.verify(&pw, None).await.unwrap();
        let unknown_user = h.computations() - before;
        assert_eq!((wrong_password, unknown_user), (1, 1));
    }

    #[tokio::test]
    async fn pool_holds_at_most_one_buffer_per_slot() {
        let h = hasher();
        let pw = Password::for_sign_in("flood");
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let h = h.clone();
                let pw = pw.clone();
                tokio::spawn(async move { h.hash(&pw).await.unwrap() })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert!(h.inner.buffers.lock().unwrap().len() <= 2);
    }
}
