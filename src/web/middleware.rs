//! What every response gets: a request id, the security headers, metrics and a log line.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::error::ApiError;
use crate::state::AppState;

/// The response header carrying the request id (also in every log line of the request).
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A process-random prefix and a counter: unique, cheap, and never taken from the client
/// (a client-chosen id could forge log lines).
fn next_request_id() -> String {
    static PREFIX: LazyLock<String> = LazyLock::new(|| {
        let mut bytes = [0u8; 4];
        let _ = getrandom::fill(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    });
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!("{}-{:x}", *PREFIX, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Wraps every request: span with the request id, the request timeout, metrics and headers.
///
/// Metric labels come from fixed sets only (a method from [`method_label`], the matched route
/// template or `unmatched`, the status code), so no request can add a label value: a client
/// inventing HTTP methods or paths does not grow `/metrics`.
pub async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = next_request_id();
    let method = method_label(request.method());
    let api = super::extract::is_api_path(request.uri().path());
    let is_static = request.uri().path().starts_with("/static/");
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| intern(p.as_str()));
    let span = tracing::info_span!(
        "request",
        id = %request_id,
        method,
        path = %request.uri().path()
    );
    let limit = Duration::from_secs(state.config.request_timeout_secs);
    let base = super::base::Base::enter(&state, &mut request);
    let serve = base.scope(next.run(request).instrument(span.clone()));
    let mut response = match tokio::time::timeout(limit, serve).await {
        Ok(response) => response,
        Err(_) => {
            span.in_scope(|| {
                tracing::warn!("request took longer than request_timeout_secs; answering 503")
            });
            envelope(ApiError::Unavailable, api)
        }
    };
    if is_framework_rejection(&response) {
        response = envelope_for(response.status(), api);
    }
    let status = response.status();
    let elapsed = started.elapsed();

    metrics::counter!(
        "latch_http_requests_total",
        "route" => route,
        "method" => method,
        "status" => intern(status.as_str())
    )
    .increment(1);
    metrics::histogram!("latch_http_request_duration_seconds", "route" => route)
        .record(elapsed.as_secs_f64());
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(
                status = status.as_u16(),
                ms = elapsed.as_millis() as u64,
                "request failed"
            );
        } else {
            tracing::debug!(
                status = status.as_u16(),
                ms = elapsed.as_millis() as u64,
                "request"
            );
        }
    });

    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID, value);
    }
    set_security_headers(headers, state.config.is_https(), is_static);
    response
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

/// Most distinct label values [`intern`] keeps; more would mean labels are not a fixed set.
const MAX_INTERNED: usize = 1024;

/// A `&'static str` for a label value from a fixed set (route templates, status codes), so
/// recording a metric builds no `String`: each value is stored once for the process.
fn intern(value: &str) -> &'static str {
    static TABLE: LazyLock<RwLock<HashSet<&'static str>>> = LazyLock::new(Default::default);
    if let Ok(table) = TABLE.read() {
        if let Some(&known) = table.get(value) {
            return known;
        }
    }
    let Ok(mut table) = TABLE.write() else {
        return "other";
    };
    if let Some(&known) = table.get(value) {
        return known;
    }
    if table.len() >= MAX_INTERNED {
        return "other";
    }
    let stored: &'static str = Box::leak(value.to_owned().into_boxed_str());
    table.insert(stored);
    stored
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

fn set_security_headers(headers: &mut axum::http::HeaderMap, https: bool, is_static: bool) {
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        let value = if is_static {
            "public, max-age=3600"
        } else {
            "no-store"
        };
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    }
}

/// A panic becomes an opaque 500 in the error envelope; the panic text is logged only.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "handler panicked");
    axum::response::IntoResponse::into_response(super::error::ApiError::Internal)
}
