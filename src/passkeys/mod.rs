//! Passkeys (WebAuthn): adding them to an account, signing in with them (without a username,
//! or to finish a sign-in waiting for its second factor), naming and removing them. Shared by
//! the pages, the JSON API and `/static/latch.js`, which performs the browser's side.
//!
//! Each ceremony's state is stored under its challenge for 5 minutes and taken by deleting
//! its row, so it works once, also when start and finish reach different nodes. The
//! relying-party id and origin come from `public_url` (see [`crate::config::Config::passkey_relying_party`]);
//! the signature counter advances by compare-and-set. A sign-in with user verification
//! proves two factors ([`Factor::Passkey`]); without it, one ([`Factor::SecurityKey`]), which
//! cannot stand in for an account's second factor on its own.

pub mod api;
mod ceremony;
pub mod pages;

use serde::{Deserialize, Serialize};
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, AuthenticationState, CreationChallengeResponse, Credential,
    PublicKeyCredential, RegisterPublicKeyCredential, RegistrationState, RequestChallengeResponse,
    UserVerificationPolicy,
};
use webauthn_rs_core::WebauthnCore;

pub use ceremony::{DEFAULT_NAME, MAX_NAME_CHARS};

use crate::account::{self, AccountError};
use crate::audit::{self, Event, Subject};
use crate::clock::Timestamp;
use crate::domain::{Factor, Factors, FieldErrors, Password};
use crate::sessions::{self, ActiveSession, NewSession};
use crate::state::{AppState, PASSKEY_CEREMONY_SECS};
use crate::store::passkeys::{self as store, NewPasskey, PasskeyRecord, Purpose};
use crate::store::revocation::{self, Revocation};
use crate::store::sessions::ClientInfo;
use crate::store::users::{self, UserRecord};
use crate::store::StoreError;
use crate::throttle;
use crate::user::AuthUser;

/// How long a sign-in made by a passkey lets its owner add another without the password.
pub const RECENT_PASSKEY_SECS: i64 = 5 * 60;

/// Why a passkey operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// Passkeys are off on this server (the reason, for the log and the operator).
    #[error("{0}")]
    Unavailable(std::sync::Arc<str>),
    /// A registration response that does not verify (the reason is logged, never shown).
    #[error("invalid credential: {0}")]
    InvalidCredential(String),
    /// A sign-in response that does not verify (the reason is logged, never shown).
    #[error("passkey refused: {0}")]
    Refused(String),
    /// The user has no passkey with this id.
    #[error("no such passkey")]
    NotFound,
    /// Bad input.
    #[error("validation failed")]
    Validation(FieldErrors),
    /// Locked by an administrator (said after a verified passkey only).
    #[error("account locked")]
    Locked,
    /// Verification is required and the address is not verified.
    #[error("email not verified")]
    EmailUnverified,
    /// Too many sign-ins started from the client's address: seconds to wait.
    #[error("too many attempts")]
    Throttled {
        /// Seconds to wait.
        retry_after: i64,
    },
    /// The current password was wrong, or its check throttled.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PasskeyError> for crate::web::error::ApiError {
    fn from(e: PasskeyError) -> Self {
        use crate::web::error::ApiError;
        match e {
            PasskeyError::Unavailable(_) => ApiError::PasskeysUnavailable,
            PasskeyError::InvalidCredential(_) => ApiError::InvalidCredential,
            PasskeyError::Refused(_) => ApiError::PasskeyRefused,
            PasskeyError::NotFound => ApiError::NotFound,
            PasskeyError::Validation(fields) => ApiError::Validation(fields),
            PasskeyError::Locked => ApiError::AccountLocked,
            PasskeyError::EmailUnverified => ApiError::EmailUnverified,
            PasskeyError::Throttled { retry_after } => ApiError::TooManyAttempts { retry_after },
            PasskeyError::Account(e) => e.into(),
            PasskeyError::Store(e) => e.into(),
        }
    }
}

