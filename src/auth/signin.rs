use crate::app::AppState;
use crate::domain::{nfkc_lower, Password};
use crate::passwords::{HashError, Verification};
use crate::store::users::{self, UserRecord};
use crate::store::StoreError;

/// What a user typed to sign in.
#[derive(Debug)]
pub struct Credentials {
    /// Username or email address.
    pub login: String,
    /// The password, NFKC-normalised.
    pub password: Password,
}

/// Why a sign-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Unknown account or wrong password: one case, so the answer reveals neither.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Locked by an administrator (only said after the right password).
    #[error("account locked")]
    Locked,
    /// Verification is required and the address is not verified.
    #[error("email not verified")]
    EmailUnverified,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] HashError),
}

/// Checks the credentials. An unknown account costs the same Argon2 work as a wrong password,
/// and a hash with old parameters is replaced by one with the current parameters.
#[tracing::instrument(skip_all)]
pub async fn sign_in(state: &AppState, credentials: &Credentials) -> Result<UserRecord, SignInError> {
    let norm = nfkc_lower(credentials.login.trim());
    let user = if norm.is_empty() || norm.len() > 254 {
        None
    } else {
        users::find_by_login(&state.db, &norm).await?
    };
    let verification = state
        .hasher
        .verify(&credentials.password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await?;
    let outcome = match (user, verification) {
        (Some(user), Verification::Match { needs_rehash }) => {
            if user.locked {
                Err(SignInError::Locked)
            } else if state.config.require_verified_email && !user.email_verified {
                Err(SignInError::EmailUnverified)
            } else {
                let new_hash = if needs_rehash {
                    Some(state.hasher.hash(&credentials.password).await?)
                } else {
                    None
                };
                users::record_sign_in(&state.db, user.id, state.clock.now(), new_hash.as_deref())
                    .await?;
                Ok(user)
            }
        }
        _ => Err(SignInError::InvalidCredentials),
    };
    let label = match &outcome {
        Ok(_) => "success",
        Err(SignInError::InvalidCredentials) => "invalid_credentials",
        Err(SignInError::Locked) => "locked",
        Err(SignInError::EmailUnverified) => "email_unverified",
        Err(_) => "error",
    };
    metrics::counter!("latch_sign_ins_total", "outcome" => label).increment(1);
    outcome
}

/// The sign-in fields as sent (JSON or form).
#[derive(Debug, Default, serde::Deserialize)]
pub struct LoginInput {
    /// Username or email (`username`, `user_name` and `email` are accepted spellings).
    #[serde(alias = "username", alias = "user_name", alias = "email")]
    pub login: Option<String>,
    /// The password.
    pub password: Option<String>,
    /// Keep the session for 30 days.
    #[serde(default, deserialize_with = "crate::domain::flex_bool")]
    pub remember_me: Option<bool>,
    /// Where a page sign-in goes next (checked by [`crate::domain::NextPath`]).
    pub next: Option<String>,
}

impl TryFrom<&LoginInput> for Credentials {
    type Error = crate::domain::FieldErrors;

    fn try_from(input: &LoginInput) -> Result<Self, Self::Error> {
        let mut errors = crate::domain::FieldErrors::new();
        let login = input.login.as_deref().unwrap_or_default();
        let password = input.password.as_deref().unwrap_or_default();
        if login.trim().is_empty() {
            errors.add("login", "Enter your username or email address.");
        }
        if password.is_empty() {
            errors.add("password", "Enter your password.");
        }
        errors.into_result(|| {
            Some(Credentials {
                login: login.to_owned(),
                password: Password::for_sign_in(password),
            })
        })
    }
}
