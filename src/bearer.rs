//! `Authorization: Bearer` authentication: the identity an API token proves. Below the web
//! plumbing (its extractors call this) and apart from the tokens capability (which creates,
//! lists and revokes tokens).

use crate::domain::SecretToken;
use crate::state::AppState;
use crate::store::api_tokens;
use crate::store::StoreError;
use crate::user::AuthUser;

/// The user a bearer secret authenticates: `None` for an unknown, expired or revoked token
/// (a reset, password set, lock or "end all sessions" ends them all), or a locked account.
pub async fn authenticate(state: &AppState, secret: &str) -> Result<Option<AuthUser>, StoreError> {
    find(state, secret, true).await
}

/// [`authenticate`] without recording the use (`last_used_at`): forward-auth never writes.
pub async fn identify(state: &AppState, secret: &str) -> Result<Option<AuthUser>, StoreError> {
    find(state, secret, false).await
}

async fn find(state: &AppState, secret: &str, touch: bool) -> Result<Option<AuthUser>, StoreError> {
    let Some(secret) = SecretToken::from_client(secret.trim()) else {
        return Ok(None);
    };
    let hash = secret.hash();
    let found = match state
        .sqlite_reader
        .as_ref()
        .and_then(|r| r.find_bearer(&hash))
    {
        Some(found) => found,
        None => api_tokens::find(&state.db, &hash).await?,
    };
    let Some(found) = found else {
        return Ok(None);
    };
    let now = state.clock.now();
    if found.expires_at.is_some_and(|at| at <= now) {
        return Ok(None);
    }
    // A lock also ends every token; this covers one created in the same instant.
    if found.user.locked {
        return Ok(None);
    }
    if touch && found.last_used_at.is_none_or(|at| now - at >= 60) {
        state.token_uses.note(hash, found.token_id, now);
    }
    Ok(Some(AuthUser::from(&found.user)))
}
