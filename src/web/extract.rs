//! Extractors that handlers declare in their signature: the session, the optional user, the
//! required user, and the client's address. Each reads only request parts, so any of them
//! can precede a body extractor; the session is loaded once per request and cached.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::base::Base;
use super::error::{ApiError, Rejection};
use crate::sessions::{self, ActiveSession};
use crate::state::AppState;
use crate::store::sessions::ClientInfo;
use crate::user::AuthUser;
use axum::extract::FromRef;

/// Whether a path belongs to the JSON API (errors as JSON, 401 instead of a redirect).
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/") || path == "/api" || path.starts_with("/auth/")
}

/// Whether a refusal of this request is JSON (401/403 in the envelope) rather than a page (a
/// redirect to the login page): latch's own API paths, and any request whose `Accept` asks
/// for JSON and not for HTML, so an application's JSON routes behind `RequireUser` answer 401
/// whatever their path. Browsers (`Accept: text/html,…`) and clients that accept anything
/// get pages on page paths.
pub fn wants_json(uri: &axum::http::Uri, headers: &axum::http::HeaderMap) -> bool {
    if is_api_path(uri.path()) {
        return true;
    }
    let accept = headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase();
    let json = accept.contains("application/json") || accept.contains("+json");
    json && !accept.contains("text/html")
}

/// The value of the cookie `name` in the request's `Cookie` headers, borrowed from them: the
/// first `name=value` pair with that name (name and value trimmed, as the `cookie` crate
/// parses them), without building an owned cookie per pair on every request.
pub fn cookie_value<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| n.trim() == name)
        .map(|(_, v)| v.trim())
}

/// The request's session, if its cookie names a live one.
#[derive(Debug, Clone)]
pub struct MaybeSession(pub Option<ActiveSession>);

/// The session loaded for this request, kept so that every extractor of the request shares
/// one lookup (in the request's scope, `web::scope`, on latch's routes, in its extensions on an
/// application's own), and behind an `Arc` so that sharing it copies nothing.
#[derive(Clone)]
struct LoadedSession(Arc<Option<ActiveSession>>);

/// The request's session: loaded once (see [`LoadedSession`]).
async fn loaded_session(
    parts: &mut Parts,
    state: &AppState,
) -> Result<Arc<Option<ActiveSession>>, Rejection> {
    if let Some(cached) = super::scope::session() {
        return Ok(cached);
    }
    if let Some(LoadedSession(cached)) = parts.extensions.get::<LoadedSession>() {
        return Ok(Arc::clone(cached));
    }
    // A bearer request is authenticated by its token alone: the cookie is ignored, so
    // the CSRF exemption of bearer requests can never cover a cookie session.
    let session = if bearer(&parts.headers).is_some() {
        None
    } else {
        match cookie_value(&parts.headers, sessions::cookie_name(state)) {
            Some(value) => sessions::load(state, value).await.map_err(|e| Rejection {
                error: e.into(),
                html: !wants_json(&parts.uri, &parts.headers),
            })?,
            None => None,
        }
    };
    let session = Arc::new(session);
    if !super::scope::keep_session(&session) {
        parts.extensions.insert(LoadedSession(Arc::clone(&session)));
    }
    Ok(session)
}

impl<S> FromRequestParts<S> for MaybeSession
where
    crate::handle::Latch: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        let latch = crate::handle::Latch::from_ref(state);
        let session = loaded_session(parts, latch.state()).await?;
        Ok(MaybeSession(Option::clone(&session)))
    }
}

/// The signed-in user, or `None`: for pages that look different when signed in.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Option<AuthUser>);

impl<S> FromRequestParts<S> for CurrentUser
where
    crate::handle::Latch: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        let latch = crate::handle::Latch::from_ref(state);
        let state = latch.state();
        if let Some(cached) = parts.extensions.get::<CurrentUser>() {
            return Ok(cached.clone());
        }
        match bearer(&parts.headers) {
            Some(secret) => {
                let user = crate::bearer::authenticate(state, secret)
                    .await
                    .map_err(|e| Rejection {
                        error: e.into(),
                        html: !wants_json(&parts.uri, &parts.headers),
                    })?;
                // Kept for a second extractor of the request: a token lookup is a query.
                let found = CurrentUser(user);
                parts.extensions.insert(found.clone());
                Ok(found)
            }
            // The session is already kept by `loaded_session`; the user is read out of it
            // again rather than cached a second time (one copy of the user per extraction,
            // and most requests extract it once).
            None => Ok(CurrentUser(
                loaded_session(parts, state)
                    .await?
                    .as_ref()
                    .as_ref()
                    .and_then(ActiveSession::user),
            )),
        }
    }
}

