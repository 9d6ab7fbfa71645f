//! The second factor: TOTP (RFC 6238) with single-use recovery codes, the second step of a
//! sign-in, and the roles that must have it. Shared by the pages, the JSON API, the admin
//! area and the CLI.
//!
//! A code is accepted once: a TOTP step is taken by a compare-and-set on the stored last step
//! and a recovery code by deleting its row, so two requests (on two processes) racing with
//! the same code get one success. Every wrong code counts as a failed sign-in on the
//! account's throttle, and the password step of a user with a second factor no longer clears
//! that count: only the completed sign-in does.

pub mod api;
pub mod gate;
pub mod pages;
pub mod qr;
pub mod recovery;
pub mod totp;

use crate::account::{self, AccountError};
use crate::audit::{self, Event, Subject};
use crate::domain::{self, CodeShape, Factor, Factors, FieldErrors, Password};
use crate::sessions::{self, ActiveSession, NewSession};
use crate::state::AppState;
use crate::store::mfa as store;
use crate::store::sessions::ClientInfo;
use crate::store::users::{self, UserRecord};
use crate::store::StoreError;
use crate::throttle::{self, Decision};
use crate::user::AuthUser;

/// Why a second-factor operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// A wrong, used or malformed code.
    #[error("invalid code")]
    InvalidCode,
    /// No sign-in is waiting for a second factor in this session (or it expired).
    #[error("no pending sign-in")]
    NotPending,
    /// The second factor is already on.
    #[error("already enabled")]
    AlreadyEnabled,
    /// The second factor is off.
    #[error("not enabled")]
    NotEnabled,
    /// No such user (an administrator's reset).
    #[error("no such user")]
    NoSuchUser,
    /// Too many failed attempts on the account or from the client.
    #[error("too many attempts")]
    Throttled {
        /// Seconds to wait.
        retry_after: i64,
    },
    /// Bad input.
    #[error("validation failed")]
    Validation(FieldErrors),
    /// The current password was wrong (or its check throttled).
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<MfaError> for crate::web::error::ApiError {
    fn from(e: MfaError) -> Self {
        use crate::web::error::ApiError;
        match e {
            MfaError::InvalidCode => ApiError::InvalidCode,
            MfaError::NotPending => ApiError::MfaNotPending,
            MfaError::AlreadyEnabled => ApiError::MfaAlreadyEnabled,
            MfaError::NotEnabled => ApiError::MfaNotEnabled,
            MfaError::NoSuchUser => ApiError::NotFound,
            MfaError::Throttled { retry_after } => ApiError::TooManyAttempts { retry_after },
            MfaError::Validation(fields) => ApiError::Validation(fields),
            MfaError::Account(e) => e.into(),
            MfaError::Store(e) => e.into(),
        }
    }
}

/// The routes: `/api/auth/mfa…`, `/login/mfa` and `/account/security`.
pub fn routes() -> axum::Router<AppState> {
    api::router().merge(pages::router())
}

fn random_failure(e: getrandom::Error) -> MfaError {
    MfaError::Store(StoreError::Unavailable(format!("no randomness: {e}")))
}

// ---- What a user types ----

/// A code as typed, checked for shape: the field it came from, and its normalised form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypedCode {
    /// Six digits from an authenticator app.
    Totp(u32),
    /// A recovery code (canonical form).
    Recovery(String),
    /// Neither: can never be right (still counted as a wrong code).
    Wrong,
}

/// Reads a second-factor code: `code` (a TOTP code, or a recovery code typed into the same
/// field) or `recovery_code`. Empty or over-long input is a field error (422); anything else
/// that is not a code is [`TypedCode::Wrong`].
pub fn read_code(
    code: Option<&str>,
    recovery_code: Option<&str>,
) -> Result<TypedCode, FieldErrors> {
    fn present(v: Option<&str>) -> Option<&str> {
        v.filter(|s| !s.trim().is_empty())
    }
    let (field, raw) = match (present(code), present(recovery_code)) {
        (Some(c), _) => ("code", c),
        (None, Some(r)) => ("recovery_code", r),
        (None, None) => return Err(FieldErrors::single("code", CodeShape::Empty.message())),
    };
    let normalized =
        domain::normalize_code(raw).map_err(|shape| FieldErrors::single(field, shape.message()))?;
    if field == "code" {
        if let Some(digits) = domain::totp_digits(&normalized) {
            return Ok(TypedCode::Totp(digits));
        }
    }
    let canonical = recovery::canonical(&normalized);
    Ok(if recovery::plausible(&canonical) {
        TypedCode::Recovery(canonical)
    } else {
        TypedCode::Wrong
    })
}

