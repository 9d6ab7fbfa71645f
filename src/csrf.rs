//! CSRF protection: a token bound to the session (derived from its secret), required on every
//! state-changing request that a browser could send with the session cookie.

use crate::domain::constant_time_eq;
use crate::sessions::ActiveSession;

/// Header names accepted for the token (the second is the older Flask-WTF spelling).
pub const HEADERS: [&str; 2] = ["x-csrf-token", "x-csrftoken"];

/// Form or JSON field name for the token.
pub const FIELD: &str = "csrf_token";

/// Whether `presented` is the token of `session`. No session means no valid token: a sign-in
/// without a cookie is refused too, which blocks login CSRF.
pub fn is_valid(session: Option<&ActiveSession>, presented: Option<&str>) -> bool {
    match (session, presented) {
        (Some(session), Some(presented)) => constant_time_eq(&session.csrf_token(), presented),
        _ => false,
    }
}