/// The routes: `/api/auth/passkeys…` and the passkey forms of `/account/security`.
pub fn routes() -> axum::Router<AppState> {
    api::router().merge(pages::router())
}

fn relying_party(state: &AppState) -> Result<&WebauthnCore, PasskeyError> {
    state
        .relying_party
        .as_deref()
        .map_err(|reason| PasskeyError::Unavailable(reason.clone()))
}

fn random_failure(e: getrandom::Error) -> PasskeyError {
    PasskeyError::Store(StoreError::Unavailable(format!("no randomness: {e}")))
}

fn state_json<T: Serialize>(value: &T) -> Result<String, PasskeyError> {
    serde_json::to_string(value)
        .map_err(|e| PasskeyError::Store(StoreError::Unavailable(format!("ceremony state: {e}"))))
}

/// What a registration stores between start and finish: the user handle it offered and
/// webauthn-rs's state.
#[derive(Serialize, Deserialize)]
struct StoredRegistration {
    handle: Vec<u8>,
    state: RegistrationState,
}

// ---- Adding a passkey ----

/// Starts adding a passkey for `user`: needs the current password (counted like a sign-in)
/// unless `session` was signed in by a verified passkey in the last 5 minutes. The options
/// ask for a discoverable credential, prefer user verification and exclude the user's
/// existing passkeys.
pub async fn start_registration(
    state: &AppState,
    user: &AuthUser,
    session: Option<&ActiveSession>,
    current_password: Option<&str>,
    client: &ClientInfo,
) -> Result<CreationChallengeResponse, PasskeyError> {
    let rp = relying_party(state)?;
    let now = state.clock.now();
    let recent = session
        .and_then(|s| s.factors().proven_at(Factor::Passkey))
        .is_some_and(|at| now - at <= RECENT_PASSKEY_SECS);
    if !recent {
        let mut errors = FieldErrors::new();
        let password = errors.check(
            "current_password",
            Password::typed(current_password.unwrap_or_default()),
        );
        let password = errors
            .into_result(|| password)
            .map_err(PasskeyError::Validation)?;
        account::check_current_password(state, user, &password, client).await?;
    }
    let existing = store::list(&state.db, user.id).await?;
    let handle = match existing.first() {
        Some(p) => p.user_handle.clone(),
        None => {
            let mut handle = vec![0u8; 16];
            getrandom::fill(&mut handle).map_err(random_failure)?;
            handle
        }
    };
    let exclude = existing.into_iter().map(|p| p.credential_id).collect();
    let builder = rp
        .new_challenge_register_builder(&handle, &user.username, &user.username)
        .map_err(|e| PasskeyError::InvalidCredential(e.to_string()))?
        .attestation(AttestationConveyancePreference::None)
        .require_resident_key(true)
        .user_verification_policy(UserVerificationPolicy::Preferred)
        .exclude_credentials(Some(exclude));
    let (options, registration) = rp
        .generate_challenge_register(builder)
        .map_err(|e| PasskeyError::InvalidCredential(e.to_string()))?;
    let stored = state_json(&StoredRegistration {
        handle,
        state: registration,
    })?;
    store::start_ceremony(
        &state.db,
        options.public_key.challenge.as_ref(),
        Purpose::Register,
        Some(user.id),
        &stored,
        now + PASSKEY_CEREMONY_SECS as i64,
    )
    .await?;
    Ok(options)
}

/// A passkey added: the passkey and, when it released its owner from a `require_mfa_roles`
/// hold, the session that replaces the current one.
#[derive(Debug)]
pub struct Registered {
    /// The new passkey.
    pub passkey: PasskeyRecord,
    /// The re-issued session (a new id, the passkey among its factors).
    pub session: Option<NewSession>,
}

