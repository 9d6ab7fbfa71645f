//! What latch keeps for the request it is serving, for the time of one of latch's routes
//! (set by `middleware::Observe`): the page prefix and, once loaded, the session.
//!
//! A task-local rather than request extensions: each extension is an allocation and a
//! hash-map insert, and the fourth makes the map grow (axum already inserts three). An
//! application's own routes, which latch's middleware does not wrap, have no scope; there
//! the callers use request extensions.

use std::cell::OnceCell;
use std::future::Future;
use std::sync::Arc;

use crate::sessions::ActiveSession;

/// The request's session as loaded by the first extractor that needed it.
pub(super) type Loaded = Arc<Option<ActiveSession>>;

struct RequestScope {
    /// The page prefix (`super::base::Base`'s; kept as its text so that this file, which
    /// `base` uses, needs nothing of `base`).
    prefix: Arc<str>,
    session: OnceCell<Loaded>,
}

tokio::task_local! {
    static CURRENT: RequestScope;
}

/// Runs `serve` (one request to a latch route) with `prefix` as its page prefix.
pub(super) fn run<F: Future>(prefix: Arc<str>, serve: F) -> impl Future<Output = F::Output> {
    let scope = RequestScope {
        prefix,
        session: OnceCell::new(),
    };
    CURRENT.scope(scope, serve)
}

/// The page prefix, when a latch route is being served.
pub(super) fn prefix() -> Option<Arc<str>> {
    CURRENT.try_with(|scope| Arc::clone(&scope.prefix)).ok()
}

/// The session already loaded for this request, if any.
pub(super) fn session() -> Option<Loaded> {
    CURRENT
        .try_with(|scope| scope.session.get().cloned())
        .ok()
        .flatten()
}

/// Keeps `session` for the rest of the request; `false` outside a latch route (the caller
/// keeps it elsewhere).
pub(super) fn keep_session(session: &Loaded) -> bool {
    CURRENT
        .try_with(|scope| {
            let _ = scope.session.set(Arc::clone(session));
        })
        .is_ok()
}
