//! What every response gets: a request id, the security headers, metrics and a log line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use std::convert::Infallible;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::Response;
use futures_util::FutureExt;
use tower::{Layer, Service};
use tracing::Instrument;

use super::error::ApiError;
use crate::state::AppState;

/// The response header carrying the request id (also in every log line of the request).
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A request id: a process-random prefix and a counter, unique, cheap, and never taken from
/// the client (a client-chosen id could forge log lines). Formatted only where it is shown
/// (the response header, a log line), so an unlogged request builds no `String` for it.
#[derive(Debug, Clone, Copy)]
struct RequestId(u64);

impl RequestId {
    fn next() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        Self(COUNTER.fetch_add(1, Ordering::Relaxed))
    }

    /// The prefix: 4 random bytes in hex, drawn once per process.
    fn prefix() -> &'static str {
        static PREFIX: LazyLock<String> = LazyLock::new(|| {
            let mut bytes = [0u8; 4];
            let _ = getrandom::fill(&mut bytes);
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        });
        &PREFIX
    }

    /// The header value, `{prefix}-{counter:x}`, written by hand into a stack buffer (the
    /// formatting machinery cost more than the rest of this function).
    fn header_value(self) -> Option<HeaderValue> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 8 + 1 + 16];
        let prefix = Self::prefix().as_bytes();
        buf[..prefix.len()].copy_from_slice(prefix);
        buf[prefix.len()] = b'-';
        let start = prefix.len() + 1;
        let digits = (16 - self.0.leading_zeros() as usize / 4).max(1);
        for i in 0..digits {
            let nibble = (self.0 >> (4 * (digits - 1 - i))) & 0xf;
            buf[start + i] = HEX[nibble as usize];
        }
        HeaderValue::from_bytes(&buf[..start + digits]).ok()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{:x}", Self::prefix(), self.0)
    }
}

/// Wraps every request: span with the request id, the request timeout, metrics and headers.
///
/// Metric labels come from fixed sets only (a method from [`method_label`], the matched route
/// template or `unmatched`, the status code), so no request can add a label value: a client
/// inventing HTTP methods or paths does not grow `/metrics`. The metric handles are
/// registered once per label set ([`crate::telemetry::HttpMetrics`]), and the span is only
/// built (its fields formatted) when its level is enabled.
///
/// A hand-written service rather than `axum::middleware::from_fn`, which clones the whole
/// inner service stack (one allocation per boxed layer) and boxes it again on every request.
#[derive(Clone)]
pub struct ObserveLayer(pub AppState);

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            state: self.0.clone(),
            inner,
        }
    }
}