fn required_password(raw: Option<&str>, errors: &mut FieldErrors) -> Option<Password> {
    errors.check("current_password", Password::typed(raw.unwrap_or_default()))
}

/// Checks a code of user (`id`, `username`) under the account's sign-in throttle: the
/// attempt is counted first, kept when wrong and given back when right. Failures and refusals
/// are audited (without the code). Returns the factor the code proved.
pub async fn check_code(
    state: &AppState,
    (id, username): (i64, &str),
    code: &TypedCode,
    client: &ClientInfo,
) -> Result<Factor, MfaError> {
    let account_key = throttle::user_key(id);
    let ip_key = throttle::ip_key(client);
    let limits = throttle::sign_in_limits(state, &account_key, ip_key.as_deref());
    let subject = Subject::user(id, username);
    let taken = match throttle::take(state, &limits).await? {
        Decision::Allowed(taken) => taken,
        Decision::Wait(retry_after) => {
            audit::record(state, Event::MfaVerify, subject, client, "throttled", None).await;
            return Err(MfaError::Throttled { retry_after });
        }
    };
    let proved = match code {
        TypedCode::Totp(digits) => {
            let now = state.clock.now();
            match store::find(&state.db, id).await? {
                Some(t) if t.confirmed_at.is_some() => {
                    match totp::matching_step(&t.secret, *digits, now) {
                        Some(step) if store::accept_step(&state.db, id, step).await? => {
                            Some(Factor::Totp)
                        }
                        _ => None,
                    }
                }
                _ => None,
            }
        }
        TypedCode::Recovery(canonical) => {
            let hash = recovery::hash(id, canonical);
            store::use_recovery_code(&state.db, id, &hash)
                .await?
                .then_some(Factor::RecoveryCode)
        }
        TypedCode::Wrong => None,
    };
    match proved {
        Some(factor) => {
            taken.give_back(state).await?;
            Ok(factor)
        }
        None => {
            taken.keep();
            let method = match code {
                TypedCode::Recovery(_) => "method=recovery_code",
                _ => "method=totp",
            };
            audit::record(
                state,
                Event::MfaVerify,
                subject,
                client,
                "invalid_code",
                Some(method),
            )
            .await;
            Err(MfaError::InvalidCode)
        }
    }
}

// ---- Sign-in ----

/// The second-factor methods a right password must be followed by before a sign-in is
/// complete; empty when the password is enough. With TOTP on: a TOTP or recovery code, and a
/// passkey when the user has one. Without TOTP, for a holder of a `require_mfa_roles` role
/// whose second factor is a passkey: only the passkey (so the password alone never signs such
/// a user in). Everyone else: none, whatever passkeys they have.
pub fn methods(state: &AppState, user: &UserRecord) -> Vec<&'static str> {
    if second_step_required(state, user) {
        factor_methods(state, user.mfa_enabled, user.passkey_count)
    } else {
        Vec::new()
    }
}

/// Every second factor a user can prove here: a TOTP or recovery code when TOTP is on, a
/// passkey when they have one that can sign in.
fn factor_methods(state: &AppState, mfa_enabled: bool, passkey_count: i64) -> Vec<&'static str> {
    let mut methods = Vec::new();
    if mfa_enabled {
        methods.extend(["totp", "recovery_code"]);
    }
    if has_usable_passkey(state, passkey_count) {
        methods.push("passkey");
    }
    methods
}

/// Whether a right password must be followed by a second step ([`methods`] is not empty),
/// without listing the methods: TOTP, or a passkey of a `require_mfa_roles` holder.
pub fn second_step_required(state: &AppState, user: &UserRecord) -> bool {
    user.mfa_enabled
        || (has_usable_passkey(state, user.passkey_count)
            && role_requires_second_factor(state, &AuthUser::from(user)))
}

/// Whether `user` has a second factor at all (TOTP, or a passkey that can sign in here),
/// whether or not their password sign-in asks for it: a signed-in session made without one
/// can add it on the second step's page ([`waiting`]).
pub fn has_second_factor(state: &AppState, user: &AuthUser) -> bool {
    user.mfa_enabled || has_usable_passkey(state, user.passkey_count)
}

