//! The HTTP/1 accept loop: connection limit, header and keep-alive timeouts, graceful stop.
//!
//! `axum::serve` has none of these limits, so a client sending one header line every few
//! seconds held its connection for as long as it liked. Here every connection has a
//! [`Watchdog`] with one deadline at a time:
//!
//! - from the opening of the connection, and from the first byte of each later request, the
//!   request headers must be complete within `header_timeout_secs`;
//! - while a request is being handled there is no connection deadline (the handler has
//!   `request_timeout_secs`, enforced in [`crate::web::middleware::Observe`]);
//! - once the response is ready, the connection may stay idle for `keepalive_timeout_secs`.
//!
//! When the deadline passes, the connection is dropped (closed). hyper's own
//! `header_read_timeout` is not used: hyper 1.x starts that timer as soon as a keep-alive
//! connection becomes idle, so the idle wait and the header read share one duration, and the
//! two settings could not differ (30 s and 60 s by default). The watchdog counts them apart.
//!
//! At most `max_connections` connections are open per listener; beyond that, new ones are not
//! accepted and wait in the kernel's listen backlog until a connection closes.
//!
//! When hyper is done with a connection (the client closed it, asked for `Connection: close`,
//! or a response went out without its request body having been read, such as a 413 for an
//! oversized upload), the connection gets a [`linger`]ing close rather than an immediate one.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::config::Config;

/// The longest a [`linger`]ing close waits for the client to stop sending.
const LINGER_TIME: Duration = Duration::from_secs(2);
/// The most request bytes a [`linger`]ing close reads and discards.
const LINGER_BYTES: usize = 4 * 1024 * 1024;

/// The connection limits of a listener (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time to send complete request headers.
    pub header_timeout: Duration,
    /// Time an idle keep-alive connection stays open.
    pub keepalive_timeout: Duration,
    /// Open connections at once.
    pub max_connections: usize,
}

impl Limits {
    /// The limits `config` sets.
    pub fn from_config(config: &Config) -> Self {
        Self {
            header_timeout: Duration::from_secs(config.header_timeout_secs),
            keepalive_timeout: Duration::from_secs(config.keepalive_timeout_secs),
            max_connections: config.max_connections,
        }
    }
}

/// Serves `router` on `listener` until `stop` turns true, then stops accepting, closes idle
/// connections, lets requests in progress finish and returns when every connection is closed.
/// latch's extractors see the peer address through [`crate::web::peer`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        while connections.try_join_next().is_some() {}
        let router = router.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            serve_connection(stream, peer, router, limits, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Completes once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Like hyper 0.14 and `axum::serve`: a connection reset before `accept` is nothing; anything
/// else (out of file descriptors) is logged and accepting pauses for a second.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let dog = Arc::new(Watchdog::new(limits));
    let io = TokioIo::new(WatchedStream {
        inner: stream,
        dog: dog.clone(),
    });
    let service_dog = dog.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        service_dog.request_started();
        let router = router.clone();
        let dog = service_dog.clone();
        // Boxed so that the connection is `Unpin` and `poll_without_shutdown` can hand the
        // socket back for the lingering close.
        let response: ResponseFuture = Box::pin(async move {
            let response = crate::web::peer::scope(peer, router.oneshot(request)).await;
            dog.response_ready();
            response
        });
        response
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The watchdog times headers and idle waits (see the module documentation).
    builder.header_read_timeout(None);
    let mut connection = builder.serve_connection(io, service);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = std::future::poll_fn(|cx| connection.poll_without_shutdown(cx)) => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                linger(connection.into_parts().io.into_inner().inner).await;
                return;
            }
            () = dog.expired() => {
                tracing::debug!(%peer, "closing a connection: headers too slow or idle too long");
                return;
            }
            () = stopped(&mut stop), if !stopping => {
                stopping = true;
                if dog.is_quiet() {
                    return;
                }
                Pin::new(&mut connection).graceful_shutdown();
            }
        }
    }
}

/// What the service answers a request with.
type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<axum::response::Response, Infallible>> + Send>>;

