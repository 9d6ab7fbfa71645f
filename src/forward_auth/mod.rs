//! Forward-auth: latch deciding, for a reverse proxy, whether a request to another application
//! may pass (nginx `auth_request` → `/auth/check`; Traefik `ForwardAuth` and Caddy
//! `forward_auth` → `/auth/forward`).
//!
//! The proxy names the request it is asking about in `X-Original-URL` (+ `X-Original-Method`)
//! or `X-Forwarded-Proto/Host/Uri/Method`; those are believed only from a peer in
//! `trusted_proxies`, since anyone else could name any URL. The rules themselves are pure and
//! live in [`crate::domain::access`]. Nothing here writes to the database: every request to
//! every protected application comes through, so the session is only peeked at.

pub mod api;

use std::net::IpAddr;

use axum::http::HeaderMap;
use percent_encoding::percent_decode_str;

use crate::domain::access::{Decision, Outcome, Policy, Request, Visitor};
use crate::mfa::gate::MissingFactor;
use crate::state::AppState;
use crate::store::StoreError;
use crate::user::AuthUser;

pub use api::routes;

/// The request a proxy asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The full URL, as the visitor asked for it (what `next` brings them back to).
    pub url: url::Url,
    /// Upper-case method.
    pub method: String,
}

/// Why the target headers of a trusted proxy cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not an absolute http(s) URL with a host.
    #[error("the target URL is not an absolute http(s) URL")]
    Url,
    /// Not an HTTP method token.
    #[error("the target method is not an HTTP method")]
    Method,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The target named by a proxy's headers: `Ok(None)` when it names none.
pub fn target(headers: &HeaderMap) -> Result<Option<Target>, TargetError> {
    let (raw, method) = if let Some(url) = header(headers, "x-original-url") {
        (url.to_owned(), header(headers, "x-original-method"))
    } else if let Some(host) = header(headers, "x-forwarded-host") {
        let proto = header(headers, "x-forwarded-proto").unwrap_or("http");
        let uri = header(headers, "x-forwarded-uri").unwrap_or("/");
        if !uri.starts_with('/') || host.contains(['/', '@', '\\', '?', '#']) {
            return Err(TargetError::Url);
        }
        (
            format!("{proto}://{host}{uri}"),
            header(headers, "x-forwarded-method"),
        )
    } else {
        return Ok(None);
    };
    let url = url::Url::parse(&raw).map_err(|_| TargetError::Url)?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || !url.username().is_empty()
    {
        return Err(TargetError::Url);
    }
    let method = method.unwrap_or("GET").to_ascii_uppercase();
    if method.len() > 16 || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(TargetError::Method);
    }
    Ok(Some(Target { url, method }))
}

/// Whether `peer` may name the target.
pub fn trusted(state: &AppState, peer: Option<IpAddr>) -> bool {
    peer.is_some_and(|ip| state.trusted_proxies.iter().any(|r| r.contains(ip)))
}

/// The path (percent-decoded, so `/%61dmin` meets the rules for `/admin`) and query the
/// rules are matched against.
pub fn rule_path(url: &url::Url) -> String {
    let path = percent_decode_str(url.path()).decode_utf8_lossy();
    match url.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.into_owned(),
    }
}

/// Who is asking, with what their session proves.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The user.
    pub user: AuthUser,
    /// Whether the session was made with a second factor (never for a bearer token).
    pub two_factor: bool,
}