/// The service of [`ObserveLayer`].
#[derive(Clone)]
pub struct Observe<S> {
    state: AppState,
    inner: S,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let state = self.state.clone();
        let request_id = RequestId::next();
        let method = method_label(request.method());
        // A request that may write (a sign-out, a revocation, a role change): the session
        // cache, when on, is emptied before its answer leaves (see `store::session_cache`).
        let may_write = !matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        );
        let path = request.uri().path();
        let api = super::extract::is_api_path(path);
        let is_static = path.starts_with("/static/");
        let route = request.extensions().get::<MatchedPath>().cloned();
        let span = tracing::info_span!("request", id = %request_id, method, path = %path);
        let base = super::base::Base::enter(&state, &request);
        // Boxed at once: the handler's future is several hundred bytes, and each wrapper
        // below (prefix scope, span, timeout) would otherwise copy it again; one allocation
        // is cheaper than those copies. A panic, in the call or in the future, becomes an
        // opaque 500 here, inside this service, so it still gets the headers and metrics
        // below (a separate outer layer would also box every response body).
        let called = catch_unwind(AssertUnwindSafe(|| Box::pin(self.inner.call(request))));
        Box::pin(async move {
            // From `started`: one clock read fewer than `timeout`.
            let deadline = tokio::time::Instant::from_std(started)
                + Duration::from_secs(state.config.request_timeout_secs);
            let serve = base.scope(async move {
                let outcome = match called {
                    Ok(serve) => AssertUnwindSafe(serve).catch_unwind().await,
                    Err(panic) => Err(panic),
                };
                match outcome {
                    Ok(Ok(response)) => response,
                    Ok(Err(never)) => match never {},
                    Err(panic) => panic_response(panic),
                }
            });
            let mut response =
                match tokio::time::timeout_at(deadline, serve.instrument(span.clone())).await {
                    Ok(response) => response,
                    Err(_) => {
                        span.in_scope(|| {
                            tracing::warn!(
                                "request took longer than request_timeout_secs; answering 503"
                            )
                        });
                        envelope(ApiError::Unavailable, api)
                    }
                };
            if may_write {
                state.sessions_changed();
            }
            if is_framework_rejection(&response) {
                response = envelope_for(response.status(), api);
            }
            let status = response.status();
            let elapsed = started.elapsed();

            let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
            state
                .http_metrics
                .record(route, method, status.as_u16(), elapsed);
            if status.is_server_error() {
                span.in_scope(|| {
                    tracing::warn!(
                        status = status.as_u16(),
                        ms = elapsed.as_millis() as u64,
                        "request failed"
                    )
                });
            } else if tracing::enabled!(tracing::Level::DEBUG) {
                span.in_scope(|| {
                    tracing::debug!(
                        status = status.as_u16(),
                        ms = elapsed.as_millis() as u64,
                        "request"
                    )
                });
            }

            let headers = response.headers_mut();
            if let Some(value) = request_id.header_value() {
                headers.insert(REQUEST_ID, value);
            }
            set_security_headers(headers, state.config.is_https(), is_static);
            Ok(response)
        })
    }
}

/// The method as a metric label: the standard methods by name, anything else `other`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn envelope(error: ApiError, api: bool) -> Response {
    if api {
        axum::response::IntoResponse::into_response(error)
    } else {
        error.into_page()
    }
}

/// axum's own extractor rejections (a path parameter that is not UTF-8, say) are plain
/// text; every latch error has a JSON or HTML body, so plain text on a 4xx is the framework's.
fn is_framework_rejection(response: &Response) -> bool {
    response.status().is_client_error()
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/plain"))
}

/// The error envelope (or page) for a framework rejection with this status; the framework's
/// wording is not shown.
fn envelope_for(status: axum::http::StatusCode, api: bool) -> Response {
    let error = match status.as_u16() {
        404 => ApiError::NotFound,
        405 => ApiError::MethodNotAllowed,
        413 => ApiError::PayloadTooLarge,
        415 => ApiError::UnsupportedMediaType,
        _ => ApiError::BadRequest("the URL, query or body is malformed".into()),
    };
    envelope(error, api)
}

/// The headers every response gets, one map per `(https, static)` case, built once: each
/// response starts from a copy of one (two allocations and plain copies) and gets the
/// handler's own headers added, instead of hashing and inserting seven headers (and growing
/// the map twice) on every response.
static SECURITY_HEADERS: LazyLock<[HeaderMap; 4]> = LazyLock::new(|| {
    let build = |https: bool, is_static: bool| {
        let mut headers = HeaderMap::with_capacity(16);
        for (name, value) in &FIXED_HEADERS {
            headers.insert(name.clone(), HeaderValue::from_static(value));
        }
        if https {
            headers.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(HSTS),
            );
        }
        let cache = if is_static {
            "public, max-age=3600"
        } else {
            "no-store"
        };
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers
    };
    [
        build(false, false),
        build(false, true),
        build(true, false),
        build(true, true),
    ]
});

/// Set on every response, whatever the handler set. A `static`, so looking a name up in it
/// builds nothing.
static FIXED_HEADERS: [(HeaderName, &str); 5] = [
    (header::CONTENT_SECURITY_POLICY, CSP),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "same-origin"),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
];

const HSTS: &str = "max-age=63072000; includeSubDomains";

