//! Passwords after sign-up: forgotten (reset by a mailed link), changed by the user, or set
//! by an administrator; every path ends in one replacement that revokes what it must.

use super::mail_limits::{address_may_receive, count_mail_request};
use super::messages;
use super::{deliver, issue_token, redeem_token, AccountError, RESET_TTL};
use crate::audit::{self, Event, Subject};
use crate::domain::{EmailAddress, FieldErrors, Password, SecretToken};
use crate::passwords::Verification;
use crate::state::AppState;
use crate::store::revocation::{self, Revocation, Revoked};
use crate::store::sessions::ClientInfo;
use crate::store::tokens::{self, Purpose};
use crate::store::users::{self, UserRecord};
use crate::store::StoreError;
use crate::throttle::{self, Decision};
use crate::user::AuthUser;

/// Starts a password reset. Answers the same whether or not the address has an account;
/// the caller pads the response time (see `web`).
pub async fn forgot_password(
    state: &AppState,
    raw_email: &str,
    client: &ClientInfo,
) -> Result<(), AccountError> {
    let email = EmailAddress::parse(raw_email)
        .map_err(|m| AccountError::Validation(FieldErrors::single("email", m)))?;
    count_mail_request(state, client).await?;
    let Some(user) = users::find_by_login(&state.db, email.as_str()).await? else {
        audit::record(
            state,
            Event::PasswordResetRequest,
            Subject::default(),
            client,
            "unknown_address",
            None,
        )
        .await;
        return Ok(());
    };
    if !address_may_receive(state, email.as_str()).await? {
        return Ok(());
    }
    tokens::delete_for_user(&state.db, user.id, Purpose::ResetPassword).await?;
    let token = issue_token(state, user.id, Purpose::ResetPassword, None, RESET_TTL).await?;
    deliver(
        state,
        messages::reset_password(state, &user.username, &user.email, token.expose()),
    )
    .await;
    audit::record(
        state,
        Event::PasswordResetRequest,
        Subject::user(user.id, &user.username),
        client,
        "sent",
        None,
    )
    .await;
    Ok(())
}

/// Sets a new password from a reset token, then ends every session of the account (remember
/// me included) and mails a notice.
pub async fn reset_password(
    state: &AppState,
    raw_token: &str,
    raw_password: &str,
    client: &ClientInfo,
) -> Result<UserRecord, AccountError> {
    if SecretToken::from_client(raw_token.trim()).is_none() {
        return Err(AccountError::InvalidToken);
    }
    // Check the password first, so a policy failure does not burn the token.
    let password = Password::new_for_account(raw_password)
        .map_err(|m| AccountError::Validation(FieldErrors::single("password", m)))?;
    let (_, user) = redeem_token(state, raw_token, Purpose::ResetPassword).await?;
    throttle::clear(state, &throttle::user_key(user.id)).await?;
    let notice = (
        "Your password was reset",
        "The password of your account was reset, every session was signed out and every API \
         token revoked.",
    );
    let replacement = Replacement {
        event: Event::PasswordReset,
        keep_api_tokens: false,
        detail: None,
    };
    replace_password(state, &user, &password, replacement, client, notice).await?;
    Ok(user)
}

/// Sets a password on an administrator's authority (`latch user passwd`, the admin area):
/// the same path as a reset, so pending reset links die, every session and API token ends,
/// the change is audited with who made it, and the owner gets a notice.
pub async fn set_password_by_admin(
    state: &AppState,
    user: &UserRecord,
    password: &Password,
    by: &str,
    client: &ClientInfo,
) -> Result<Revoked, AccountError> {
    let notice = (
        "Your password was changed by an administrator",
        "An administrator set a new password for your account; every session was signed out \
         and every API token revoked.",
    );
    let detail = format!("by={by}");
    let replacement = Replacement {
        event: Event::PasswordChange,
        keep_api_tokens: false,
        detail: Some(&detail),
    };
    replace_password(state, user, password, replacement, client, notice).await
}

/// How a password replacement is recorded, and whether API tokens survive it.
pub(super) struct Replacement<'a> {
    event: Event,
    keep_api_tokens: bool,
    detail: Option<&'a str>,
}

/// Stores a new password and ends what the old one opened, in one transaction with a new
/// credential generation (see [`crate::store::revocation`]): pending reset links, every
/// session (after a change the caller re-issues the current one) and, unless kept, every API
/// token. Audited, and the owner gets a notice by mail.
pub(super) async fn replace_password(
    state: &AppState,
    user: &UserRecord,
    password: &Password,
    replacement: Replacement<'_>,
    client: &ClientInfo,
    (mail_subject, message): (&str, &str),
) -> Result<Revoked, AccountError> {
    let hash = state.hasher.hash(password).await?;
    let revocation = Revocation {
        new_hash: Some(&hash),
        keep_api_tokens: replacement.keep_api_tokens,
    };
    // `None`: the account was deleted meanwhile.
    let revoked = revocation::revoke(&state.db, user.id, revocation)
        .await?
        .ok_or(StoreError::NotFound)?;
    let subject = Subject::user(user.id, &user.username);
    let detail = format!(
        "{}sessions_ended={} api_tokens_ended={}",
        replacement
            .detail
            .map(|d| format!("{d} "))
            .unwrap_or_default(),
        revoked.sessions_ended,
        revoked.api_tokens_ended
    );
    audit::record(
        state,
        replacement.event,
        subject,
        client,
        "success",
        Some(&detail),
    )
    .await;
    deliver(
        state,
        messages::notice(state, &user.username, &user.email, mail_subject, message),
    )
    .await;
    Ok(revoked)
}

