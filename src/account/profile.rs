//! The profile fields, the account's recent events and its sessions.

use crate::audit::{self, Event, Subject};
use crate::state::AppState;
use crate::store::sessions::{self as session_store, ClientInfo};
use crate::store::users::{self};
use crate::store::StoreError;
use crate::user::AuthUser;

/// The user's live sessions, newest first (the sessions page and `GET /api/auth/sessions`).
pub async fn sessions(
    state: &AppState,
    user: &AuthUser,
) -> Result<Vec<session_store::SessionSummary>, StoreError> {
    session_store::list_for_user(&state.db, user.id, crate::sessions::lifetimes(state)).await
}

/// The user's most recent security events, newest first (shown on `/account`).
pub async fn recent_events(
    state: &AppState,
    user: &AuthUser,
    limit: i64,
) -> Result<Vec<crate::store::audit::AuditRecord>, StoreError> {
    crate::store::audit::recent(&state.db, Some(user.id), limit).await
}

/// Saves the optional profile fields (already checked by `parse_profile_name`).
pub async fn set_profile(
    state: &AppState,
    user: &AuthUser,
    first_name: Option<&str>,
    last_name: Option<&str>,
) -> Result<(), StoreError> {
    users::set_profile(&state.db, user.id, first_name, last_name).await
}

/// Ends one of the user's sessions by its public id (audited); `NotFound` for an unknown id
/// or another user's, so ids of other accounts reveal nothing.
pub async fn revoke_session(
    state: &AppState,
    user: &AuthUser,
    id: i64,
    client: &ClientInfo,
) -> Result<(), StoreError> {
    if !session_store::delete_one_for_user(&state.db, user.id, id).await? {
        return Err(StoreError::NotFound);
    }
    let subject = Subject::user(user.id, &user.username);
    audit::record(
        state,
        Event::SessionRevoke,
        subject,
        client,
        "success",
        Some("one session"),
    )
    .await;
    Ok(())
}

/// Ends every session of the user except `keep` (audited).
pub async fn revoke_other_sessions(
    state: &AppState,
    user: &AuthUser,
    keep: Option<i64>,
    client: &ClientInfo,
) -> Result<u64, StoreError> {
    let ended =
        session_store::delete_others_for_user(&state.db, user.id, keep.unwrap_or(0)).await?;
    let subject = Subject::user(user.id, &user.username);
    let detail = format!("{ended} other sessions");
    audit::record(
        state,
        Event::SessionRevoke,
        subject,
        client,
        "success",
        Some(&detail),
    )
    .await;
    Ok(ended)
}
