//! What the admin pages ([`super::pages`], `/admin/users`) and the JSON API ([`super::api`],
//! `/api/admin/users`) share: listing, the change an admin applies, the user JSON. The routes
//! themselves are assembled by [`crate::admin::routes`]. For administrators
//! only; every handler declares [`RequireAdmin`], so anonymous callers get 401 / a redirect
//! to sign-in and other users 403.
//!
//! - List and search: `?q=` is a prefix of the normalised username or email, `?page=` counts
//!   from 1, [`PAGE_SIZE`] users a page, ordered by username (indexed offset, see
//!   [`crate::store::admin`]).
//! - One user: roles, verified, locked, created, last sign-in, live session count.
//! - Changes: lock / unlock, grant / revoke roles (or replace the list), end all sessions,
//!   delete. Role changes and locks end every session of the user (a privilege change must
//!   start a new session); when admins change their own roles, their current session is
//!   replaced by a new one (new id, new CSRF token) instead of just ending. Admins cannot
//!   lock or delete themselves here, and no change may leave the system without an
//!   unlocked administrator (docs/security.md Z4). Every change is written to the audit log.
//!
//! API routes beyond docs/http-api.md's two: `GET /api/admin/users/{id}` (one user),
//! `DELETE /api/admin/users/{id}` (204) and `DELETE /api/admin/users/{id}/sessions`
//! (200 `{"revoked": n}`). The user objects here are docs/http-api.md's `User` plus `locked`,
//! `last_sign_in_at` and `active_sessions`.

use serde::Serialize;

use crate::admin::{Actor as AdminActor, AdminError};
use crate::clock::rfc3339;
use crate::domain::{nfkc_lower, FieldErrors};
use crate::sessions::{self, ActiveSession, NewSession};
use crate::state::AppState;
use crate::store::admin::{self as store, AdminUserRecord, ChangeOutcome, UserChange};
use crate::store::sessions::ClientInfo;
use crate::user::AuthUser;
use crate::web::error::ApiError;
use crate::web::view::{self};

/// Users per page of the list.
pub const PAGE_SIZE: i64 = 50;

/// Highest page number accepted (far beyond any real user count; keeps the offset in range).
pub(super) const MAX_PAGE: i64 = 1_000_000_000;

/// Longest search prefix, in characters (an address is at most 254).
pub(super) const MAX_QUERY: usize = 254;

/// The admin view of a user: docs/http-api.md's `User` plus lock state, last sign-in and live
/// session count. Never a password hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AdminUser)]
pub struct AdminUserJson<'a> {
    id: i64,
    username: &'a str,
    email: &'a str,
    email_verified: bool,
    roles: Vec<String>,
    created_at: String,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    locked: bool,
    last_sign_in_at: Option<String>,
    active_sessions: i64,
    mfa_enabled: bool,
}

/// The JSON form of an admin user record.
pub fn user_json(u: &AdminUserRecord) -> AdminUserJson<'_> {
    AdminUserJson {
        id: u.id,
        username: &u.username,
        email: &u.email,
        email_verified: u.email_verified,
        roles: u.role_list(),
        created_at: rfc3339(u.created_at),
        first_name: u.first_name.as_deref(),
        last_name: u.last_name.as_deref(),
        locked: u.locked,
        last_sign_in_at: u.last_login_at.map(rfc3339),
        active_sessions: u.active_sessions,
        mfa_enabled: u.mfa_enabled,
    }
}

// ---- Listing ----

/// A parsed `?q=&page=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ListQuery {
    /// Normalised prefix, if any.
    pub(super) q: Option<String>,
    /// 1-based page.
    pub(super) page: i64,
}

pub(super) fn parse_q(raw: Option<&str>) -> Result<Option<String>, String> {
    let q = view::query_param(raw, "q")
        .map(|q| nfkc_lower(q.trim()))
        .filter(|q| !q.is_empty());
    if let Some(q) = &q {
        if q.chars().count() > MAX_QUERY {
            return Err(format!("Must be at most {MAX_QUERY} characters."));
        }
        if q.chars().any(char::is_control) {
            return Err("Must not contain control characters.".into());
        }
    }
    Ok(q)
}

