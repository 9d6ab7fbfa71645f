//! Static files, embedded in the binary (no CDN, nothing read from disk at run time).

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

const FILES: &[(&str, &str, &str)] = &[
    (
        "pico.min.css",
        "text/css; charset=utf-8",
        include_str!("../../static/pico.min.css"),
    ),
    (
        "latch.css",
        "text/css; charset=utf-8",
        include_str!("../../static/latch.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../static/favicon.svg"),
    ),
    (
        "latch.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/latch.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/app.js"),
    ),
    (
        "pages.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/pages.js"),
    ),
];

/// `GET /static/{file}`.
pub async fn static_file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            *body,
        )
            .into_response(),
        None => ApiError::NotFound.into_page(),
    }
}
