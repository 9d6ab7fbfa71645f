//! Where latch's pages are, as browsers see them: `""` at the root of the site, `"/auth"` when
//! an application nests latch's router there (`Router::nest("/auth", latch.router())`) or a
//! proxy in front strips that prefix. Every link, form action and redirect of latch's pages
//! starts with it, so latch works the same under any prefix.
//!
//! The prefix is the path of `public_url` when it has one (`https://example.com/auth`: the one
//! setting that also makes mailed links right), else the path the request was nested under.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, NestedPath, OriginalUri, Request};
use axum::http::request::Parts;
use axum::response::Response;

use crate::handle::Latch;
use crate::state::AppState;

/// The path prefix of latch's pages (no trailing slash; empty at the site's root).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Base(Arc<str>);

impl Base {
    /// A prefix from a configured path (`/auth/` and `/auth` are the same; `/` is none).
    pub fn new(path: &str) -> Self {
        Self(Arc::from(path.trim_end_matches('/')))
    }

    /// The prefix for a request: the configured one, else the one latch's router was nested
    /// under, else none.
    fn for_request(parts_nested: Option<&NestedPath>, state: &AppState) -> Self {
        if !state.base_path.is_empty() {
            return Self::configured(state);
        }
        parts_nested
            .map(|n| Self::new(n.as_str()))
            .unwrap_or_default()
    }

    /// The configured prefix (the path of `public_url`).
    pub fn configured(state: &AppState) -> Self {
        Self(state.base_path.clone())
    }

    /// The prefix of the request being served (empty outside a latch route).
    pub fn current() -> Self {
        Self::of_latch_route().unwrap_or_default()
    }

    /// The prefix when a latch route is being served, `None` on an application's own routes
    /// (which latch's middleware does not wrap). Kept in the request's scope (`web::scope`), also
    /// for the error page, which is rendered where no request is at hand.
    pub fn of_latch_route() -> Option<Self> {
        super::scope::prefix().map(Self)
    }

    /// The prefix itself, `""` or like `/auth`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `path` (which starts with `/`) under the prefix.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    /// The URL the browser asked for, to come back to after signing in: on latch's own routes
    /// the prefix plus the route's path; on an application's routes the full original path.
    pub fn requested(parts: &Parts) -> String {
        let path_and_query = |uri: &axum::http::Uri| {
            uri.path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into())
        };
        match Self::of_latch_route() {
            Some(base) => base.join(&path_and_query(&parts.uri)),
            None => match parts.extensions.get::<OriginalUri>() {
                Some(OriginalUri(uri)) => path_and_query(uri),
                None => path_and_query(&parts.uri),
            },
        }
    }
}

impl Base {
    /// The prefix of a request to one of latch's routes (called by `middleware::Observe`,
    /// which then serves the request in [`Base::scope`], marking it as latch's).
    pub fn enter(state: &AppState, request: &Request) -> Self {
        Self::for_request(request.extensions().get::<NestedPath>(), state)
    }

    /// Runs `serve` with this prefix as [`Base::current`].
    pub async fn scope<F: std::future::Future<Output = Response>>(self, serve: F) -> Response {
        super::scope::run(self.0, serve).await
    }
}

/// The prefix in a handler: latch's routes get the one [`mount`] recorded; an application's
/// own routes (a refusal that redirects to latch's sign-in page) get the configured one.
impl<S> FromRequestParts<S> for Base
where
    Latch: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(_parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of_latch_route()
            .unwrap_or_else(|| Self::configured(Latch::from_ref(state).state())))
    }
}

#[cfg(test)]
mod tests {
    use super::Base;

    #[test]
    fn prefixes_join_without_double_slashes() {
        assert_eq!(Base::new("/").join("/login"), "/login");
        assert_eq!(Base::new("").join("/login"), "/login");
        assert_eq!(Base::new("/auth/").join("/login"), "/auth/login");
        assert_eq!(Base::new("/a/b").as_str(), "/a/b");
    }
}