pub(super) fn parse_page(raw: Option<&str>) -> Result<i64, String> {
    match view::query_param(raw, "page").as_deref().map(str::trim) {
        None | Some("") => Ok(1),
        Some(p) => p
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| format!("Must be a whole number from 1 to {MAX_PAGE}.")),
    }
}

pub(super) fn parse_list_query(raw: Option<&str>) -> Result<ListQuery, FieldErrors> {
    let mut errors = FieldErrors::new();
    let q = errors.check("q", parse_q(raw));
    let page = errors.check("page", parse_page(raw));
    errors.into_result(|| Some(ListQuery { q: q?, page: page? }))
}

pub(super) async fn list(state: &AppState, query: &ListQuery) -> Result<store::UserPage, ApiError> {
    let offset = (query.page - 1) * PAGE_SIZE;
    Ok(crate::admin::list_users(state, query.q.as_deref(), offset, PAGE_SIZE).await?)
}

// ---- Changes ----

/// A change applied by an admin: the outcome and, when admins changed their own roles, the
/// session that replaces their ended one.
pub(super) struct Applied {
    pub(super) outcome: ChangeOutcome,
    pub(super) new_session: Option<NewSession>,
}

/// Who makes a change: the admin, where from, and their session (whose factors and "remember
/// me" the replacement keeps when their own sessions end).
pub(super) struct Actor<'a> {
    pub(super) user: &'a AuthUser,
    pub(super) client: &'a ClientInfo,
    pub(super) session: Option<&'a ActiveSession>,
}

impl<'a> Actor<'a> {
    pub(super) fn new(
        user: &'a AuthUser,
        client: &'a ClientInfo,
        session: Option<&'a ActiveSession>,
    ) -> Self {
        Self {
            user,
            client,
            session,
        }
    }
}

/// Applies `change` to user `id` for `actor`: the self-protection rules, the store's
/// transaction (with the last-admin rule), the audit log, and a fresh session for an actor
/// whose own sessions ended. `field` names the input field that errors about roles go to.
pub(super) async fn apply(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    change: &UserChange,
    field: &str,
) -> Result<Applied, ApiError> {
    let Actor {
        user: actor,
        client,
        session,
    } = *actor;
    let outcome = crate::admin::change_user(state, AdminActor::User(actor), id, change, client)
        .await
        .map_err(|e| match e {
            AdminError::NotFound => ApiError::NotFound,
            AdminError::SelfDelete => ApiError::Validation(FieldErrors::single(
                "user",
                "You cannot delete your own account here.",
            )),
            AdminError::SelfLock => ApiError::Validation(FieldErrors::single(
                "locked",
                "You cannot lock your own account.",
            )),
            AdminError::LastAdmin => {
                let field = if change.delete {
                    "user"
                } else if change.roles.is_some() {
                    field
                } else {
                    "locked"
                };
                ApiError::Validation(FieldErrors::single(
                    field,
                    "At least one unlocked administrator must remain: make someone else an \
                     administrator first.",
                ))
            }
            AdminError::UnknownRole(role) => ApiError::Validation(FieldErrors::single(
                field,
                format!("Unknown role {role:?} (roles are created with `latch role add`)."),
            )),
            AdminError::Store(e) => e.into(),
        })?;
    let mut new_session = None;
    if id == actor.id && outcome.sessions_ended > 0 && outcome.after.is_some() {
        new_session = sessions::reissue(state, id, session, client).await?;
    }
    Ok(Applied {
        outcome,
        new_session,
    })
}

/// Ends every session and API token of user `id` for the admin (404 when there is no such
/// user); returns how many sessions ended.
pub(super) async fn revoke_sessions(
    state: &AppState,
    actor: &AuthUser,
    client: &ClientInfo,
    id: i64,
) -> Result<u64, ApiError> {
    crate::admin::end_all_sessions(state, crate::admin::Actor::User(actor), id, client)
        .await
        .map_err(|e| match e {
            AdminError::NotFound => ApiError::NotFound,
            other => ApiError::from(other),
        })
}
