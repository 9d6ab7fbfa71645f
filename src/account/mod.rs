//! The account after the first sign-in: email verification, password reset, password and
//! email changes. Shared by the pages and the JSON API.
//!
//! Tokens are 256-bit secrets, mailed once and stored only as hashes; each is single-use
//! (consumed by one `DELETE … RETURNING`), verification tokens live 24 h and reset tokens
//! 1 h, and a new reset token or a password change kills the older ones.

pub mod api;
pub mod messages;
pub mod pages;

use crate::audit::{self, Event, Subject};
use crate::domain::{EmailAddress, FieldErrors, Password, SecretToken};
use crate::mail::Email;
use crate::passwords::{HashError, Verification};
use crate::state::AppState;
use crate::store::revocation::{self, Revocation, Revoked};
use crate::store::sessions::{self as session_store, ClientInfo};
use crate::store::tokens::{self, Purpose};
use crate::store::users::{self, UserRecord};
use crate::store::StoreError;
use crate::throttle::{self, Decision, Limit};
use crate::user::AuthUser;

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

/// Mails a verification link for `email` (the current address at sign-up, a new one on
/// change).
pub async fn send_verification(
    state: &AppState,
    user_id: i64,
    username: &str,
    email: &str,
) -> Result<(), StoreError> {
    let token = issue_token(
        state,
        user_id,
        Purpose::VerifyEmail,
        Some(email),
        VERIFY_TTL,
    )
    .await?;
    deliver(
        state,
        messages::verify_email(state, username, email, token.expose()),
    )
    .await;
    Ok(())
}

/// Consumes a verification token: marks the address verified, or, for an email change,
/// makes the new address the account's.
pub async fn verify_email(
    state: &AppState,
    raw_token: &str,
    client: &ClientInfo,
) -> Result<UserRecord, AccountError> {
    let token = SecretToken::from_client(raw_token.trim()).ok_or(AccountError::InvalidToken)?;
    let consumed = tokens::consume(&state.db, &token.hash(), Purpose::VerifyEmail)
        .await?
        .ok_or(AccountError::InvalidToken)?;
    if consumed.expires_at < state.clock.now() {
        return Err(AccountError::InvalidToken);
    }
    let user = users::find_by_id(&state.db, consumed.user_id)
        .await?
        .ok_or(AccountError::InvalidToken)?;
    let email = consumed.email.unwrap_or_else(|| user.email.clone());
    if email == user.email {
        users::mark_verified(&state.db, user.id, &email).await?;
        audit::record(
            state,
            Event::EmailVerified,
            Subject::user(user.id, &user.username),
            client,
            "success",
            None,
        )
        .await;
    } else {
        match users::set_verified_email(&state.db, user.id, &email).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(AccountError::EmailTaken),
            Err(e) => return Err(e.into()),
        }
        // Links mailed to the old address (or to an abandoned new one) must not move the
        // account back.
        tokens::delete_for_user(&state.db, user.id, Purpose::VerifyEmail).await?;
        audit::record(
            state,
            Event::EmailChange,
            Subject::user(user.id, &user.username),
            client,
            "success",
            Some("new address verified"),
        )
        .await;
        let notice = messages::notice(
            state,
            &user.username,
            &user.email,
            "Your email address was changed",
            &format!("The email address of your account was changed to {email}."),
        );
        deliver(state, notice).await;
    }
    users::find_by_id(&state.db, user.id)
        .await?
        .ok_or(AccountError::InvalidToken)
}

fn mail_limits(state: &AppState) -> (Limit, Limit) {
    let c = &state.config;
    (
        Limit {
            max: c.throttle_ip_mail_requests_per_hour,
            window: 3600,
        },
        Limit {
            max: c.throttle_address_mails_per_hour,
            window: 3600,
        },
    )
}

/// Checks the per-IP limit on mail requests (429 past it) and counts this request.
async fn count_mail_request(state: &AppState, client: &ClientInfo) -> Result<(), AccountError> {
    let (per_ip, _) = mail_limits(state);
    if let Some(ip) = client.ip.as_deref() {
        let key = format!("mail-ip:{ip}");
        if let Decision::Wait(retry_after) = throttle::take(state, &[(&key, per_ip)]).await? {
            audit::record(
                state,
                Event::Throttled,
                Subject::default(),
                client,
                "refused",
                Some("mail requests per IP"),
            )
            .await;
            return Err(AccountError::Throttled { retry_after });
        }
    }
    Ok(())
}

