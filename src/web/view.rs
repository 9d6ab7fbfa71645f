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
use crate::domain::FieldErrors;
use crate::state::AppState;
use crate::user::AuthUser;
use axum::extract::FromRef;

/// What every page shows around its content: the user, the CSRF token and a pending flash
/// message.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    /// The signed-in user, if any.
    pub user: Option<AuthUser>,
    /// The token for this session's forms.
    pub csrf_token: Option<String>,
    /// A one-time message set by the previous response (see [`flash_cookie`]).
    pub flash: Option<&'static str>,
    /// The prefix of latch's pages, put before every link and form action.
    pub base: super::base::Base,
}

impl<S> FromRequestParts<S> for Frame
where
    crate::handle::Latch: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        let latch = crate::handle::Latch::from_ref(state);
        let state = latch.state();
        let MaybeSession(session) =
            <MaybeSession as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        Ok(Frame {
            user: session.as_ref().and_then(|s| s.user()),
            csrf_token: session.map(|s| s.csrf_token()),
            flash: read_flash(&parts.headers),
            base: super::base::Base::of_latch_route()
                .unwrap_or_else(|| super::base::Base::configured(state)),
        })
    }
}

const FLASH_COOKIE: &str = "latch_flash";

/// One-time messages for the page after a redirect (Flask's `flash`). The cookie holds only
/// a code from this table, never text, so nobody can make the site display their words.
const FLASHES: &[(&str, &str)] = &[
    ("signed_out", "You have been signed out."),
    ("signed_in", "Welcome back! You are signed in."),
    ("step_up", "Second factor confirmed."),
    ("welcome", "Your account is ready and you are signed in."),
    (
        "password_reset",
        "Your password was reset. Sign in with the new one.",
    ),
];

/// The `Set-Cookie` value that shows `code`'s message on the next page (`Secure` behind
/// https, like the session cookie).
pub fn flash_cookie(state: &AppState, code: &str) -> String {
    format!(
        "{FLASH_COOKIE}={code}; Path=/; HttpOnly; SameSite=Lax; Max-Age=60{}",
        secure_attribute(state)
    )
}

/// `; Secure` when the public URL is https, so the browser never sends the cookie in clear.
fn secure_attribute(state: &AppState) -> &'static str {
    if state.config.is_https() {
        "; Secure"
    } else {
        ""
    }
}

/// The message of a pending flash cookie, if it holds one of our codes.
pub fn read_flash(headers: &axum::http::HeaderMap) -> Option<&'static str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|c| c.trim().strip_prefix("latch_flash="))
        .find_map(|code| FLASHES.iter().find(|(c, _)| *c == code))
        .map(|(_, message)| *message)
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
    ("mfa_disabled", "Two-factor authentication is off."),
    (
        "passkey_added",
        "Your passkey was added: it can sign you in now.",
    ),
    ("passkey_renamed", "The passkey was renamed."),
    ("passkey_removed", "The passkey was removed."),
    (
        "mfa_reset",
        "The user's second factors were removed and their sessions ended.",
    ),
    ("token_revoked", "The token was revoked."),
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

/// Renders `template` with the frame, a notice (else the frame's flash message, which is
/// then cleared) and `extra`.
pub fn render(
    state: &AppState,
    frame: &Frame,
    template: &str,
    status: StatusCode,
    notice: Option<&str>,
    extra: minijinja::Value,
) -> HtmlResult {
    let message = notice.or(frame.flash);
    let ctx = context! {
        user => frame.user.as_ref().map(|u| u.to_json()),
        csrf_token => frame.csrf_token.clone(),
        flash => message.map(|message| context! { kind => "info", message }),
        // Marked safe so that minijinja does not escape its slashes; HTML-escaped here.
        base => minijinja::Value::from_safe_string(super::error::escape(frame.base.as_str())),
        ..extra
    };
    let html = state.templates.render(template, ctx)?;
    let mut response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        html,
    )
        .into_response();
    if frame.flash.is_some() {
        let clear = format!(
            "{FLASH_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
            secure_attribute(state)
        );
        super::extract::append_cookies(&mut response, &[clear]);
    }
    Ok(response)
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