/// Finishes adding a passkey: `credential` is the browser's `RegistrationResponseJSON`. The
/// ceremony it answers is taken (once), must be `user`'s and younger than 5 minutes, and the
/// response must verify for this origin and relying party. Audited; the owner gets a notice.
///
/// For a holder of a `require_mfa_roles` role without TOTP, the first passkey is their second
/// factor and releases the hold ([`release_hold`]).
pub async fn finish_registration(
    state: &AppState,
    user: &AuthUser,
    session: Option<&ActiveSession>,
    name: Option<&str>,
    credential: Option<&serde_json::Value>,
    client: &ClientInfo,
) -> Result<Registered, PasskeyError> {
    let rp = relying_party(state)?;
    let held = crate::mfa::enrollment_required(state, user);
    let name = ceremony::name(name).map_err(PasskeyError::Validation)?;
    let credential = credential.filter(|c| !c.is_null()).ok_or_else(|| {
        PasskeyError::Validation(FieldErrors::single(
            "credential",
            "Send the browser's answer (RegistrationResponseJSON) as credential.",
        ))
    })?;
    let subject = Subject::user(user.id, &user.username);
    let (record, user_verified) = match register(state, rp, user, &name, credential).await {
        Ok(registered) => registered,
        Err(e) => {
            if let PasskeyError::InvalidCredential(reason) = &e {
                tracing::info!(user = user.id, reason = %reason, "passkey registration refused");
                audit::record(
                    state,
                    Event::PasskeyAdd,
                    subject,
                    client,
                    "invalid_credential",
                    Some(reason),
                )
                .await;
            }
            return Err(e);
        }
    };
    let mut detail = format!("passkey={} uv={user_verified}", record.id);
    let session = if held {
        let factor = if user_verified {
            Factor::Passkey
        } else {
            Factor::SecurityKey
        };
        let (new, ended) = release_hold(state, user, session, factor, client).await?;
        detail.push_str(&format!(" sessions_ended={ended}"));
        new
    } else {
        None
    };
    audited(state, user, Event::PasskeyAdd, &detail, client).await;
    account::notify(
        state,
        user,
        "A passkey was added to your account",
        &format!(
            "A passkey named \"{}\" was added to your account. It can now sign you in. If this \
             was not you, remove it on the security page and change your password.",
            record.name
        ),
    )
    .await;
    Ok(Registered {
        passkey: record,
        session,
    })
}

/// The first passkey of a holder of a `require_mfa_roles` role without TOTP is their second
/// factor and releases the hold, as TOTP confirmation does: the credential generation moves
/// on, so every session made by the password alone ends (also one a sign-in racing this is
/// about to store), API tokens are carried over, and `session` is re-issued with the passkey
/// among its factors. Returns the re-issued session and how many sessions ended.
async fn release_hold(
    state: &AppState,
    user: &AuthUser,
    session: Option<&ActiveSession>,
    factor: Factor,
    client: &ClientInfo,
) -> Result<(Option<NewSession>, u64), PasskeyError> {
    let keep_tokens = Revocation {
        keep_api_tokens: true,
        ..Revocation::default()
    };
    let revoked = revocation::revoke(&state.db, user.id, keep_tokens).await?;
    let new = sessions::reissue_with_factor(state, user.id, session, factor, client).await?;
    Ok((new, revoked.map_or(0, |r| r.sessions_ended)))
}

