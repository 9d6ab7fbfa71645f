//! `require_mfa_roles`: a signed-in holder of such a role without a second factor (TOTP or a
//! passkey, see [`super::enrollment_required`]) is held on `/account/security` until they set
//! one up. Pages answer 303 there; the API answers 403
//! `mfa_enrollment_required`, except what enrolment itself needs.
//!
//! A signed-in user whose session merely lacks a second factor they have (a `two_factor`
//! forward-auth rule) is sent to the second step instead: [`missing_factor`].
//!
//! A middleware over every latch route rather than a check in each handler, so that no route
//! (and no route added later) can forget it. It is not installed when no role requires a
//! second factor (`app::routes`); otherwise it loads the session (cached for the handler) on
//! non-static requests.

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;
use crate::user::AuthUser;
use crate::web::base::Base;
use crate::web::error::ApiError;
use crate::web::extract::{see_other, wants_json, CurrentUser};

/// Where a held user is sent.
pub const SECURITY_PAGE: &str = "/account/security";

/// The second step of a sign-in.
pub const SECOND_STEP_PAGE: &str = "/login/mfa";

/// What a signed-in user whose session lacks a second factor must do to get one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingFactor {
    /// Prove one they have on the second step's page (a step-up, [`super::waiting`]).
    SecondStep,
    /// Set one up first: they have none.
    Enrolment,
}

impl MissingFactor {
    /// The page that gets it.
    pub fn page(self) -> &'static str {
        match self {
            Self::SecondStep => SECOND_STEP_PAGE,
            Self::Enrolment => SECURITY_PAGE,
        }
    }
}

/// Where `user`, signed in without a second factor, goes for one: the second step when they
/// have one ([`super::has_second_factor`]: TOTP, or a passkey), where the session can add it;
/// else enrolment. Forward-auth and `latch access check` both ask here, so they cannot
/// disagree.
pub fn missing_factor(state: &AppState, user: &AuthUser) -> MissingFactor {
    if super::has_second_factor(state, user) {
        MissingFactor::SecondStep
    } else {
        MissingFactor::Enrolment
    }
}

/// Paths a held user may still reach: enrolment (passkeys included, which the security page
/// manages), who am I, the CSRF token, signing out, static files and the operational
/// endpoints.
fn exempt(path: &str) -> bool {
    path == SECURITY_PAGE
        || path.starts_with("/account/security/")
        || path == "/api/auth/mfa"
        || path.starts_with("/api/auth/mfa/")
        || path.starts_with("/api/auth/passkeys")
        || matches!(
            path,
            "/api/auth/verify_auth"
                | "/api/auth/csrf"
                | "/api/auth/logout"
                | "/logout"
                | "/healthz"
                | "/readyz"
                | "/metrics"
                // Forward-auth applies the hold itself, without the session write of a load.
                | "/auth/check"
                | "/auth/forward"
        )
        || path.starts_with("/static/")
}

/// The middleware.
pub async fn hold(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if exempt(request.uri().path()) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let user = match CurrentUser::from_request_parts(&mut parts, &state).await {
        Ok(CurrentUser(user)) => user,
        Err(rejection) => return rejection.into_response(),
    };
    let held = user
        .as_ref()
        .is_some_and(|user| super::enrollment_required(&state, user));
    if let Some(user) = user.filter(|_| held) {
        tracing::debug!(user = user.id, "held until a second factor is set up");
        return if wants_json(&parts.uri, &parts.headers) {
            ApiError::MfaEnrollmentRequired.into_response()
        } else {
            let base = Base::current();
            see_other(&base.join(SECURITY_PAGE), &[])
        };
    }
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_enrolment_and_the_basics_are_exempt() {
        for path in [
            "/account/security",
            "/account/security/totp/setup",
            "/api/auth/mfa",
            "/api/auth/mfa/totp/confirm",
            "/api/auth/verify_auth",
            "/logout",
            "/static/latch.css",
        ] {
            assert!(super::exempt(path), "{path}");
        }
        for path in [
            "/",
            "/dashboard",
            "/account",
            "/account/securityx",
            "/api/auth/mfax",
            "/api/auth/sessions",
            "/api/posts",
            "/admin/users",
        ] {
            assert!(!super::exempt(path), "{path}");
        }
    }
}
