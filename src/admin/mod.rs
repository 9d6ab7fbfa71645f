//! Administration: the user list, one user, locks, roles, "end all sessions" and deletion,
//! for the admin area (pages and JSON) and the CLI alike: both doors call [`change_user`] and
//! [`end_all_sessions`], so the rules (no self-lock, at least one administrator), the ended
//! sessions and tokens and the audit events are the same whichever door was used.

pub mod api;
pub mod pages;
pub mod routes;

use crate::audit::{self, Event, Subject};
use crate::state::AppState;
use crate::store::admin::{self as store, ChangeError, ChangeOutcome, LiveSince, UserChange};
use crate::store::sessions::ClientInfo;
use crate::store::StoreError;
use crate::user::AuthUser;

/// The admin routes: pages and JSON side by side.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/admin/users", axum::routing::get(pages::users_get))
        .route("/admin/users/{id}", axum::routing::get(pages::user_get))
        .route(
            "/admin/users/{id}/lock",
            axum::routing::post(pages::lock_post),
        )
        .route(
            "/admin/users/{id}/roles",
            axum::routing::post(pages::roles_post),
        )
        .route(
            "/admin/users/{id}/sessions",
            axum::routing::post(pages::sessions_post),
        )
        .route(
            "/admin/users/{id}/mfa-reset",
            axum::routing::post(pages::mfa_reset_post),
        )
        .route(
            "/admin/users/{id}/delete",
            axum::routing::get(pages::delete_get).post(pages::delete_post),
        )
        .route("/api/admin/users", axum::routing::get(api::api_list))
        .route(
            "/api/admin/users/{id}",
            axum::routing::get(api::api_show)
                .patch(api::api_patch)
                .delete(api::api_delete),
        )
        .route(
            "/api/admin/users/{id}/sessions",
            axum::routing::delete(api::api_revoke_sessions),
        )
}

/// Who makes an administrative change.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// An administrator signed in to the admin area or the API.
    User(&'a AuthUser),
    /// Someone at the server's command line (`latch user …`).
    Cli,
}

impl Actor<'_> {
    /// The `by=` part of the audit detail.
    pub fn by(&self) -> String {
        match self {
            Actor::User(user) => format!("by={} (id {})", user.username, user.id),
            Actor::Cli => "by=cli".to_owned(),
        }
    }

    fn is(&self, id: i64) -> bool {
        matches!(self, Actor::User(user) if user.id == id)
    }
}