/// The secret of an `Authorization: Bearer` header, if the request has one.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(secret.trim())
}

/// A signed-in user, required: anonymous API requests get 401, pages a 303 to
/// `/login?next=<this page>`.
#[derive(Debug, Clone)]
pub struct RequireUser(pub AuthUser);

/// Why [`RequireUser`] refused a request.
#[derive(Debug)]
pub enum AuthRejection {
    /// API request without a session: 401.
    Api(Rejection),
    /// Page request without a session: redirect to the sign-in page (its URL, then where to
    /// come back to).
    Login(String, String),
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            AuthRejection::Api(r) => r.into_response(),
            AuthRejection::Login(login, next) => {
                let encoded: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
                Redirect::to(&format!("{login}?next={encoded}")).into_response()
            }
        }
    }
}

impl<S> FromRequestParts<S> for RequireUser
where
    crate::handle::Latch: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthRejection> {
        let latch = crate::handle::Latch::from_ref(state);
        let state = latch.state();
        let api = wants_json(&parts.uri, &parts.headers);
        let user = <CurrentUser as FromRequestParts<AppState>>::from_request_parts(parts, state)
            .await
            .map_err(AuthRejection::Api)?
            .0;
        match user {
            Some(user) => Ok(RequireUser(user)),
            None if api => Err(AuthRejection::Api(Rejection {
                error: ApiError::Unauthenticated,
                html: false,
            })),
            None => {
                let base = Base::of_latch_route().unwrap_or_else(|| Base::configured(state));
                Err(AuthRejection::Login(
                    base.join("/login"),
                    Base::requested(parts),
                ))
            }
        }
    }
}

/// Where the request comes from: stored with new sessions.
#[derive(Debug, Clone)]
pub struct Client(pub ClientInfo);

impl<S> FromRequestParts<S> for Client
where
    crate::handle::Latch: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let latch = crate::handle::Latch::from_ref(state);
        let state = latch.state();
        let peer = super::peer::of(&parts.extensions).map(|addr| addr.ip());
        if peer.is_none() {
            warn_no_connect_info();
        }
        let ip = peer.map(|peer| {
            let forwarded: Vec<&str> = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            crate::domain::client_ip::client_ip(peer, &forwarded, &state.trusted_proxies)
                .to_string()
        });
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().filter(|c| !c.is_control()).take(256).collect());
        Ok(Client(ClientInfo { ip, user_agent }))
    }
}

/// 303 See Other to `location`, setting `set_cookies`.
pub fn see_other(location: &str, set_cookies: &[String]) -> Response {
    let mut response = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_owned())],
    )
        .into_response();
    append_cookies(&mut response, set_cookies);
    response
}

/// `response` with a new session's cookie and its CSRF token (which changed with it).
pub fn with_session(mut response: Response, new: &sessions::NewSession) -> Response {
    if let Ok(token) = axum::http::HeaderValue::from_str(&new.session.csrf_token()) {
        response
            .headers_mut()
            .insert(axum::http::HeaderName::from_static("x-csrf-token"), token);
    }
    with_cookies(response, std::slice::from_ref(&new.set_cookie))
}

/// `response` with a `Set-Cookie` header for each value.
pub fn with_cookies(mut response: Response, set_cookies: &[String]) -> Response {
    append_cookies(&mut response, set_cookies);
    response
}

/// Adds a `Set-Cookie` header for each value.
pub fn append_cookies(response: &mut Response, set_cookies: &[String]) {
    for cookie in set_cookies {
        if let Ok(value) = header::HeaderValue::from_str(cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

/// Says once, loudly, that the application is served without `ConnectInfo`: per-IP limits
/// and client addresses cannot work then, and that must not go unnoticed.
fn warn_no_connect_info() {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::error!(
            "latch is served without ConnectInfo<SocketAddr>: per-IP limits and client \
             addresses are off; serve with \
             `into_make_service_with_connect_info::<SocketAddr>()`"
        );
    }
}
