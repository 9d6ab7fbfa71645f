//! Rendering for the admin and posts pages: the signed-in user, the session's CSRF token (in
//! `<meta name="csrf-token">` and every form) and an optional notice, around a template.
//!
//! Notices come from a fixed table keyed by a `?done=` code in the URL a form redirects to,
//! so nobody can make the site display words of their choosing.

use std::collections::BTreeMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::context;

use super::error::{ApiError, Rejection};
use super::extract::MaybeSession;
use crate::app::AppState;
use crate::auth::AuthUser;
use crate::domain::FieldErrors;

/// What every page shows around its content: the user and the CSRF token.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The signed-in user, if any.
    pub user: Option<AuthUser>,
    /// The token for this session's forms.
    pub csrf_token: Option<String>,
}

impl FromRequestParts<AppState> for Frame {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Rejection> {
        let MaybeSession(session) = MaybeSession::from_request_parts(parts, state).await?;
        Ok(Frame {
            user: session.as_ref().and_then(|s| s.user()),
            csrf_token: session.map(|s| s.csrf_token()),
        })
    }
}

/// A page handler's failure, shown as an error page (403, 404, 503…).
#[derive(Debug)]
pub struct HtmlError(pub ApiError);

impl<E: Into<ApiError>> From<E> for HtmlError {
    fn from(e: E) -> Self {
        HtmlError(e.into())
    }
}

impl IntoResponse for HtmlError {
    fn into_response(self) -> Response {
        self.0.into_page()
    }
}

/// The result of a page handler.
pub type HtmlResult = Result<Response, HtmlError>;

/// The notices a `?done=` code can show.
const NOTICES: &[(&str, &str)] = &[
    ("profile_saved", "Your profile was saved."),
    (
        "password_changed",
        "Your password was changed and your other sessions were signed out.",
    ),
    (
        "email_change_sent",
        "We sent a confirmation link to the new address; it changes once you open it.",
    ),
    (
        "verification_sent",
        "If your address is not verified yet, we sent the link again.",
    ),
    ("session_revoked", "That session was signed out."),
    ("others_revoked", "All your other sessions were signed out."),
    (
        "password_reset",
        "Your password was reset. Sign in with the new one.",
    ),
    ("created", "The post was published."),
    ("updated", "The post was saved."),
    ("deleted", "The post was deleted."),
    (
        "locked",
        "The account is locked and all its sessions have ended.",
    ),
    ("unlocked", "The account is unlocked."),
    (
        "role_granted",
        "The role was granted; the user's sessions have ended.",
    ),
    (
        "role_revoked",
        "The role was removed; the user's sessions have ended.",
    ),
    ("sessions_revoked", "All of the user's sessions have ended."),
    ("user_deleted", "The account was deleted."),
];

/// The notice for a `done` query value, if it is one of ours.
pub fn notice(done: Option<&str>) -> Option<&'static str> {
    let done = done?;
    NOTICES
        .iter()
        .find(|(code, _)| *code == done)
        .map(|(_, text)| *text)
}

/// Renders `template` with the frame, an optional notice and `extra`.
pub fn render(
    state: &AppState,
    frame: &Frame,
    template: &str,
    status: StatusCode,
    notice: Option<&str>,
    extra: minijinja::Value,
) -> HtmlResult {
    let ctx = context! {
        user => frame.user.as_ref().map(|u| u.to_json()),
        csrf_token => frame.csrf_token.clone(),
        flash => notice.map(|message| context! { kind => "info", message }),
        ..extra
    };
    let html = state.templates.render(template, ctx)?;
    Ok((
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        html,
    )
        .into_response())
}

/// The session to put a CSRF token in, started (anonymous) when the visitor has none; the
/// cookies to set come with it.
pub async fn ensure_session(
    state: &AppState,
    session: Option<crate::sessions::ActiveSession>,
    client: &crate::store::sessions::ClientInfo,
) -> Result<(crate::sessions::ActiveSession, Vec<String>), ApiError> {
    match session {
        Some(s) => Ok((s, Vec::new())),
        None => {
            let new = crate::sessions::start(state, None, false, client, None).await?;
            Ok((new.session, vec![new.set_cookie]))
        }
    }
}

/// The first value of `name` in a raw query string (a repeated or malformed parameter never
/// fails a page).
pub fn query_param(raw: Option<&str>, name: &str) -> Option<String> {
    raw.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    })
}

/// One message per bad field (the first), as the form templates show them.
pub fn first_messages(errors: &FieldErrors) -> BTreeMap<String, String> {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(errors) else {
        return BTreeMap::new();
    };
    map.into_iter()
        .filter_map(|(field, messages)| {
            let first = messages.get(0)?.as_str()?.to_owned();
            Some((field, first))
        })
        .collect()
}

/// Parses a path id; anything but a positive integer is "not found", like an unknown id.
pub fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(ApiError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_notices() {
        assert_eq!(parse_id("42").unwrap(), 42);
        for bad in ["0", "-1", "abc", "1.5", "", "99999999999999999999"] {
            assert!(matches!(parse_id(bad), Err(ApiError::NotFound)), "{bad}");
        }
        assert!(notice(Some("created")).is_some());
        let mut errors = FieldErrors::single("title", "first");
        errors.add("title", "second");
        assert_eq!(first_messages(&errors)["title"], "first");
        assert!(notice(Some("<script>")).is_none());
        assert_eq!(
            query_param(Some("q=a%40b&page=2&q=x"), "q").as_deref(),
            Some("a@b")
        );
    }
}
