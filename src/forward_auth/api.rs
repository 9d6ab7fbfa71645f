//! The two forward-auth endpoints. Both answer from the same decision; they differ only in
//! how "sign in first" is said: `/auth/check` (nginx `auth_request`, which accepts nothing
//! but 2xx, 401 and 403) answers 401 with a `Location` for `auth_request_set`, `/auth/forward`
//! (Traefik, Caddy, which pass the answer to the browser) a 302 to a browser's GET or HEAD.

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::Identity;
use crate::domain::access::Outcome;
use crate::state::AppState;
use crate::web::error::ApiError;
use crate::web::openapi::ErrorBody;

/// The forward-auth routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/check", get(check))
        .route("/auth/forward", get(forward))
}

/// How a sign-in is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// nginx `auth_request`: 401 with `Location`.
    Check,
    /// Traefik/Caddy: 302 for a browser's GET/HEAD, else 401.
    Forward,
}

/// `GET /auth/check`: forward-auth for nginx `auth_request`.
#[utoipa::path(
    get, path = "/auth/check", tag = "forward-auth", security((), ("session" = []), ("bearer" = [])),
    params(
        ("X-Original-URL" = Option<String>, Header, description = "The URL the visitor asked for (believed only from `trusted_proxies`)."),
        ("X-Original-Method" = Option<String>, Header, description = "Its method (default GET)."),
        ("X-Forwarded-Proto" = Option<String>, Header, description = "Or: scheme of the target."),
        ("X-Forwarded-Host" = Option<String>, Header, description = "Or: host of the target."),
        ("X-Forwarded-Uri" = Option<String>, Header, description = "Or: path and query of the target."),
        ("X-Forwarded-Method" = Option<String>, Header, description = "Or: method of the target."),
    ),
    responses(
        (status = 200, description = "Allowed: the identity in headers (none for an anonymous visitor under `bypass`), no body.", headers(
            ("Remote-User" = String, description = "Username."),
            ("Remote-Groups" = String, description = "Roles, comma-separated."),
            ("Remote-Email" = String, description = "Email address."),
            ("Remote-Name" = String, description = "Display name (first and last name, else the username)."),
            ("X-Latch-User" = String, description = "Username."),
            ("X-Latch-User-Id" = i64, description = "User id."),
            ("X-Latch-Roles" = String, description = "Explicit roles, comma-separated."))),
        (status = 401, description = "`unauthenticated`: sign in first (or add a second factor); `Location` says where, with the target in `next`, when a trusted proxy named the target.", body = ErrorBody,
            headers(("Location" = String, description = "`<public_url>/login?next=<target URL>`, `/login/mfa?next=…` or `/account/security`."))),
        (status = 403, description = "`forbidden`: a `deny` rule, or a malformed target from a trusted proxy.", body = ErrorBody),
    ),
)]
pub(crate) async fn check(State(state): State<AppState>, request: Parts) -> Response {
    answer(&state, &request, Style::Check).await
}

/// `GET /auth/forward`: forward-auth for Traefik `ForwardAuth` and Caddy `forward_auth`.
#[utoipa::path(
    get, path = "/auth/forward", tag = "forward-auth", security((), ("session" = []), ("bearer" = [])),
    params(
        ("X-Forwarded-Proto" = Option<String>, Header, description = "Scheme of the target (believed only from `trusted_proxies`)."),
        ("X-Forwarded-Host" = Option<String>, Header, description = "Host of the target."),
        ("X-Forwarded-Uri" = Option<String>, Header, description = "Path and query of the target."),
        ("X-Forwarded-Method" = Option<String>, Header, description = "Method of the target (default GET)."),
        ("X-Original-URL" = Option<String>, Header, description = "Or: the whole target URL."),
    ),
    responses(
        (status = 200, description = "Allowed: the identity in headers as for `/auth/check`."),
        (status = 302, description = "A browser's GET or HEAD that must sign in (or add a second factor) first.", headers(("Location" = String, description = "`<public_url>/login?next=<target URL>`, `/login/mfa?next=…` or `/account/security`."))),
        (status = 401, description = "`unauthenticated`: sign in first (not a browser navigation, or no target).", body = ErrorBody),
        (status = 403, description = "`forbidden`: a `deny` rule, or a malformed target from a trusted proxy.", body = ErrorBody),
    ),
)]
pub(crate) async fn forward(State(state): State<AppState>, request: Parts) -> Response {
    answer(&state, &request, Style::Forward).await
}

async fn answer(state: &AppState, request: &Parts, style: Style) -> Response {
    let headers = &request.headers;
    let identity = match super::identify(state, headers).await {
        Ok(identity) => identity,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let peer = crate::web::peer::of(&request.extensions).map(|addr| addr.ip());
    // From anyone but a trusted proxy the target headers are ignored: identity only.
    let target = if super::trusted(state, peer) {
        match super::target(headers) {
            Ok(target) => target,
            Err(e) => {
                tracing::warn!(error = %e, "forward-auth: unusable target from a trusted proxy");
                return ApiError::Forbidden.into_response();
            }
        }
    } else {
        None
    };
    let Some(target) = target else {
        return match &identity {
            Some(identity) => allowed(Some(identity)),
            None => ApiError::Unauthenticated.into_response(),
        };
    };
    let decision = super::decide(state, &target, identity.as_ref());
    tracing::debug!(
        rule = ?decision.rule.map(|r| r.index),
        outcome = decision.outcome.as_str(),
        target = %target.url,
        "forward-auth"
    );
    let location = match (decision.outcome, &identity) {
        (Outcome::Allow, identity) => return allowed(identity.as_ref()),
        (Outcome::Forbidden, _) => return ApiError::Forbidden.into_response(),
        (Outcome::SecondFactor, Some(identity)) => {
            super::second_factor_location(state, identity, &target.url)
        }
        (Outcome::SignIn | Outcome::SecondFactor, _) => {
            super::sign_in_location(state, "/login", &target.url)
        }
    };
    let navigation = matches!(target.method.as_str(), "GET" | "HEAD") && is_browser(headers);
    let mut response = if style == Style::Forward && navigation {
        StatusCode::FOUND.into_response()
    } else {
        ApiError::Unauthenticated.into_response()
    };
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Whether the visitor is a browser navigating (not a script): no `X-Requested-With` and an
/// `Accept` that is not JSON only.
fn is_browser(headers: &HeaderMap) -> bool {
    if headers.contains_key("x-requested-with") {
        return false;
    }
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase();
    let json = accept.contains("application/json") || accept.contains("+json");
    !json || accept.contains("text/html")
}

/// 200 with the identity headers (none for an anonymous visitor let through by `bypass`).
fn allowed(identity: Option<&Identity>) -> Response {
    let mut response = StatusCode::OK.into_response();
    let Some(Identity { user, .. }) = identity else {
        return response;
    };
    let name = [user.first_name.as_deref(), user.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let groups = super::groups(user);
    let pairs = [
        ("remote-user", user.username.clone()),
        ("remote-groups", groups.join(",")),
        ("remote-email", user.email.clone()),
        (
            "remote-name",
            if name.is_empty() {
                user.username.clone()
            } else {
                name
            },
        ),
        ("x-latch-user", user.username.clone()),
        ("x-latch-user-id", user.id.to_string()),
        ("x-latch-roles", user.roles.join(",")),
    ];
    let headers = response.headers_mut();
    for (name, value) in pairs {
        // Names may hold UTF-8, which header values carry as raw bytes.
        if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    response
}