/// Replaces `headers` with the security headers plus the handler's own: the fixed ones (and
/// HSTS behind https) win over a handler's, a handler's `Cache-Control` wins over the default
/// (`no-store`, or an hour for `/static/`).
fn set_security_headers(headers: &mut HeaderMap, https: bool, is_static: bool) {
    let mut merged = SECURITY_HEADERS[usize::from(https) * 2 + usize::from(is_static)].clone();
    let overridden = |name: &HeaderName| {
        FIXED_HEADERS.iter().any(|(fixed, _)| fixed == name)
            || (https && *name == header::STRICT_TRANSPORT_SECURITY)
    };
    // `HeaderMap`'s iterator names a header once, before its first value; `None` follows for
    // each further value of the same header.
    let mut current: Option<HeaderName> = None;
    for (name, value) in std::mem::take(headers) {
        match name {
            Some(name) => {
                if overridden(&name) {
                    current = None;
                } else {
                    merged.insert(name.clone(), value);
                    current = Some(name);
                }
            }
            None => {
                if let Some(name) = &current {
                    merged.append(name.clone(), value);
                }
            }
        }
    }
    *headers = merged;
}

/// A panic becomes an opaque 500 in the error envelope; the panic text is logged only.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "handler panicked");
    axum::response::IntoResponse::into_response(super::error::ApiError::Internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_written_like_their_display() {
        for n in [0, 1, 15, 16, 255, 0xdead_beef, u64::MAX] {
            let id = RequestId(n);
            assert_eq!(id.header_value().unwrap(), id.to_string().as_str());
        }
    }

    #[test]
    fn security_headers_win_but_a_handler_keeps_its_own() {
        let mut headers = HeaderMap::new();
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("ALLOW"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
        headers.append(header::SET_COOKIE, HeaderValue::from_static("a=1"));
        headers.append(header::SET_COOKIE, HeaderValue::from_static("b=2"));
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("x"),
        );
        set_security_headers(&mut headers, true, false);
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers[header::CACHE_CONTROL], "private");
        assert_eq!(headers[header::STRICT_TRANSPORT_SECURITY], HSTS);
        let cookies: Vec<_> = headers.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(headers["cross-origin-opener-policy"], "same-origin");

        let mut plain = HeaderMap::new();
        set_security_headers(&mut plain, false, true);
        assert_eq!(plain[header::CACHE_CONTROL], "public, max-age=3600");
        assert!(!plain.contains_key(header::STRICT_TRANSPORT_SECURITY));
        assert_eq!(plain[header::CONTENT_SECURITY_POLICY], CSP);
    }

    /// A panic in a handler, while it is called or while its future runs, is an opaque 500
    /// in the error envelope that still carries the request id and the security headers.
    #[tokio::test]
    async fn a_panic_becomes_an_opaque_500_with_the_usual_headers() {
        use std::sync::Arc;
        use tower::ServiceExt;

        let dir = tempfile::tempdir().unwrap();
        let config = crate::Config {
            database_url: format!("sqlite://{}/t.db", dir.path().display()),
            ..Default::default()
        };
        let state = AppState::new(config, Arc::new(crate::clock::SystemClock))
            .await
            .unwrap();
        for in_call in [true, false] {
            let handler = tower::service_fn(move |_: Request| {
                assert!(!in_call, "boom while called");
                async move {
                    assert!(in_call, "boom while running");
                    Ok::<Response, Infallible>(Response::default())
                }
            });
            let request = Request::get("/api/anything")
                .body(axum::body::Body::empty())
                .unwrap();
            let response = ObserveLayer(state.clone())
                .layer(handler)
                .oneshot(request)
                .await
                .unwrap();
            assert_eq!(response.status(), 500, "panic in the call: {in_call}");
            assert!(response.headers().contains_key(REQUEST_ID));
            assert_eq!(
                response.headers()[header::X_CONTENT_TYPE_OPTIONS],
                "nosniff"
            );
            let body = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .unwrap();
            let body = String::from_utf8_lossy(&body);
            assert!(body.contains("internal_error"), "{body}");
            assert!(!body.contains("boom"), "{body}");
        }
    }
}