/// The identity behind a cookie or bearer token, read without writing anything.
pub async fn identify(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Identity>, StoreError> {
    if let Some(secret) = crate::web::extract::bearer(headers) {
        let user = crate::bearer::identify(state, secret).await?;
        return Ok(user.map(|user| Identity {
            user,
            two_factor: false,
        }));
    }
    let name = crate::sessions::cookie_name(state);
    let Some(value) = crate::web::extract::cookie_value(headers, name) else {
        return Ok(None);
    };
    let Some(session) = crate::sessions::peek(state, value).await? else {
        return Ok(None);
    };
    Ok(session.user().map(|user| Identity {
        two_factor: session.factors().two_factor(),
        user,
    }))
}

/// The rules' verdict on `target` for `identity`. A user held until they set up a second factor
/// (`require_mfa_roles`) passes only `bypass`.
pub fn decide<'a>(
    state: &'a AppState,
    target: &Target,
    identity: Option<&Identity>,
) -> Decision<'a> {
    let visitor = identity.map(visitor);
    let path = rule_path(&target.url);
    let request = Request {
        host: target.url.host_str().unwrap_or_default(),
        path_and_query: &path,
        method: &target.method,
    };
    let mut decision = state.access_rules.decide(request, visitor.as_ref());
    let held = identity.is_some_and(|i| crate::mfa::enrollment_required(state, &i.user));
    if held && decision.outcome == Outcome::Allow && decision.policy != Policy::Bypass {
        decision.outcome = Outcome::SecondFactor;
    }
    decision
}

/// What the rules see of a user.
pub fn visitor(identity: &Identity) -> Visitor {
    Visitor {
        username: crate::domain::nfkc_lower(&identity.user.username),
        roles: groups(&identity.user),
        two_factor: identity.two_factor,
    }
}

/// The user's roles with the implicit `user` first: what `role:` subjects match and what
/// `Remote-Groups` says.
pub fn groups(user: &AuthUser) -> Vec<String> {
    std::iter::once(crate::domain::IMPLICIT_ROLE.to_owned())
        .chain(user.roles.iter().cloned())
        .collect()
}

/// `<public_url><page>?next=<target>`: where a visitor is sent to sign in or add a factor.
pub fn sign_in_location(state: &AppState, page: &str, target: &url::Url) -> String {
    let next: String = form_urlencoded::byte_serialize(target.as_str().as_bytes()).collect();
    format!("{}{page}?next={next}", public_base(state))
}

/// `public_url` without a trailing slash, for appending a page's path.
fn public_base(state: &AppState) -> &str {
    state
        .config
        .public_url
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches('/')
}

/// Where a signed-in visitor whose session lacks a second factor goes
/// ([`crate::mfa::gate::missing_factor`]): the second step, back to `target` after it, when
/// their sign-in asks for one, else enrolment.
pub fn second_factor_location(state: &AppState, identity: &Identity, target: &url::Url) -> String {
    let missing = crate::mfa::gate::missing_factor(state, &identity.user);
    match missing {
        MissingFactor::SecondStep => sign_in_location(state, missing.page(), target),
        MissingFactor::Enrolment => format!("{}{}", public_base(state), missing.page()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn targets_come_from_either_header_style() {
        let t = target(&headers(&[
            ("x-original-url", "https://App.example.com/a/b?c=d"),
            ("x-original-method", "post"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(t.url.as_str(), "https://app.example.com/a/b?c=d");
        assert_eq!(t.method, "POST");
        let t = target(&headers(&[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com:8443"),
            ("x-forwarded-uri", "/x?y=1"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(t.url.as_str(), "https://app.example.com:8443/x?y=1");
        assert_eq!(t.method, "GET");
        assert_eq!(target(&HeaderMap::new()), Ok(None));
    }

    #[test]
    fn bad_targets_are_refused() {
        for pairs in [
            vec![("x-original-url", "/relative")],
            vec![("x-original-url", "ftp://a.test/")],
            vec![("x-original-url", "https://u@a.test/")],
            vec![
                ("x-forwarded-host", "evil.test@a.test"),
                ("x-forwarded-uri", "/"),
            ],
            vec![("x-forwarded-host", "a.test"), ("x-forwarded-uri", "x")],
        ] {
            assert_eq!(target(&headers(&pairs)), Err(TargetError::Url), "{pairs:?}");
        }
        let bad_method = headers(&[
            ("x-original-url", "https://a.test/"),
            ("x-original-method", "G T"),
        ]);
        assert_eq!(target(&bad_method), Err(TargetError::Method));
    }

    #[test]
    fn rules_see_the_decoded_path() {
        let url = url::Url::parse("https://a.test/%61dmin/x?q=%2F").unwrap();
        assert_eq!(rule_path(&url), "/admin/x?q=%2F");
    }
}