/// Why an administrative change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No user with that id.
    #[error("no such user")]
    NotFound,
    /// Administrators do not delete their own account here.
    #[error("you cannot delete your own account")]
    SelfDelete,
    /// Administrators do not lock themselves out.
    #[error("you cannot lock your own account")]
    SelfLock,
    /// The change would leave no unlocked administrator.
    #[error("at least one unlocked administrator must remain")]
    LastAdmin,
    /// A role that does not exist (create it with `latch role add`).
    #[error("unknown role {0:?}")]
    UnknownRole(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AdminError> for crate::web::error::ApiError {
    fn from(e: AdminError) -> Self {
        use crate::domain::FieldErrors;
        use crate::web::error::ApiError;
        match e {
            AdminError::NotFound => ApiError::NotFound,
            AdminError::Store(e) => e.into(),
            other => ApiError::Validation(FieldErrors::single("user", other.to_string())),
        }
    }
}

/// The session cut-offs at the current time (for the live session counts).
pub fn live(state: &AppState) -> LiveSince {
    LiveSince::at(&state.config, state.clock.now())
}

/// One page of users ordered by username, optionally only those whose username or email
/// starts with `prefix` (already NFKC-lower-cased).
pub async fn list_users(
    state: &AppState,
    prefix: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<store::UserPage, StoreError> {
    store::search(&state.db, prefix, offset, limit, live(state)).await
}

/// One user as the admin area shows them.
pub async fn find_user(
    state: &AppState,
    id: i64,
) -> Result<Option<store::AdminUserRecord>, StoreError> {
    store::find(&state.db, id, live(state)).await
}

/// Every role that exists (for the role form).
pub async fn role_names(state: &AppState) -> Result<Vec<String>, StoreError> {
    store::role_names(&state.db).await
}

/// Applies `change` to user `id` on `actor`'s authority: the self-protection rules, the
/// store's transaction (the last-admin rule; a lock is a revocation that also ends API
/// tokens), then the audit log.
pub async fn change_user(
    state: &AppState,
    actor: Actor<'_>,
    id: i64,
    change: &UserChange,
    client: &ClientInfo,
) -> Result<ChangeOutcome, AdminError> {
    if actor.is(id) && change.delete {
        return Err(AdminError::SelfDelete);
    }
    if actor.is(id) && change.locked == Some(true) {
        return Err(AdminError::SelfLock);
    }
    let outcome = store::change(&state.db, id, change, live(state))
        .await
        .map_err(|e| match e {
            ChangeError::NotFound => AdminError::NotFound,
            ChangeError::LastAdmin => AdminError::LastAdmin,
            ChangeError::UnknownRole(role) => AdminError::UnknownRole(role),
            ChangeError::Store(e) => AdminError::Store(e),
        })?;
    record_audit(state, &actor, client, change, &outcome).await;
    Ok(outcome)
}

/// Ends every session and API token of user `id` (a revocation: a sign-in racing it yields a
/// dead session); returns how many sessions ended.
pub async fn end_all_sessions(
    state: &AppState,
    actor: Actor<'_>,
    id: i64,
    client: &ClientInfo,
) -> Result<u64, AdminError> {
    let target = store::find(&state.db, id, live(state))
        .await?
        .ok_or(AdminError::NotFound)?;
    let revoked = crate::store::revocation::revoke(&state.db, id, Default::default())
        .await?
        .ok_or(AdminError::NotFound)?;
    let ended = revoked.sessions_ended;
    let detail = format!(
        "count={ended} api_tokens={} reason=admin {}",
        revoked.api_tokens_ended,
        actor.by()
    );
    audit::record(
        state,
        Event::SessionRevoke,
        Subject::user(target.id, &target.username),
        client,
        "success",
        Some(&detail),
    )
    .await;
    Ok(ended)
}

async fn record_audit(
    state: &AppState,
    actor: &Actor<'_>,
    client: &ClientInfo,
    change: &UserChange,
    outcome: &ChangeOutcome,
) {
    let target = &outcome.before;
    let subject = Subject::user(target.id, &target.username);
    let by = actor.by();
    if change.delete {
        audit::record(
            state,
            Event::UserDelete,
            subject,
            client,
            "success",
            Some(&by),
        )
        .await;
        return;
    }
    for role in &outcome.granted {
        let detail = format!("role={role} {by}");
        audit::record(
            state,
            Event::RoleGrant,
            subject,
            client,
            "success",
            Some(&detail),
        )
        .await;
    }
    for role in &outcome.revoked {
        let detail = format!("role={role} {by}");
        audit::record(
            state,
            Event::RoleRevoke,
            subject,
            client,
            "success",
            Some(&detail),
        )
        .await;
    }
    match change.locked {
        Some(true) => {
            audit::record(state, Event::Lock, subject, client, "success", Some(&by)).await
        }
        Some(false) if target.locked => {
            audit::record(state, Event::Unlock, subject, client, "success", Some(&by)).await
        }
        _ => {}
    }
    if outcome.sessions_ended > 0 {
        let reason = if outcome.granted.is_empty() && outcome.revoked.is_empty() {
            "lock"
        } else {
            "privilege change"
        };
        let detail = format!("count={} reason={reason} {by}", outcome.sessions_ended);
        audit::record(
            state,
            Event::SessionRevoke,
            subject,
            client,
            "success",
            Some(&detail),
        )
        .await;
    }
}