/// Whether another mail may go to `address` this hour (silently not sent otherwise, so the
/// answer does not change).
async fn address_may_receive(state: &AppState, address: &str) -> Result<bool, StoreError> {
    let (_, per_address) = mail_limits(state);
    let key = format!("mail-to:{address}");
    match throttle::take(state, &[(&key, per_address)]).await? {
        Decision::Allowed(taken) => {
            taken.keep();
            Ok(true)
        }
        Decision::Wait(_) => Ok(false),
    }
}

/// Mails the verification link again (signed-in users whose address is unverified).
pub async fn resend_verification(
    state: &AppState,
    user: &AuthUser,
    client: &ClientInfo,
) -> Result<(), AccountError> {
    count_mail_request(state, client).await?;
    if user.email_verified || !address_may_receive(state, &user.email).await? {
        return Ok(());
    }
    send_verification(state, user.id, &user.username, &user.email).await?;
    Ok(())
}

/// Mails a fresh verification link to an account refused at sign-in for being unverified
/// (the right password was given, so this is the owner), within the per-address limit.
pub async fn resend_after_refused_sign_in(
    state: &AppState,
    user: &UserRecord,
) -> Result<(), StoreError> {
    if address_may_receive(state, &user.email).await? {
        send_verification(state, user.id, &user.username, &user.email).await?;
    }
    Ok(())
}

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
    let token = SecretToken::from_client(raw_token.trim()).ok_or(AccountError::InvalidToken)?;
    // Check the password first, so a policy failure does not burn the token.
    let password = Password::new_for_account(raw_password)
        .map_err(|m| AccountError::Validation(FieldErrors::single("password", m)))?;
    let consumed = tokens::consume(&state.db, &token.hash(), Purpose::ResetPassword)
        .await?
        .ok_or(AccountError::InvalidToken)?;
    if consumed.expires_at < state.clock.now() {
        return Err(AccountError::InvalidToken);
    }
    let user = users::find_by_id(&state.db, consumed.user_id)
        .await?
        .ok_or(AccountError::InvalidToken)?;
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
struct Replacement<'a> {
    event: Event,
    keep_api_tokens: bool,
    detail: Option<&'a str>,
}

/// Stores a new password and ends what the old one opened, in one transaction with a new
/// credential generation (see [`crate::store::revocation`]): pending reset links, every
/// session (after a change the caller re-issues the current one) and, unless kept, every API
/// token. Audited, and the owner gets a notice by mail.
async fn replace_password(
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

async fn verify_current(
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

/// Starts a change of address: needs the current password; the new address gets a
/// verification link and takes effect only when verified; the old one gets a notice.
pub async fn change_email(
    state: &AppState,
    user: &AuthUser,
    password: &str,
    new_email: &str,
    client: &ClientInfo,
) -> Result<(), AccountError> {
    let mut errors = FieldErrors::new();
    let current = errors.check("password", Password::typed(password));
    let email = errors.check("email", EmailAddress::parse(new_email));
    if email.as_ref().is_some_and(|e| e.as_str() == user.email) {
        errors.add("email", "This is already your address.");
    }
    let (current, email) = errors
        .into_result(|| Some((current?, email?)))
        .map_err(AccountError::Validation)?;
    check_current_password(state, user, &current, client).await?;
    count_mail_request(state, client).await?;
    if !address_may_receive(state, email.as_str()).await? {
        let (_, per_address) = mail_limits(state);
        return Err(AccountError::Throttled {
            retry_after: per_address.window,
        });
    }
    // A taken address gets the same answer as a free one (no address oracle): nothing
    // changes, and the address's owner is told someone tried.
    if let Some(owner) = users::find_by_login(&state.db, email.as_str()).await? {
        audit::record(
            state,
            Event::EmailChange,
            Subject::user(user.id, &user.username),
            client,
            "refused",
            Some("address belongs to another account"),
        )
        .await;
        let notice = messages::notice(
            state,
            &owner.username,
            &owner.email,
            "Someone tried to use your email address",
            "Another latch account asked to change its email address to yours. Nothing \
             changed: your address stays with your account. If this was you, sign in to that \
             other account with a different address.",
        );
        deliver(state, notice).await;
        return Ok(());
    }
    // Only the newest requested address can be confirmed.
    tokens::delete_for_user(&state.db, user.id, Purpose::VerifyEmail).await?;
    send_verification(state, user.id, &user.username, email.as_str()).await?;
    audit::record(
        state,
        Event::EmailChange,
        Subject::user(user.id, &user.username),
        client,
        "requested",
        None,
    )
    .await;
    let notice = messages::notice(
        state,
        &user.username,
        &user.email,
        "A change of email address was requested",
        &format!("Someone asked to change the email address of your account to {}. It changes only once the new address is confirmed.", email.as_str()),
    );
    deliver(state, notice).await;
    Ok(())
}

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