/// Checks the current password of a signed-in user (password and email changes). Counted
/// like a sign-in, on the same account and IP counters: a wrong one is a failure, and past
/// the limit the check is refused with `Throttled` before any hashing.
pub async fn check_current_password(
    state: &AppState,
    user: &AuthUser,
    current: &Password,
    client: &ClientInfo,
) -> Result<UserRecord, AccountError> {
    let account_key = throttle::user_key(user.id);
    let ip_key = throttle::ip_key(client);
    let limits = throttle::sign_in_limits(state, &account_key, ip_key.as_deref());
    let taken = match throttle::take(state, &limits).await? {
        Decision::Allowed(taken) => taken,
        Decision::Wait(retry_after) => return Err(AccountError::Throttled { retry_after }),
    };
    let outcome = verify_current(state, user, current).await;
    match &outcome {
        Err(AccountError::InvalidCredentials) => taken.keep(),
        _ => taken.give_back(state).await?,
    }
    outcome
}

pub(super) async fn verify_current(
    state: &AppState,
    user: &AuthUser,
    current: &Password,
) -> Result<UserRecord, AccountError> {
    let record = users::find_by_id(&state.db, user.id)
        .await?
        .ok_or(AccountError::InvalidCredentials)?;
    // The identity must still be current: a session that a revocation has just ended must
    // not change the password it was opened with.
    if record.credential_gen != user.credential_gen {
        return Err(AccountError::InvalidCredentials);
    }
    match state
        .hasher
        .verify(current, Some(&record.password_hash))
        .await?
    {
        Verification::Match { .. } => Ok(record),
        Verification::Mismatch => Err(AccountError::InvalidCredentials),
    }
}

/// Changes the password after checking the current one; ends every other session (the
/// caller re-issues the current one under a new id, from the returned record, which carries
/// the new credential generation), kills pending reset tokens and, unless `keep_api_tokens`,
/// every API token.
pub async fn change_password(
    state: &AppState,
    user: &AuthUser,
    change: &PasswordChange<'_>,
    client: &ClientInfo,
) -> Result<UserRecord, AccountError> {
    let mut errors = FieldErrors::new();
    let current = errors.check("current_password", Password::typed(change.current));
    let new_password = errors.check("new_password", Password::new_for_account(change.new));
    if let Some(p) = &new_password {
        if p.matches_any(&[&user.username, &user.email]) {
            errors.add(
                "new_password",
                "Must not be your username or email address.",
            );
        }
    }
    let (current, new_password) = errors
        .into_result(|| Some((current?, new_password?)))
        .map_err(AccountError::Validation)?;
    let mut record = match check_current_password(state, user, &current, client).await {
        Ok(record) => record,
        Err(e) => {
            audit::record(
                state,
                Event::PasswordChange,
                Subject::user(user.id, &user.username),
                client,
                "failure",
                Some("wrong current password"),
            )
            .await;
            return Err(e);
        }
    };
    let notice = if change.keep_api_tokens {
        (
            "Your password was changed",
            "The password of your account was changed, and your other sessions were signed \
             out. Your API tokens were kept.",
        )
    } else {
        (
            "Your password was changed",
            "The password of your account was changed, your other sessions were signed out \
             and your API tokens revoked.",
        )
    };
    let replacement = Replacement {
        event: Event::PasswordChange,
        keep_api_tokens: change.keep_api_tokens,
        detail: None,
    };
    let revoked =
        replace_password(state, &record, &new_password, replacement, client, notice).await?;
    record.credential_gen = revoked.credential_gen;
    Ok(record)
}

/// The fields of a password change, from the JSON API and the `/account` form alike.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct PasswordChangeInput {
    /// The current password.
    pub current_password: Option<String>,
    /// The new password.
    pub new_password: Option<String>,
    /// Keep API tokens working (they are revoked by default).
    #[serde(default, deserialize_with = "crate::domain::flex_bool")]
    pub keep_api_tokens: Option<bool>,
}

impl PasswordChangeInput {
    /// The change the fields ask for (missing fields are empty, and refused as such).
    pub fn change(&self) -> PasswordChange<'_> {
        PasswordChange {
            current: self.current_password.as_deref().unwrap_or_default(),
            new: self.new_password.as_deref().unwrap_or_default(),
            keep_api_tokens: self.keep_api_tokens.unwrap_or(false),
        }
    }
}

/// What a self-service password change asks for.
#[derive(Debug, Clone, Copy)]
pub struct PasswordChange<'a> {
    /// The current password, as typed.
    pub current: &'a str,
    /// The new password, as typed.
    pub new: &'a str,
    /// Keep the API tokens working (by default a password change revokes them, like a
    /// reset: a changed password often means a leaked one).
    pub keep_api_tokens: bool,
}