/// Whether a user with `passkey_count` passkeys has one that can sign in here (passkeys are
/// on and they have one). The count comes with the user or session row
/// (`users.passkey_count`, kept with the passkey rows), so no request counts the rows.
fn has_usable_passkey(state: &AppState, passkey_count: i64) -> bool {
    state.relying_party.is_ok() && passkey_count > 0
}

/// Whether `user` holds a role of `require_mfa_roles`.
fn role_requires_second_factor(state: &AppState, user: &AuthUser) -> bool {
    state
        .config
        .require_mfa_roles
        .iter()
        .any(|role| user.has_role(role))
}

/// After a right password for a user with a second factor: the session is rotated into a
/// pending one (not signed in) that only [`complete_sign_in`] accepts, for 5 minutes.
pub async fn begin_sign_in(
    state: &AppState,
    user: &UserRecord,
    remember: bool,
    client: &ClientInfo,
    previous: Option<&ActiveSession>,
) -> Result<NewSession, StoreError> {
    sessions::start_pending(state, user, remember, client, previous).await
}

/// What a session may take the second step for, and what it has proved so far.
#[derive(Debug, Clone)]
pub struct Waiting {
    /// The user who takes it.
    pub user_id: i64,
    /// Whether it adds a factor to a signed-in session (a step-up) rather than completing a
    /// pending sign-in.
    pub step_up: bool,
    credential_gen: i64,
    factors: Factors,
    remember: bool,
}

impl Waiting {
    /// The methods the second step offers `user` (the one [`Self::user_id`] names, as stored
    /// now): for a pending sign-in what its password step asked for ([`methods`]); for a
    /// step-up every second factor the user has. Empty when nothing can complete it, e.g.
    /// after a second-factor reset.
    pub fn methods(&self, state: &AppState, user: &UserRecord) -> Vec<&'static str> {
        if self.step_up {
            factor_methods(state, user.mfa_enabled, user.passkey_count)
        } else {
            methods(state, user)
        }
    }

    /// The factors of the session that completes it: those proved so far and `factor`, now;
    /// `None` when `factor` was already proved (the same key twice is still one factor).
    pub fn with(&self, factor: Factor, now: crate::clock::Timestamp) -> Option<Factors> {
        self.factors
            .proven_at(factor)
            .is_none()
            .then(|| self.factors.clone().and(factor, now))
    }

    /// Whether the session may still complete it for `user` as stored now: no reset, lock or
    /// credential change since it was made.
    pub fn still_valid(&self, user: &UserRecord) -> bool {
        user.id == self.user_id && user.credential_gen == self.credential_gen && !user.locked
    }

    /// "Remember me" for the session that completes it.
    pub fn remember(&self) -> bool {
        self.remember
    }
}

/// The second step `session` may take at `now`: completing its pending sign-in (a right
/// password, at most [`sessions::PENDING_TTL`] ago), or a step-up of a signed-in session made
/// without a second factor whose user has one ([`has_second_factor`]), such as a session from
/// before a `two_factor` rule or a passkey sign-in without user verification. Without a
/// step-up, forward-auth's redirect to the second step would send such a session round in a
/// loop (`/login/mfa` → `/login` → the protected URL).
pub fn waiting(
    state: &AppState,
    session: &ActiveSession,
    now: crate::clock::Timestamp,
) -> Option<Waiting> {
    if let Some(pending) = session.pending(now) {
        return Some(Waiting {
            user_id: pending.user_id,
            step_up: false,
            credential_gen: pending.credential_gen,
            factors: Factors::one(Factor::Password, pending.since),
            remember: pending.remember,
        });
    }
    let user = session.user()?;
    let factors = session.factors();
    (!factors.two_factor() && has_second_factor(state, &user)).then(|| Waiting {
        user_id: user.id,
        step_up: true,
        credential_gen: session.credential_gen(),
        factors,
        remember: session.remember(),
    })
}

