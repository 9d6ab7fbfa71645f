//! The account after the first sign-in: email verification (`verification.rs`), passwords
//! forgotten, changed or set by an administrator (`password.rs`), the address change
//! (`email_change.rs`), the profile and sessions (`profile.rs`), and how many mails may go out
//! (`mail_limits.rs`). Shared by the pages (`pages.rs`), the JSON API (`api.rs`) and the CLI.
//!
//! Tokens are 256-bit secrets, mailed once and stored only as hashes; each is single-use
//! (consumed by one `DELETE … RETURNING`), verification tokens live 24 h and reset tokens
//! 1 h, and a new reset token or a password change kills the older ones.

pub mod api;
mod email_change;
mod mail_limits;
pub mod messages;
pub mod pages;
mod password;
mod profile;
mod verification;

pub use email_change::*;
pub use password::*;
pub use profile::*;
pub use verification::*;

use crate::domain::{FieldErrors, SecretToken};
use crate::mail::Email;
use crate::passwords::HashError;
use crate::state::AppState;
use crate::store::tokens::{self, Purpose};
use crate::store::users;
use crate::store::StoreError;

/// Lifetime of a verification token.
pub const VERIFY_TTL: i64 = 24 * 3600;

/// Lifetime of a reset token.
pub const RESET_TTL: i64 = 3600;

/// Why an account operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Unknown, used or expired token.
    #[error("invalid token")]
    InvalidToken,
    /// The current password is wrong.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The new address belongs to another account.
    #[error("email taken")]
    EmailTaken,
    /// Too many requests from this client.
    #[error("too many attempts")]
    Throttled {
        /// Seconds to wait.
        retry_after: i64,
    },
    /// Bad input.
    #[error("validation failed")]
    Validation(FieldErrors),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] HashError),
}

/// Mails `user` a notice of a change to their account (the notice template), through
/// [`deliver`]: turning the second factor on or off and adding or removing passkeys tell
/// their owner this way.
pub async fn notify(state: &AppState, user: &crate::user::AuthUser, subject: &str, text: &str) {
    deliver(
        state,
        messages::notice(state, &user.username, &user.email, subject, text),
    )
    .await;
}

/// Sends a mail without ever failing the user's action: to the outbox it is written before
/// the answer (so it is there when the client looks), over SMTP it goes in the background
/// (a slow or broken server must not hold the request). Failures are logged.
pub async fn deliver(state: &AppState, email: Result<Email, minijinja::Error>) {
    let email = match email {
        Ok(email) => email,
        Err(e) => {
            tracing::error!(error = %e, "cannot render a mail");
            return;
        }
    };
    if state.config.smtp_url.is_none() {
        if let Err(e) = state.mailer.send(&email).await {
            tracing::error!(error = %e, "mail delivery failed");
        }
    } else {
        let mailer = state.mailer.clone();
        tokio::spawn(async move {
            if let Err(e) = mailer.send(&email).await {
                tracing::error!(error = %e, "mail delivery failed");
            }
        });
    }
}

/// Uses up a mailed token of `purpose` (one `DELETE … RETURNING`, so it works once) and
/// loads its user; an unknown, used, expired or orphaned token is `InvalidToken`.
async fn redeem_token(
    state: &AppState,
    raw_token: &str,
    purpose: Purpose,
) -> Result<(tokens::ConsumedToken, users::UserRecord), AccountError> {
    let token = SecretToken::from_client(raw_token.trim()).ok_or(AccountError::InvalidToken)?;
    let consumed = tokens::consume(&state.db, &token.hash(), purpose)
        .await?
        .ok_or(AccountError::InvalidToken)?;
    if consumed.expires_at < state.clock.now() {
        return Err(AccountError::InvalidToken);
    }
    let user = users::find_by_id(&state.db, consumed.user_id)
        .await?
        .ok_or(AccountError::InvalidToken)?;
    Ok((consumed, user))
}

async fn issue_token(
    state: &AppState,
    user_id: i64,
    purpose: Purpose,
    email: Option<&str>,
    ttl: i64,
) -> Result<SecretToken, StoreError> {
    let token = SecretToken::generate().map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let now = state.clock.now();
    tokens::insert(
        &state.db,
        &token.hash(),
        user_id,
        purpose,
        email,
        now,
        now + ttl,
    )
    .await?;
    Ok(token)
}

/// The account routes: pages and JSON side by side.
pub fn routes() -> axum::Router<AppState> {
    api::router().merge(pages::router())
}

/// How the web answers a refused account operation (the one mapping to HTTP).
impl From<crate::account::AccountError> for crate::web::error::ApiError {
    fn from(e: crate::account::AccountError) -> Self {
        use crate::account::AccountError;
        match e {
            AccountError::InvalidToken => crate::web::error::ApiError::InvalidToken,
            AccountError::InvalidCredentials => crate::web::error::ApiError::InvalidCredentials,
            AccountError::EmailTaken => crate::web::error::ApiError::EmailTaken,
            AccountError::Throttled { retry_after } => {
                crate::web::error::ApiError::TooManyAttempts { retry_after }
            }
            AccountError::Validation(fields) => crate::web::error::ApiError::Validation(fields),
            AccountError::Store(e) => e.into(),
            AccountError::Hash(e) => e.into(),
        }
    }
}