/// Verifies the response and stores the passkey; a credential id registered already (to
/// anyone) is an invalid credential. Returns the passkey and whether the user was verified.
async fn register(
    state: &AppState,
    rp: &WebauthnCore,
    user: &AuthUser,
    name: &str,
    credential: &serde_json::Value,
) -> Result<(PasskeyRecord, bool), PasskeyError> {
    let (credential_id, handle, verified) =
        verify_registration(state, rp, user, credential).await?;
    let json = state_json(&verified)?;
    let new = NewPasskey {
        user_id: user.id,
        credential_id: &credential_id,
        user_handle: &handle,
        name,
        credential: &json,
        sign_count: i64::from(verified.counter),
    };
    match store::insert(&state.db, &new, state.clock.now()).await {
        Ok(record) => Ok((record, verified.user_verified)),
        Err(StoreError::Conflict) => Err(PasskeyError::InvalidCredential(
            "credential already registered".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

async fn verify_registration(
    state: &AppState,
    rp: &WebauthnCore,
    user: &AuthUser,
    credential: &serde_json::Value,
) -> Result<(Vec<u8>, Vec<u8>, Credential), PasskeyError> {
    let invalid = |reason: &str| PasskeyError::InvalidCredential(reason.to_owned());
    let response: RegisterPublicKeyCredential = serde_json::from_value(credential.clone())
        .map_err(|e| invalid(&format!("malformed response: {e}")))?;
    let challenge = ceremony::challenge_of(response.response.client_data_json.as_ref())
        .ok_or_else(|| invalid("no challenge in the client data"))?;
    let ceremony = store::take_ceremony(&state.db, &challenge, Purpose::Register)
        .await?
        .ok_or_else(|| invalid("unknown or already used challenge"))?;
    if ceremony.expires_at < state.clock.now() {
        return Err(invalid("ceremony expired"));
    }
    if ceremony.user_id != Some(user.id) {
        return Err(invalid("ceremony of another user"));
    }
    let stored: StoredRegistration = serde_json::from_str(&ceremony.state)
        .map_err(|e| invalid(&format!("stored state unreadable: {e}")))?;
    let verified = rp
        .register_credential(&response, &stored.state, None)
        .map_err(|e| invalid(&e.to_string()))?;
    Ok((verified.cred_id.to_vec(), stored.handle, verified))
}

// ---- Signing in ----

/// Starts a sign-in with a passkey: options with no `allowCredentials` (the authenticator
/// offers its discoverable credentials for this site), user verification preferred. Anyone
/// may ask and each start stores a challenge, so starts are limited per client IP, in memory,
/// before anything is written ([`throttle::passkey_start`]).
pub async fn start_sign_in(
    state: &AppState,
    client: &ClientInfo,
) -> Result<RequestChallengeResponse, PasskeyError> {
    let rp = relying_party(state)?;
    throttle::passkey_start(state, client)
        .map_err(|retry_after| PasskeyError::Throttled { retry_after })?;
    let builder = rp
        .new_challenge_authenticate_builder(Vec::new(), Some(UserVerificationPolicy::Preferred))
        .map_err(|e| PasskeyError::Refused(e.to_string()))?
        .allow_backup_eligible_upgrade(true);
    let (options, authentication) = rp
        .generate_challenge_authenticate(builder)
        .map_err(|e| PasskeyError::Refused(e.to_string()))?;
    store::start_ceremony(
        &state.db,
        options.public_key.challenge.as_ref(),
        Purpose::SignIn,
        None,
        &state_json(&authentication)?,
        state.clock.now() + PASSKEY_CEREMONY_SECS as i64,
    )
    .await?;
    Ok(options)
}

/// Finishes a sign-in with a passkey: `credential` is the browser's
/// `AuthenticationResponseJSON`. In a session waiting for its second factor, the passkey
/// must be that user's and completes the sign-in (password + passkey); otherwise it signs its
/// owner in by itself. Either way the session is replaced by a new one.
pub async fn finish_sign_in(
    state: &AppState,
    session: Option<&ActiveSession>,
    credential: Option<&serde_json::Value>,
    remember: bool,
    client: &ClientInfo,
) -> Result<(UserRecord, NewSession), PasskeyError> {
    relying_party(state)?;
    let credential = credential.filter(|c| !c.is_null()).ok_or_else(|| {
        PasskeyError::Validation(FieldErrors::single(
            "credential",
            "Send the browser's answer (AuthenticationResponseJSON) as credential.",
        ))
    })?;
    let outcome = sign_in(state, session, credential, remember, client).await;
    let label = match &outcome {
        Ok(_) => "success_passkey",
        Err(PasskeyError::Refused(_)) => "invalid_credentials",
        Err(PasskeyError::Locked) => "locked",
        Err(PasskeyError::EmailUnverified) => "email_unverified",
        Err(_) => "error",
    };
    metrics::counter!("latch_sign_ins_total", "outcome" => label).increment(1);
    match &outcome {
        Ok((user, _)) => {
            let detail = "method=passkey";
            audit::record(
                state,
                Event::SignIn,
                Subject::user(user.id, &user.username),
                client,
                "success",
                Some(detail),
            )
            .await;
        }
        Err(PasskeyError::Refused(reason)) => {
            tracing::info!(reason = %reason, "passkey sign-in refused");
            let detail = format!("method=passkey {reason}");
            audit::record(
                state,
                Event::SignIn,
                Subject::default(),
                client,
                "invalid_credentials",
                Some(&detail),
            )
            .await;
        }
        Err(_) => {}
    }
    outcome
}

async fn sign_in(
    state: &AppState,
    session: Option<&ActiveSession>,
    credential: &serde_json::Value,
    remember: bool,
    client: &ClientInfo,
) -> Result<(UserRecord, NewSession), PasskeyError> {
    let rp = relying_party(state)?;
    let refused = |reason: &str| PasskeyError::Refused(reason.to_owned());
    let response: PublicKeyCredential = serde_json::from_value(credential.clone())
        .map_err(|e| refused(&format!("malformed response: {e}")))?;
    let challenge = ceremony::challenge_of(response.response.client_data_json.as_ref())
        .ok_or_else(|| refused("no challenge in the client data"))?;
    let ceremony = store::take_ceremony(&state.db, &challenge, Purpose::SignIn)
        .await?
        .ok_or_else(|| refused("unknown or already used challenge"))?;
    let now = state.clock.now();
    if ceremony.expires_at < now {
        return Err(refused("ceremony expired"));
    }
    let passkey = store::find_by_credential_id(&state.db, response.raw_id.as_ref())
        .await?
        .ok_or_else(|| refused("unknown passkey"))?;
    let pending = session.and_then(|s| s.pending(now));
    match (&response.response.user_handle, pending) {
        (Some(handle), _) if handle.as_slice() != passkey.user_handle.as_slice() => {
            return Err(refused("user handle does not match the passkey"));
        }
        // Nothing named the user before the ceremony: the authenticator must (WebAuthn §7.2).
        (None, None) => return Err(refused("no user handle")),
        _ => {}
    }
    let authentication: AuthenticationState = serde_json::from_str(&ceremony.state)
        .map_err(|e| refused(&format!("stored state unreadable: {e}")))?;
    let mut stored: Credential = serde_json::from_str(&passkey.credential)
        .map_err(|e| refused(&format!("stored passkey unreadable: {e}")))?;
    stored.counter = u32::try_from(passkey.sign_count).unwrap_or(u32::MAX);
    let result = rp
        .authenticate_single_credential(&response, &authentication, &stored)
        .map_err(|e| refused(&e.to_string()))?;
    let counter = i64::from(result.counter()).max(passkey.sign_count);
    if !store::record_use(&state.db, passkey.id, passkey.sign_count, counter, now).await? {
        return Err(refused("signature counter already used"));
    }
    let user = users::find_by_id(&state.db, passkey.user_id)
        .await?
        .ok_or_else(|| refused("owner gone"))?;
    let factor = if result.user_verified() {
        Factor::Passkey
    } else {
        Factor::SecurityKey
    };
    let waiting = session.and_then(|s| crate::mfa::waiting(state, s, now));
    let (factors, remember) = match waiting {
        Some(pending) if !pending.step_up => {
            if pending.user_id != user.id {
                return Err(refused("passkey of another user than the pending sign-in"));
            }
            if !pending.still_valid(&user) {
                return Err(refused("credentials changed since the password step"));
            }
            let factors = pending
                .with(factor, now)
                .ok_or_else(|| refused("factor already proved"))?;
            (factors, pending.remember())
        }
        // A step-up: the signed-in user's own passkey adds its factor to their session's
        // (a password and a key without user verification make two), unless the session
        // was made by this same factor. Anyone else's passkey signs its owner in instead.
        step_up => match step_up
            .filter(|w| w.still_valid(&user))
            .and_then(|w| Some((w.with(factor, now)?, w.remember())))
        {
            Some(added) => added,
            None => {
                // Without user verification a passkey is one factor (possession): it cannot
                // be the whole sign-in of an account whose password must be followed by a
                // second step (TOTP on, or a `require_mfa_roles` role with a passkey as its
                // factor).
                if factor == Factor::SecurityKey && crate::mfa::second_step_required(state, &user) {
                    return Err(refused(
                        "no user verification, and the account has a second factor",
                    ));
                }
                (Factors::one(factor, now), remember)
            }
        },
    };
    if user.locked {
        return Err(PasskeyError::Locked);
    }
    if state.config.require_verified_email && !user.email_verified {
        account::resend_after_refused_sign_in(state, &user)
            .await
            .map_err(PasskeyError::Store)?;
        return Err(PasskeyError::EmailUnverified);
    }
    // A completed sign-in clears the account's count of failures, as after a second step.
    let account_key = throttle::user_key(user.id);
    let release = crate::store::throttle::Release {
        ids: &[],
        clear: Some(&account_key),
    };
    let gen = (user.id, user.credential_gen);
    if !users::record_sign_in(&state.db, gen, now, None, &release).await? {
        return Err(refused("credentials changed during the sign-in"));
    }
    let new = sessions::start_with(state, Some(&user), &factors, remember, client, session).await?;
    Ok((user, new))
}

// ---- The list ----

/// The user's passkeys, oldest first.
pub async fn list(state: &AppState, user: &AuthUser) -> Result<Vec<PasskeyRecord>, StoreError> {
    store::list(&state.db, user.id).await
}

/// Renames passkey `id` of `user`.
pub async fn rename(
    state: &AppState,
    user: &AuthUser,
    id: i64,
    name: Option<&str>,
    client: &ClientInfo,
) -> Result<PasskeyRecord, PasskeyError> {
    let name = ceremony::name(name).map_err(PasskeyError::Validation)?;
    let record = store::rename(&state.db, user.id, id, &name)
        .await?
        .ok_or(PasskeyError::NotFound)?;
    audited(
        state,
        user,
        Event::PasskeyRename,
        &format!("passkey={id}"),
        client,
    )
    .await;
    Ok(record)
}

/// Removes passkey `id` of `user` (another user's is [`PasskeyError::NotFound`]). Audited;
/// the owner gets a notice.
pub async fn remove(
    state: &AppState,
    user: &AuthUser,
    id: i64,
    client: &ClientInfo,
) -> Result<(), PasskeyError> {
    if !store::delete(&state.db, user.id, id).await? {
        return Err(PasskeyError::NotFound);
    }
    audited(
        state,
        user,
        Event::PasskeyRemove,
        &format!("passkey={id}"),
        client,
    )
    .await;
    account::notify(
        state,
        user,
        "A passkey was removed from your account",
        "A passkey was removed from your account and can no longer sign you in. If this was \
         not you, change your password and review your passkeys on the security page.",
    )
    .await;
    Ok(())
}

/// The audit row of a successful change to `user`'s passkeys.
async fn audited(
    state: &AppState,
    user: &AuthUser,
    event: Event,
    detail: &str,
    client: &ClientInfo,
) {
    let subject = Subject::user(user.id, &user.username);
    audit::record(state, event, subject, client, "success", Some(detail)).await;
}

/// A passkey as the API shows it: `{"id", "name", "created_at", "last_used_at"}`.
pub fn to_json(record: &PasskeyRecord) -> serde_json::Value {
    let time = |at: Timestamp| crate::clock::rfc3339(at);
    serde_json::json!({
        "id": record.id,
        "name": record.name,
        "created_at": time(record.created_at),
        "last_used_at": record.last_used_at.map(time),
    })
}