/// The second step: checks the code against what `session` is waiting for ([`waiting`]) and,
/// when right, starts the signed-in session (a new id) made by the factors proved before and
/// this one: the password and the code for a pending sign-in, the session's factors and the
/// code for a step-up.
pub async fn complete_sign_in(
    state: &AppState,
    session: Option<&ActiveSession>,
    code: Option<&str>,
    recovery_code: Option<&str>,
    client: &ClientInfo,
) -> Result<(UserRecord, NewSession), MfaError> {
    let now = state.clock.now();
    let waiting = session
        .and_then(|s| waiting(state, s, now))
        .ok_or(MfaError::NotPending)?;
    let typed = read_code(code, recovery_code).map_err(MfaError::Validation)?;
    let user = users::find_by_id(&state.db, waiting.user_id)
        .await?
        .ok_or(MfaError::NotPending)?;
    // A reset, lock or second-factor reset since the password step (or the session) ends it.
    if !waiting.still_valid(&user) || waiting.methods(state, &user).is_empty() {
        return Err(MfaError::NotPending);
    }
    // A user whose second factor is a passkey has no code to check: any code is wrong (and
    // counted as such below).
    let factor = check_code(state, (user.id, &user.username), &typed, client).await?;
    throttle::clear(state, &throttle::user_key(user.id)).await?;
    // A code proves TOTP or a recovery code, which a session lacking a second factor cannot
    // have proved already.
    let factors = waiting.with(factor, now).ok_or(MfaError::NotPending)?;
    let new = sessions::start_with(
        state,
        Some(&user),
        &factors,
        waiting.remember(),
        client,
        session,
    )
    .await?;
    let detail = if waiting.step_up {
        format!("second_factor={} step_up", factor.as_str())
    } else {
        format!("second_factor={}", factor.as_str())
    };
    audit::record(
        state,
        Event::SignIn,
        Subject::user(user.id, &user.username),
        client,
        "success",
        Some(&detail),
    )
    .await;
    let outcome = if waiting.step_up {
        "success_step_up"
    } else {
        "success_mfa"
    };
    metrics::counter!("latch_sign_ins_total", "outcome" => outcome).increment(1);
    Ok((user, new))
}

// ---- Enrolment ----

/// A secret set up and waiting for its first code.
pub struct Setup {
    /// The secret in base32, for typing into an app.
    pub secret: String,
    /// The `otpauth://` URL (what the QR code holds).
    pub otpauth_url: String,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Setup(…)")
    }
}

/// Sets up a new TOTP secret after checking the current password (counted like a sign-in);
/// it replaces an unconfirmed one and is not on until [`confirm`].
pub async fn set_up(
    state: &AppState,
    user: &AuthUser,
    current_password: Option<&str>,
    client: &ClientInfo,
) -> Result<Setup, MfaError> {
    let mut errors = FieldErrors::new();
    let password = required_password(current_password, &mut errors);
    let password = errors
        .into_result(|| password)
        .map_err(MfaError::Validation)?;
    if user.mfa_enabled {
        return Err(MfaError::AlreadyEnabled);
    }
    account::check_current_password(state, user, &password, client).await?;
    let mut secret = [0u8; totp::SECRET_BYTES];
    getrandom::fill(&mut secret).map_err(random_failure)?;
    if !store::set_up(&state.db, user.id, &secret, state.clock.now()).await? {
        return Err(MfaError::AlreadyEnabled);
    }
    let subject = Subject::user(user.id, &user.username);
    audit::record(state, Event::MfaSetup, subject, client, "success", None).await;
    Ok(Setup {
        secret: totp::base32_encode(&secret),
        otpauth_url: totp::otpauth_url(&user.username, &secret),
    })
}

/// The secret of an unconfirmed setup, if `shown` (what a form posts back) is it: lets the
/// setup page show the secret again after a mistyped code, to the one who already has it.
pub async fn unconfirmed_secret(
    state: &AppState,
    user: &AuthUser,
    shown: &str,
) -> Result<Option<Setup>, StoreError> {
    let Some(record) = store::find(&state.db, user.id).await? else {
        return Ok(None);
    };
    let Some(typed) = totp::base32_decode(shown) else {
        return Ok(None);
    };
    if record.confirmed_at.is_some()
        || !bool::from(subtle::ConstantTimeEq::ct_eq(
            typed.as_slice(),
            record.secret.as_slice(),
        ))
    {
        return Ok(None);
    }
    Ok(Some(Setup {
        secret: totp::base32_encode(&record.secret),
        otpauth_url: totp::otpauth_url(&user.username, &record.secret),
    }))
}

/// TOTP turned on: the recovery codes (shown this once) and, when the request came with a
/// session, its replacement.
pub struct Enabled {
    /// The ten recovery codes.
    pub recovery_codes: Vec<String>,
    /// The re-issued session (every other one ended).
    pub session: Option<NewSession>,
}

