//! Changing the address: confirmed by a link to the new one; the old one and, when the new
//! one is taken, its owner get a notice.

use super::mail_limits::{address_may_receive, count_mail_request, mail_limits};
use super::messages;
use super::password::check_current_password;
use super::verification::send_verification;
use super::{deliver, AccountError};
use crate::audit::{self, Event, Subject};
use crate::domain::{EmailAddress, FieldErrors, Password};
use crate::state::AppState;
use crate::store::sessions::ClientInfo;
use crate::store::tokens::{self, Purpose};
use crate::store::users::{self};
use crate::user::AuthUser;

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
