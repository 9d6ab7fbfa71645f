//! The client's socket address: set by latch's own accept loop ([`crate::server`]) for the
//! request it serves, or else `ConnectInfo<SocketAddr>`, which an application embedding
//! latch under `axum::serve` supplies (`into_make_service_with_connect_info`).
//!
//! A task-local rather than a request extension: each extension is an allocation and a
//! hash-map insert on every request, and the fourth one makes the map grow.

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::Extensions;

tokio::task_local! {
    static PEER: SocketAddr;
}

/// Runs `serve` (one request) with `peer` as its client address.
pub fn scope<F: Future>(peer: SocketAddr, serve: F) -> impl Future<Output = F::Output> {
    PEER.scope(peer, serve)
}

/// The address of the client the current request came from, if the server said.
pub fn of(extensions: &Extensions) -> Option<SocketAddr> {
    PEER.try_with(|peer| *peer).ok().or_else(|| {
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| *addr)
    })
}
