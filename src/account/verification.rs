//! Email verification: the mailed link, its use, and sending it again.

use super::mail_limits::{address_may_receive, count_mail_request};
use super::messages;
use super::{deliver, issue_token, redeem_token, AccountError, VERIFY_TTL};
use crate::audit::{self, Event, Subject};
use crate::state::AppState;
use crate::store::sessions::ClientInfo;
use crate::store::tokens::{self, Purpose};
use crate::store::users::{self, UserRecord};
use crate::store::StoreError;
use crate::user::AuthUser;

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
    let (consumed, user) = redeem_token(state, raw_token, Purpose::VerifyEmail).await?;
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
    // The one change made by a GET (the mailed link), which the middleware does not count as
    // a write.
    state.sessions_changed();
    users::find_by_id(&state.db, user.id)
        .await?
        .ok_or(AccountError::InvalidToken)
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