/// Confirms the set-up secret with a first code: TOTP is on, recovery codes are drawn, every
/// session of the user ends and the current one (if any) is re-issued under a new id, made by
/// its factors plus TOTP. Audited, and the owner gets a notice by mail.
pub async fn confirm(
    state: &AppState,
    user: &AuthUser,
    session: Option<&ActiveSession>,
    code: Option<&str>,
    client: &ClientInfo,
) -> Result<Enabled, MfaError> {
    let digits = match read_code(code, None).map_err(MfaError::Validation)? {
        TypedCode::Totp(digits) => Some(digits),
        _ => None,
    };
    if user.mfa_enabled {
        return Err(MfaError::AlreadyEnabled);
    }
    let account_key = throttle::user_key(user.id);
    let ip_key = throttle::ip_key(client);
    let limits = throttle::sign_in_limits(state, &account_key, ip_key.as_deref());
    let taken = match throttle::take(state, &limits).await? {
        Decision::Allowed(taken) => taken,
        Decision::Wait(retry_after) => return Err(MfaError::Throttled { retry_after }),
    };
    let now = state.clock.now();
    let step = match (store::find(&state.db, user.id).await?, digits) {
        (Some(t), Some(digits)) if t.confirmed_at.is_none() => {
            totp::matching_step(&t.secret, digits, now)
        }
        _ => None,
    };
    let codes = recovery::generate(user.id).map_err(random_failure)?;
    let confirmed = match step {
        Some(step) => store::confirm(&state.db, user.id, step, &codes.hashes, now).await?,
        None => None,
    };
    let subject = Subject::user(user.id, &user.username);
    let Some(confirmed) = confirmed else {
        taken.keep();
        audit::record(
            state,
            Event::MfaEnable,
            subject,
            client,
            "invalid_code",
            None,
        )
        .await;
        return Err(MfaError::InvalidCode);
    };
    taken.give_back(state).await?;
    let session =
        sessions::reissue_with_factor(state, user.id, session, Factor::Totp, client).await?;
    let detail = format!("sessions_ended={}", confirmed.sessions_ended);
    audit::record(
        state,
        Event::MfaEnable,
        subject,
        client,
        "success",
        Some(&detail),
    )
    .await;
    account::notify(
        state,
        user,
        "Two-factor authentication is on",
        "Two-factor authentication was turned on for your account: signing in now needs a code \
         from your authenticator app (or a recovery code). Your other sessions were signed out.",
    )
    .await;
    Ok(Enabled {
        recovery_codes: codes.codes,
        session,
    })
}

// ---- State and changes ----

/// What `GET /api/auth/mfa` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Status {
    /// Whether TOTP is on.
    pub totp: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: i64,
    /// Registered passkeys.
    pub passkeys: i64,
}

/// The user's second-factor state, from the database (not the session's copy).
pub async fn status(state: &AppState, user: &AuthUser) -> Result<Status, StoreError> {
    let totp = store::find(&state.db, user.id)
        .await?
        .is_some_and(|t| t.confirmed_at.is_some());
    Ok(Status {
        totp,
        recovery_codes_left: store::recovery_codes_left(&state.db, user.id).await?,
        passkeys: crate::store::passkeys::count(&state.db, user.id).await?,
    })
}

/// Replaces the recovery codes after checking the current password; the old ones die.
pub async fn regenerate_codes(
    state: &AppState,
    user: &AuthUser,
    current_password: Option<&str>,
    client: &ClientInfo,
) -> Result<Vec<String>, MfaError> {
    let mut errors = FieldErrors::new();
    let password = required_password(current_password, &mut errors);
    let password = errors
        .into_result(|| password)
        .map_err(MfaError::Validation)?;
    if !user.mfa_enabled {
        return Err(MfaError::NotEnabled);
    }
    account::check_current_password(state, user, &password, client).await?;
    let codes = recovery::generate(user.id).map_err(random_failure)?;
    let now = state.clock.now();
    if !store::replace_recovery_codes(&state.db, user.id, &codes.hashes, now).await? {
        return Err(MfaError::NotEnabled);
    }
    let subject = Subject::user(user.id, &user.username);
    audit::record(
        state,
        Event::MfaRecoveryCodes,
        subject,
        client,
        "success",
        None,
    )
    .await;
    Ok(codes.codes)
}

