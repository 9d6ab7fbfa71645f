//! Role checks as extractors: a handler that declares [`RequireAdmin`] (or any
//! [`RequireRole`]) in its signature cannot run for anyone without the role, so the check
//! lives in one place instead of in every handler (docs/security.md Z1).
//!
//! Anonymous requests are refused exactly as [`RequireUser`] refuses them (401 JSON for the
//! API, 303 to `/login?next=…` for pages); a signed-in user without the role gets 403: the
//! `forbidden` error envelope for the API, an error page for pages. Roles are read from the
//! request's session lookup, which joins the user row, so a revoked role stops working at
//! the very next request (the session is revoked with it anyway).

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::{ApiError, Rejection};
use super::extract::{wants_json, AuthRejection, RequireUser};
use crate::domain::ADMIN_ROLE;
use crate::state::AppState;
use crate::user::AuthUser;
use axum::extract::FromRef;

/// A role known at compile time, for [`RequireRole`].
pub trait Role: Send + Sync + 'static {
    /// The stored role name.
    const NAME: &'static str;
}

/// The built-in `admin` role.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl Role for Admin {
    const NAME: &'static str = ADMIN_ROLE;
}

/// A signed-in user holding role `R`.
#[derive(Debug, Clone)]
pub struct RequireRole<R: Role> {
    /// The user.
    pub user: AuthUser,
    role: PhantomData<fn() -> R>,
}

/// A signed-in administrator.
#[derive(Debug, Clone)]
pub struct RequireAdmin(pub AuthUser);

/// Checks that `user` holds `role`: `Ok`, or 403 `forbidden`. For checks whose role is only
/// known at run time; handlers with a fixed role declare [`RequireRole`] instead.
pub fn require_role(user: &AuthUser, role: &str) -> Result<(), ApiError> {
    if user.has_role(role) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

async fn signed_in_with(
    parts: &mut Parts,
    state: &AppState,
    role: &str,
) -> Result<AuthUser, AuthRejection> {
    let RequireUser(user) =
        <RequireUser as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
    require_role(&user, role).map_err(|error| {
        tracing::info!(
            user_id = user.id,
            role,
            path = parts.uri.path(),
            "forbidden"
        );
        AuthRejection::Api(Rejection {
            error,
            html: !wants_json(&parts.uri, &parts.headers),
        })
    })?;
    Ok(user)
}

impl<R: Role, S> FromRequestParts<S> for RequireRole<R>
where
    crate::handle::Latch: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthRejection> {
        let latch = crate::handle::Latch::from_ref(state);
        let state = latch.state();
        let user = signed_in_with(parts, state, R::NAME).await?;
        Ok(RequireRole {
            user,
            role: PhantomData,
        })
    }
}

impl<S> FromRequestParts<S> for RequireAdmin
where
    crate::handle::Latch: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthRejection> {
        let latch = crate::handle::Latch::from_ref(state);
        let state = latch.state();
        let RequireRole::<Admin> { user, .. } =
            <RequireRole<Admin> as FromRequestParts<AppState>>::from_request_parts(parts, state)
                .await?;
        Ok(RequireAdmin(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(roles: &[&str]) -> AuthUser {
        AuthUser {
            id: 1,
            username: "u".into(),
            email: "u@example.com".into(),
            email_verified: false,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            first_name: None,
            last_name: None,
            created_at: 0,
            credential_gen: 0,
            mfa_enabled: false,
            passkey_count: 0,
        }
    }

    #[test]
    fn roles_are_checked() {
        assert!(require_role(&user(&[]), "user").is_ok());
        assert!(matches!(
            require_role(&user(&[]), "admin"),
            Err(ApiError::Forbidden)
        ));
        assert!(require_role(&user(&["admin"]), Admin::NAME).is_ok());
        assert!(require_role(&user(&["editor"]), "admin").is_err());
    }
}
