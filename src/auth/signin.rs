use crate::app::AppState;
use crate::audit::{self, Event, Subject};
use crate::domain::{nfkc_lower, Password};
use crate::passwords::{HashError, Verification};
use crate::store::sessions::ClientInfo;
use crate::store::users::{self, UserRecord};
use crate::store::{throttle, StoreError};
use crate::throttle::Limit;

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

/// Checks the credentials. An unknown account costs the same Argon2 work as a wrong password,
/// and a hash with old parameters is replaced by one with the current parameters.
///
/// Failures are counted in the database per account and per client IP (so the limits hold
/// across processes). An identifier with no account is counted under its own name, exactly
/// like an account, so the limiter reveals nothing about which accounts exist.
#[tracing::instrument(skip_all)]
pub async fn sign_in(
    state: &AppState,
    credentials: &Credentials,
    client: &ClientInfo,
) -> Result<UserRecord, SignInError> {
    let client_ip = client.ip.as_deref();
    let norm = nfkc_lower(credentials.login.trim());
    let user = if norm.is_empty() || norm.len() > 254 {
        None
    } else {
        users::find_by_login(&state.db, &norm).await?
    };
    let account_key = match &user {
        Some(user) => format!("user:{}", user.id),
        None => format!("login:{norm}"),
    };
    let ip_key = client_ip.map(|ip| format!("ip:{ip}"));
    let outcome = match throttled(state, &account_key, ip_key.as_deref()).await? {
        Some(retry_after) => Err(SignInError::Throttled { retry_after }),
        None => check(state, credentials, user, &account_key, ip_key.as_deref()).await,
    };
    let label = match &outcome {
        Ok(_) => "success",
        Err(SignInError::Throttled { .. }) => "throttled",
        Err(SignInError::InvalidCredentials) => "invalid_credentials",
        Err(SignInError::Locked) => "locked",
        Err(SignInError::EmailUnverified) => "email_unverified",
        Err(_) => "error",
    };
    metrics::counter!("latch_sign_ins_total", "outcome" => label).increment(1);
    let (event, subject) = match &outcome {
        Ok(user) => (Event::SignIn, Subject::user(user.id, &user.username)),
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

/// Seconds to wait when the account or the client has used up its failures, else `None`.
async fn throttled(
    state: &AppState,
    account_key: &str,
    ip_key: Option<&str>,
) -> Result<Option<i64>, StoreError> {
    let config = &state.config;
    let window = config.throttle_window_secs;
    let mut checks = vec![(
        account_key,
        Limit {
            max: config.throttle_account_failures,
            window,
        },
    )];
    if let Some(ip_key) = ip_key {
        checks.push((
            ip_key,
            Limit {
                max: config.throttle_ip_failures,
                window,
            },
        ));
    }
    crate::throttle::first_exceeded(state, &checks).await
}

async fn check(
    state: &AppState,
    credentials: &Credentials,
    user: Option<UserRecord>,
    account_key: &str,
    ip_key: Option<&str>,
) -> Result<UserRecord, SignInError> {
    let verification = state
        .hasher
        .verify(
            &credentials.password,
            user.as_ref().map(|u| u.password_hash.as_str()),
        )
        .await?;
    let user = match (user, verification) {
        (Some(user), Verification::Match { needs_rehash }) => (user, needs_rehash),
        _ => {
            let keys: Vec<&str> = [Some(account_key), ip_key].into_iter().flatten().collect();
            crate::throttle::hit(state, &keys).await?;
            return Err(SignInError::InvalidCredentials);
        }
    };
    let (user, needs_rehash) = user;
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
    users::record_sign_in(&state.db, user.id, state.clock.now(), new_hash.as_deref()).await?;
    throttle::clear(&state.db, account_key).await?;
    Ok(user)
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