/// Turns the second factor off: needs the current password and a code (TOTP or recovery).
pub async fn disable(
    state: &AppState,
    user: &AuthUser,
    current_password: Option<&str>,
    code: Option<&str>,
    client: &ClientInfo,
) -> Result<(), MfaError> {
    let mut errors = FieldErrors::new();
    let password = required_password(current_password, &mut errors);
    let typed = match read_code(code, None) {
        Ok(typed) => Some(typed),
        Err(fields) => {
            errors.merge(fields);
            None
        }
    };
    let (password, typed) = errors
        .into_result(|| Some((password?, typed?)))
        .map_err(MfaError::Validation)?;
    if !user.mfa_enabled {
        return Err(MfaError::NotEnabled);
    }
    let subject = Subject::user(user.id, &user.username);
    if let Err(e) = account::check_current_password(state, user, &password, client).await {
        audit::record(
            state,
            Event::MfaDisable,
            subject,
            client,
            "failure",
            Some("wrong current password"),
        )
        .await;
        return Err(e.into());
    }
    check_code(state, (user.id, &user.username), &typed, client).await?;
    store::remove_all(&state.db, user.id, false)
        .await?
        .ok_or(MfaError::NoSuchUser)?;
    audit::record(state, Event::MfaDisable, subject, client, "success", None).await;
    account::notify(
        state,
        user,
        "Two-factor authentication is off",
        "Two-factor authentication was turned off for your account: signing in needs only the \
         password now. If this was not you, change your password and turn it on again.",
    )
    .await;
    Ok(())
}

/// What an administrator's reset did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reset {
    /// Whether a second factor was on.
    pub was_on: bool,
    /// Sessions ended.
    pub sessions_ended: u64,
}

/// Removes every second factor of user `id` (TOTP, recovery codes, passkeys) and ends all
/// of their sessions: the admin area and `latch user mfa-reset` both come here.
/// `by` names the actor in the audit row.
pub async fn reset(
    state: &AppState,
    id: i64,
    by: &str,
    client: &ClientInfo,
) -> Result<Reset, MfaError> {
    let user = users::find_by_id(&state.db, id)
        .await?
        .ok_or(MfaError::NoSuchUser)?;
    let removed = store::remove_all(&state.db, id, true)
        .await?
        .ok_or(MfaError::NoSuchUser)?;
    let detail = format!(
        "was_on={} passkeys_removed={} sessions_ended={} {by}",
        removed.was_on, removed.passkeys_removed, removed.sessions_ended
    );
    audit::record(
        state,
        Event::MfaReset,
        Subject::user(user.id, &user.username),
        client,
        "success",
        Some(&detail),
    )
    .await;
    if removed.was_on || removed.passkeys_removed > 0 {
        account::notify(
            state,
            &AuthUser::from(&user),
            "Two-factor authentication was reset",
            "An administrator removed the second factor of your account and signed out all of \
             your sessions (passkeys included). Sign in with your password and set up \
             two-factor authentication again.",
        )
        .await;
    }
    Ok(Reset {
        was_on: removed.was_on,
        sessions_ended: removed.sessions_ended,
    })
}

/// Whether `user` holds a role that requires a second factor and has none yet: neither TOTP
/// nor a passkey. A passkey counts because such a user's password sign-in then waits for it
/// ([`methods`]) and a passkey sign-in without user verification is refused on its own (see
/// `passkeys::finish_sign_in`): every way in takes two factors. Answered from `user` (the
/// passkey count of its session lookup): the middleware asks on every request.
pub fn enrollment_required(state: &AppState, user: &AuthUser) -> bool {
    !user.mfa_enabled
        && role_requires_second_factor(state, user)
        && !has_usable_passkey(state, user.passkey_count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_codes_are_classified() {
        assert_eq!(
            read_code(Some("123 456"), None),
            Ok(TypedCode::Totp(123456))
        );
        assert_eq!(
            read_code(Some("123-456"), None),
            Ok(TypedCode::Totp(123456))
        );
        assert_eq!(read_code(Some("1234567"), None), Ok(TypedCode::Wrong));
        assert_eq!(read_code(Some("abcdef"), None), Ok(TypedCode::Wrong));
        assert_eq!(
            read_code(None, Some("ABCD-EFGH-JKMN-PQRS")),
            Ok(TypedCode::Recovery("abcdefghjkmnpqrs".into()))
        );
        assert_eq!(
            read_code(Some("abcd-efgh-jkmn-pqrs"), None),
            Ok(TypedCode::Recovery("abcdefghjkmnpqrs".into()))
        );
        assert!(read_code(None, None).is_err());
        assert!(read_code(Some("  "), Some("")).is_err());
        let huge = "1".repeat(10_000);
        let fields = read_code(Some(&huge), None).unwrap_err();
        assert!(serde_json::to_string(&fields).unwrap().contains("code"));
    }
}