/// Closes `stream` the way nginx's `lingering_close` does: shut down the sending side (the
/// client sees the end of the response), then read and discard whatever the client still
/// sends, until it closes too, for at most [`LINGER_TIME`] and [`LINGER_BYTES`].
///
/// Closing a socket whose receive buffer holds unread bytes, or that receives more bytes after
/// the close, makes the kernel send RST instead of a clean end. After a 413 for an oversized
/// body the client is usually still sending that body; the RST fails its next write, and HTTP
/// clients such as reqwest then report a send error instead of the 413 already sent to them.
/// Reading the rest lets the client finish sending and read the answer. The bounds keep a
/// client from holding the connection: at most [`LINGER_TIME`] beyond the other limits.
async fn linger(mut stream: TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = LINGER_BYTES;
    let drain = async {
        while left > 0 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// No byte of a request read yet on a fresh connection: the header deadline runs.
const FRESH: u8 = 0;
/// Part of a request head read: the header deadline runs.
const HEADERS: u8 = 1;
/// A request is being handled: no connection deadline.
const BUSY: u8 = 2;
/// The last response is ready and nothing new was read: the keep-alive deadline runs.
const IDLE: u8 = 3;

/// No deadline (a request is being handled).
const NO_DEADLINE: u64 = u64::MAX;

/// A connection's phase and its one deadline (see the module documentation).
///
/// The deadline is an atomic, not a channel: moving it is one store, and nobody is woken.
/// [`Watchdog::expired`] sleeps at most the shorter of the two timeouts at a time and then
/// looks again, which is enough to see every deadline in time: a deadline is only ever set a
/// full timeout ahead, so it never falls before the sleeper's next look. (A channel woke the
/// connection's task at each of the three moves every request makes.)
struct Watchdog {
    phase: AtomicU8,
    /// Nanoseconds after `epoch`, or [`NO_DEADLINE`].
    deadline: AtomicU64,
    epoch: Instant,
    limits: Limits,
}

impl Watchdog {
    fn new(limits: Limits) -> Self {
        let dog = Self {
            phase: AtomicU8::new(FRESH),
            deadline: AtomicU64::new(NO_DEADLINE),
            epoch: Instant::now(),
            limits,
        };
        dog.set_deadline(Some(limits.header_timeout));
        dog
    }

    /// Sets the deadline `timeout` from now (none for `None`).
    fn set_deadline(&self, timeout: Option<Duration>) {
        let at = timeout.map_or(NO_DEADLINE, |t| {
            let at = (Instant::now() + t).duration_since(self.epoch);
            u64::try_from(at.as_nanos()).unwrap_or(NO_DEADLINE - 1)
        });
        self.deadline.store(at, Ordering::Release);
    }

    fn deadline(&self) -> Option<Instant> {
        match self.deadline.load(Ordering::Acquire) {
            NO_DEADLINE => None,
            at => Some(self.epoch + Duration::from_nanos(at)),
        }
    }

    /// Bytes arrived: on an idle connection they start a request, whose headers now have
    /// `header_timeout` (a fresh connection's deadline already runs from its opening).
    fn bytes_read(&self) {
        match self.phase.load(Ordering::Acquire) {
            FRESH => self.phase.store(HEADERS, Ordering::Release),
            IDLE => {
                self.phase.store(HEADERS, Ordering::Release);
                self.set_deadline(Some(self.limits.header_timeout));
            }
            _ => {}
        }
    }

    /// The headers are complete and the request goes to the router.
    fn request_started(&self) {
        self.phase.store(BUSY, Ordering::Release);
        self.set_deadline(None);
    }

    /// The response is ready; the connection is idle until the next request's first byte.
    fn response_ready(&self) {
        self.phase.store(IDLE, Ordering::Release);
        self.set_deadline(Some(self.limits.keepalive_timeout));
    }

    /// Nothing of a request has been read: at shutdown the connection can simply close.
    fn is_quiet(&self) -> bool {
        matches!(self.phase.load(Ordering::Acquire), FRESH | IDLE)
    }

    /// Completes when the current deadline has passed.
    async fn expired(&self) {
        let step = self
            .limits
            .header_timeout
            .min(self.limits.keepalive_timeout);
        loop {
            let now = Instant::now();
            let wake = match self.deadline() {
                Some(at) if at <= now => return,
                Some(at) => at.min(now + step),
                None => now + step,
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

/// The TCP stream, telling the watchdog when bytes arrive.
struct WatchedStream {
    inner: TcpStream,
    dog: Arc<Watchdog>,
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.dog.bytes_read();
        }
        result
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
