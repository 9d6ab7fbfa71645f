use serde::Deserialize;

use crate::audit::{self, Event, Subject};
use crate::domain::{parse_profile_name, EmailAddress, FieldErrors, Password, Username};
use crate::passwords::HashError;
use crate::state::AppState;
use crate::store::sessions::ClientInfo;
use crate::store::users::{self, NewUser, UserRecord};
use crate::store::StoreError;
use crate::throttle::Limit;

/// The sign-up fields as sent (JSON or form). Unknown fields such as `roles` or `id` are
/// ignored: nothing in a request body can grant a role.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct SignupInput {
    /// Username (`user_name` is the classic recipe's spelling).
    #[serde(alias = "user_name")]
    pub username: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Repeated password; must match when given.
    pub confirm: Option<String>,
    /// Optional profile field.
    pub first_name: Option<String>,
    /// Optional profile field.
    pub last_name: Option<String>,
}

/// A sign-up whose every field is valid.
#[derive(Debug)]
pub struct NewAccount {
    /// The username.
    pub username: Username,
    /// The address.
    pub email: EmailAddress,
    /// The chosen password.
    pub password: Password,
    /// Profile field.
    pub first_name: Option<String>,
    /// Profile field.
    pub last_name: Option<String>,
}

impl TryFrom<SignupInput> for NewAccount {
    type Error = FieldErrors;

    /// Checks every field and reports all failures at once.
    fn try_from(input: SignupInput) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let username = errors.check(
            "username",
            Username::parse(input.username.as_deref().unwrap_or_default()),
        );
        let email = errors.check(
            "email",
            EmailAddress::parse(input.email.as_deref().unwrap_or_default()),
        );
        let raw_password = input.password.as_deref().unwrap_or_default();
        let password = errors.check("password", Password::new_for_account(raw_password));
        if let (Some(password), Some(username), Some(email)) = (&password, &username, &email) {
            if password.matches_any(&[username.as_str(), email.as_str()]) {
                errors.add("password", "Must not be your username or email address.");
            }
        }
        if let Some(confirm) = input.confirm.as_deref() {
            if confirm != raw_password {
                errors.add("confirm", "Passwords do not match.");
            }
        }
        let first_name = errors.check(
            "first_name",
            parse_profile_name(input.first_name.as_deref()),
        );
        let last_name = errors.check("last_name", parse_profile_name(input.last_name.as_deref()));
        errors.into_result(|| {
            Some(NewAccount {
                username: username?,
                email: email?,
                password: password?,
                first_name: first_name?,
                last_name: last_name?,
            })
        })
    }
}

/// Why a sign-up was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    /// Another account has this username (compared case-insensitively after NFKC).
    #[error("username taken")]
    UsernameTaken,
    /// Another account has this address.
    #[error("email taken")]
    EmailTaken,
    /// Too many sign-ups from this client.
    #[error("too many sign-ups")]
    Throttled {
        /// Seconds to wait.
        retry_after: i64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] HashError),
}

/// Creates the account with the given roles (sign-up passes none). The database's unique
/// indexes decide races: of many simultaneous sign-ups for one name exactly one wins.
#[tracing::instrument(skip_all, fields(username = %account.username))]
pub async fn sign_up(
    state: &AppState,
    account: &NewAccount,
    roles: &str,
) -> Result<UserRecord, SignUpError> {
    let username_norm = account.username.normalized();
    let email = account.email.as_str();
    check_free(state, &username_norm, email).await?;
    let hash = state.hasher.hash(&account.password).await?;
    let new = NewUser {
        username: account.username.as_str(),
        username_norm: &username_norm,
        email,
        password_hash: &hash,
        first_name: account.first_name.as_deref(),
        last_name: account.last_name.as_deref(),
        roles,
        created_at: state.clock.now(),
    };
    match users::insert(&state.db, &new).await {
        Ok(user) => Ok(user),
        Err(StoreError::Conflict) => {
            check_free(state, &username_norm, email).await?;
            Err(SignUpError::UsernameTaken)
        }
        Err(e) => Err(e.into()),
    }
}

/// A sign-up from the web (pages or API): limited per client IP, audited, and followed by
/// the verification mail. Never grants a role.
pub async fn register(
    state: &AppState,
    account: &NewAccount,
    client: &ClientInfo,
) -> Result<UserRecord, SignUpError> {
    let ip_key = client.ip.as_deref().map(|ip| format!("signup-ip:{ip}"));
    if let Some(key) = &ip_key {
        let limit = Limit {
            max: state.config.throttle_ip_signups_per_hour,
            window: 3600,
        };
        match crate::throttle::take(state, &[(key, limit)]).await? {
            crate::throttle::Decision::Allowed(taken) => taken.keep(),
            crate::throttle::Decision::Wait(retry_after) => {
                return Err(SignUpError::Throttled { retry_after })
            }
        }
    }
    let user = sign_up(state, account, "").await?;
    audit::record(
        state,
        Event::SignUp,
        Subject::user(user.id, &user.username),
        client,
        "success",
        None,
    )
    .await;
    if let Err(e) =
        crate::account::send_verification(state, user.id, &user.username, &user.email).await
    {
        tracing::error!(error = %e, "could not start email verification");
    }
    Ok(user)
}

async fn check_free(state: &AppState, username_norm: &str, email: &str) -> Result<(), SignUpError> {
    match users::taken(&state.db, username_norm, email).await? {
        (true, _) => Err(SignUpError::UsernameTaken),
        (_, true) => Err(SignUpError::EmailTaken),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let input = SignupInput {
            username: Some("a".into()),
            email: Some("nope".into()),
            password: Some("short".into()),
            confirm: Some("different".into()),
            first_name: Some("x".repeat(101)),
            last_name: None,
        };
        let errors = NewAccount::try_from(input).unwrap_err();
        for field in ["username", "email", "password", "confirm", "first_name"] {
            assert!(
                errors.first(field).is_some(),
                "{field} missing in {errors:?}"
            );
        }
    }

    #[test]
    fn password_may_not_be_the_username() {
        let input = SignupInput {
            username: Some("longusername".into()),
            email: Some("a@example.com".into()),
            password: Some("LongUsername".into()),
            ..Default::default()
        };
        assert!(NewAccount::try_from(input)
            .unwrap_err()
            .first("password")
            .is_some());
    }
}
