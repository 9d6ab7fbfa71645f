use crate::audit::{self, Event, Subject};
use crate::domain::{nfkc_lower, Password};
use crate::passwords::{HashError, Verification};
use crate::state::AppState;
use crate::store::sessions::ClientInfo;
use crate::store::users::{self, UserRecord};
use crate::store::StoreError;
use crate::throttle::{self, Decision, Taken};

/// A right password: the user, and the second step it must be followed by
/// ([`crate::mfa::methods`]; empty when the password is enough).
#[derive(Debug)]
pub struct PasswordChecked {
    /// The account.
    pub user: UserRecord,
    /// The methods that can complete the sign-in; empty: the user is signed in.
    pub second_step: Vec<&'static str>,
}

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
    /// Too many recent failures for this account or client; try again after `retry_after`
    /// seconds (refused even with the right password).
    #[error("too many attempts")]
    Throttled {
        /// Seconds until the oldest counted failure leaves the window.
        retry_after: i64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] HashError),
}

/// The longest sign-in identifier: the longest email address. Longer input is refused with
/// 422 before any lookup, normalisation or counting.
pub const MAX_LOGIN_CHARS: usize = 254;

/// Checks the credentials. An unknown account costs the same Argon2 work as a wrong password,
/// and a hash with old parameters is replaced by one with the current parameters.
///
/// Failures are counted in the database per account and per client IP (so the limits hold
/// across processes), and the attempt is counted *before* the password is checked (see
/// [`crate::throttle`]), so parallel attempts never get more evaluations than the limit. An
/// identifier with no account is counted under a digest of its own name, exactly like an
/// account, so the limiter reveals nothing about which accounts exist.
#[tracing::instrument(skip_all)]
pub async fn sign_in(
    state: &AppState,
    credentials: &Credentials,
    client: &ClientInfo,
) -> Result<PasswordChecked, SignInError> {
    let norm = nfkc_lower(credentials.login.trim());
    let user = if norm.is_empty() {
        None
    } else {
        users::find_by_login(&state.db, &norm).await?
    };
    let account_key = match &user {
        Some(user) => throttle::user_key(user.id),
        None => throttle::login_key(&norm),
    };
    let ip_key = throttle::ip_key(client);
    let limits = throttle::sign_in_limits(state, &account_key, ip_key.as_deref());
    let outcome = match throttle::take(state, &limits).await? {
        Decision::Wait(retry_after) => Err(SignInError::Throttled { retry_after }),
        Decision::Allowed(taken) => match check(state, credentials, user).await {
            Ok((user, new_hash)) => {
                record(state, user, new_hash.as_deref(), &taken, &account_key).await
            }
            Err(e) => {
                settle(state, taken, &e).await?;
                Err(e)
            }
        },
    };
    let label = match &outcome {
        Ok(checked) if !checked.second_step.is_empty() => "mfa_required",
        Ok(_) => "success",
        Err(SignInError::Throttled { .. }) => "throttled",
        Err(SignInError::InvalidCredentials) => "invalid_credentials",
        Err(SignInError::Locked) => "locked",
        Err(SignInError::EmailUnverified) => "email_unverified",
        Err(_) => "error",
    };
    metrics::counter!("latch_sign_ins_total", "outcome" => label).increment(1);
    let (event, subject) = match &outcome {
        Ok(PasswordChecked { user, .. }) => (Event::SignIn, Subject::user(user.id, &user.username)),
        Err(SignInError::Throttled { .. }) => (Event::Throttled, Subject::default()),
        Err(_) => (Event::SignIn, Subject::default()),
    };
    let detail = outcome
        .is_err()
        .then(|| format!("login {:?}", truncate(&norm, 64)));
    audit::record(state, event, subject, client, label, detail.as_deref()).await;
    outcome
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// A right password: records the sign-in and gives the counted attempt back in one step
/// ([`users::record_sign_in`]), and a success clears the account's count, unless a second
/// factor is still to come: then only the completed sign-in clears it, or a right password
/// would wipe the wrong codes before it and the codes could be guessed without end.
async fn record(
    state: &AppState,
    user: UserRecord,
    new_hash: Option<&str>,
    taken: &Taken,
    account_key: &str,
) -> Result<PasswordChecked, SignInError> {
    let second_step = crate::mfa::methods(state, &user);
    let clear = second_step.is_empty().then_some(account_key);
    let now = state.clock.now();
    let gen = (user.id, user.credential_gen);
    // A revocation (reset, lock) that committed since the read wins: the password checked
    // above is no longer the account's, so this sign-in fails like a wrong password (and its
    // attempt stays counted).
    if !users::record_sign_in(&state.db, gen, now, new_hash, &taken.release(clear)).await? {
        return Err(SignInError::InvalidCredentials);
    }
    Ok(PasswordChecked { user, second_step })
}

/// A refused attempt: a wrong password keeps its count; any other refusal gives it back.
async fn settle(state: &AppState, taken: Taken, error: &SignInError) -> Result<(), StoreError> {
    match error {
        SignInError::InvalidCredentials => {
            taken.keep();
            Ok(())
        }
        _ => taken.give_back(state).await,
    }
}

/// Checks the password (and the account's state); returns the user and, when the stored
/// hash has old parameters, a new hash of the password. Nothing is written.
async fn check(
    state: &AppState,
    credentials: &Credentials,
    user: Option<UserRecord>,
) -> Result<(UserRecord, Option<String>), SignInError> {
    let verification = state
        .hasher
        .verify(
            &credentials.password,
            user.as_ref().map(|u| u.password_hash.as_str()),
        )
        .await?;
    let (user, needs_rehash) = match (user, verification) {
        (Some(user), Verification::Match { needs_rehash }) => (user, needs_rehash),
        _ => return Err(SignInError::InvalidCredentials),
    };
    if user.locked {
        return Err(SignInError::Locked);
    }
    if state.config.require_verified_email && !user.email_verified {
        // The right password proves ownership: send a fresh link, since the refused user has
        // no session to ask for one with.
        crate::account::resend_after_refused_sign_in(state, &user).await?;
        return Err(SignInError::EmailUnverified);
    }
    let new_hash = if needs_rehash {
        Some(state.hasher.hash(&credentials.password).await?)
    } else {
        None
    };
    Ok((user, new_hash))
}

/// The sign-in fields as sent (JSON or form).
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
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
        let login = input.login.as_deref().unwrap_or_default().trim();
        if login.is_empty() {
            errors.add("login", "Enter your username or email address.");
        } else if login.len() > 4 * MAX_LOGIN_CHARS || login.chars().count() > MAX_LOGIN_CHARS {
            errors.add(
                "login",
                format!("Must be at most {MAX_LOGIN_CHARS} characters."),
            );
        }
        let password = errors.check(
            "password",
            Password::typed(input.password.as_deref().unwrap_or_default()),
        );
        errors.into_result(|| {
            Some(Credentials {
                login: login.to_owned(),
                password: password?,
            })
        })
    }
}
