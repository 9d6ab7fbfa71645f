//! Personal API tokens: a 256-bit secret shown once, stored hashed, revocable, optionally
//! expiring, and gone with the account (the table cascades on user deletion). A request
//! with `Authorization: Bearer <secret>` is authenticated by it instead of a cookie, so it
//! needs no CSRF token (a browser never adds that header to a cross-site request).

pub mod api;
pub mod pages;

use crate::audit::{self, Event, Subject};
use crate::domain::{FieldErrors, SecretToken};
use crate::state::AppState;
use crate::store::api_tokens::{self, ApiTokenRecord};
use crate::store::sessions::ClientInfo;
use crate::store::StoreError;
use crate::user::AuthUser;

/// Longest lifetime a token can be given.
pub const MAX_DAYS: i64 = 3650;

/// A checked request for a new token.
#[derive(Debug)]
pub struct NewToken {
    /// Label, 1–100 characters.
    pub name: String,
    /// Lifetime in days, if it expires.
    pub expires_in_days: Option<i64>,
}

impl NewToken {
    /// Checks the fields, reporting every failure.
    pub fn parse(name: Option<&str>, expires_in_days: Option<i64>) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = name.map(str::trim).unwrap_or_default();
        if name.is_empty() {
            errors.add("name", "Give the token a name.");
        } else if name.chars().count() > 100 || name.chars().any(char::is_control) {
            errors.add(
                "name",
                "Use at most 100 characters, without control characters.",
            );
        }
        if let Some(days) = expires_in_days {
            if !(1..=MAX_DAYS).contains(&days) {
                errors.add(
                    "expires_in_days",
                    format!("Must be between 1 and {MAX_DAYS}."),
                );
            }
        }
        errors.into_result(|| {
            Some(NewToken {
                name: name.to_owned(),
                expires_in_days,
            })
        })
    }
}

/// Creates a token; the secret is returned this once and never stored.
pub async fn create(
    state: &AppState,
    user: &AuthUser,
    new: &NewToken,
) -> Result<(ApiTokenRecord, SecretToken), StoreError> {
    let secret = SecretToken::generate().map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let now = state.clock.now();
    let expires_at = new.expires_in_days.map(|days| now + days * 86_400);
    let record = api_tokens::insert(
        &state.db,
        &secret.hash(),
        (user.id, user.credential_gen),
        &new.name,
        now,
        expires_at,
    )
    .await?;
    Ok((record, secret))
}

/// The user's live tokens, newest first.
pub async fn list(state: &AppState, user: &AuthUser) -> Result<Vec<ApiTokenRecord>, StoreError> {
    api_tokens::list_for_user(&state.db, user.id).await
}

/// Revokes one of the user's tokens (audited); `NotFound` for an unknown id or another
/// user's, so ids of other accounts reveal nothing.
pub async fn revoke(
    state: &AppState,
    user: &AuthUser,
    id: i64,
    client: &ClientInfo,
) -> Result<(), StoreError> {
    if !api_tokens::delete_for_user(&state.db, user.id, id).await? {
        return Err(StoreError::NotFound);
    }
    let detail = format!("api token {id}");
    audit::record(
        state,
        Event::SessionRevoke,
        Subject::user(user.id, &user.username),
        client,
        "success",
        Some(&detail),
    )
    .await;
    Ok(())
}

/// The token routes: the JSON API and the page.
pub fn routes() -> axum::Router<AppState> {
    api::router().merge(pages::router())
}
