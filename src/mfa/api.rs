//! The JSON API of the second factor under `/api/auth/mfa`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use crate::mfa;
use crate::state::AppState;
use crate::user::AuthUser;
use crate::web::error::{axum_json, ApiError};
use crate::web::extract::{with_session, Client, RequireUser};
use crate::web::input::Input;
use crate::web::openapi::{CsrfHeader, ErrorBody, UserEnvelope};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/mfa", get(status).post(second_step))
        .route("/api/auth/mfa/totp/setup", post(setup))
        .route("/api/auth/mfa/totp/confirm", post(confirm))
        .route("/api/auth/mfa/totp/disable", post(disable))
        .route("/api/auth/mfa/recovery-codes", post(recovery_codes))
}

type ApiResult = Result<Response, ApiError>;

/// `{"current_password"}`.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct PasswordInput {
    /// The account's current password.
    pub current_password: Option<String>,
}

/// `{"code"}` (a TOTP code; spaces and dashes are ignored).
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct CodeInput {
    /// Six digits from the authenticator app.
    pub code: Option<String>,
}

/// `{"code"}` or `{"recovery_code"}`, for the second step of a sign-in.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct SecondStepInput {
    /// Six digits from the authenticator app (a recovery code is accepted here too).
    pub code: Option<String>,
    /// One of the recovery codes.
    pub recovery_code: Option<String>,
    /// Where a page sign-in goes next.
    pub next: Option<String>,
}

/// `{"current_password", "code"}`.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct DisableInput {
    /// The account's current password.
    pub current_password: Option<String>,
    /// A TOTP code or a recovery code.
    pub code: Option<String>,
}

/// `{"secret", "otpauth_url"}`.
#[derive(Debug, utoipa::ToSchema)]
pub struct SetupJson {
    /// The secret in base32 (shown until confirmation only).
    pub secret: String,
    /// `otpauth://totp/latch:<username>?secret=…&issuer=latch&algorithm=SHA1&digits=6&period=30`.
    pub otpauth_url: String,
}

/// `{"recovery_codes": [...]}`.
#[derive(Debug, utoipa::ToSchema)]
pub struct RecoveryCodesJson {
    /// Ten single-use codes, shown this once.
    pub recovery_codes: Vec<String>,
}

/// `{"mfa_required": true, "methods": [...]}`.
#[derive(Debug, utoipa::ToSchema)]
pub struct MfaRequiredJson {
    /// Always `true`.
    pub mfa_required: bool,
    /// `totp`, `recovery_code`.
    pub methods: Vec<String>,
}

/// `GET /api/auth/mfa`.
#[utoipa::path(
    get, path = "/api/auth/mfa", tag = "mfa", security(("session" = []), ("bearer" = [])),
    responses((status = 200, description = "The caller's second factors.", body = mfa::Status)),
)]
pub(crate) async fn status(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
) -> ApiResult {
    let status = mfa::status(&state, &user).await?;
    Ok(axum_json(&json!({
        "totp": status.totp,
        "recovery_codes_left": status.recovery_codes_left,
        "passkeys": status.passkeys,
    })))
}

/// `POST /api/auth/mfa`: the second step of a sign-in, or a step-up of a signed-in session
/// that lacks a second factor its user has ([`mfa::waiting`]).
#[utoipa::path(
    post, path = "/api/auth/mfa", tag = "mfa", params(CsrfHeader),
    request_body(content((SecondStepInput = "application/json"), (SecondStepInput = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Signed in under a new session id (for a step-up: the session's factors plus this one).", body = UserEnvelope, headers(("X-CSRF-Token" = String, description = "The CSRF token of the new session."), ("Set-Cookie" = String, description = "The new session cookie."))),
        (status = 401, description = "`invalid_code`: wrong, used or malformed code; `mfa_not_pending`: no sign-in waiting for a second factor (or older than 5 minutes), and no signed-in session lacking one the user has.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: no code, or one over 64 characters.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many wrong codes or passwords for the account.", body = ErrorBody, headers(("Retry-After" = i64, description = "Seconds to wait."))),
    ),
)]
pub(crate) async fn second_step(
    State(state): State<AppState>,
    Client(client): Client,
    input: Input<SecondStepInput>,
) -> ApiResult {
    let Input { data, session } = input;
    let (user, new) = mfa::complete_sign_in(
        &state,
        session.as_ref(),
        data.code.as_deref(),
        data.recovery_code.as_deref(),
        &client,
    )
    .await?;
    let body = axum_json(&json!({ "user": AuthUser::from(&user).to_json() }));
    Ok(with_session(body, &new))
}

/// `POST /api/auth/mfa/totp/setup`.
#[utoipa::path(
    post, path = "/api/auth/mfa/totp/setup", tag = "mfa", params(CsrfHeader), security(("session" = []), ("bearer" = [])),
    request_body(content((PasswordInput = "application/json"), (PasswordInput = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "A new secret, not on until confirmed (a new setup replaces an unconfirmed one).", body = SetupJson),
        (status = 401, description = "`invalid_credentials`: wrong current password.", body = ErrorBody),
        (status = 409, description = "`mfa_already_enabled`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `current_password` missing.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`.", body = ErrorBody),
    ),
)]
pub(crate) async fn setup(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    input: Input<PasswordInput>,
) -> ApiResult {
    let setup = mfa::set_up(
        &state,
        &user,
        input.data.current_password.as_deref(),
        &client,
    )
    .await?;
    Ok(axum_json(
        &json!({ "secret": setup.secret, "otpauth_url": setup.otpauth_url }),
    ))
}

/// `POST /api/auth/mfa/totp/confirm`.
#[utoipa::path(
    post, path = "/api/auth/mfa/totp/confirm", tag = "mfa", params(CsrfHeader), security(("session" = []), ("bearer" = [])),
    request_body(content((CodeInput = "application/json"), (CodeInput = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "TOTP is on; the recovery codes are shown this once. Every other session ended; the current one is re-issued under a new id.", body = RecoveryCodesJson, headers(("X-CSRF-Token" = String, description = "The CSRF token of the new session."), ("Set-Cookie" = String, description = "The new session cookie."))),
        (status = 401, description = "`invalid_code`.", body = ErrorBody),
        (status = 409, description = "`mfa_already_enabled`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `code` missing or over 64 characters.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`.", body = ErrorBody),
    ),
)]
pub(crate) async fn confirm(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    input: Input<CodeInput>,
) -> ApiResult {
    let Input { data, session } = input;
    let enabled = mfa::confirm(
        &state,
        &user,
        session.as_ref(),
        data.code.as_deref(),
        &client,
    )
    .await?;
    let body = axum_json(&json!({ "recovery_codes": enabled.recovery_codes }));
    Ok(match &enabled.session {
        Some(new) => with_session(body, new),
        None => body,
    })
}

/// `POST /api/auth/mfa/recovery-codes`.
#[utoipa::path(
    post, path = "/api/auth/mfa/recovery-codes", tag = "mfa", params(CsrfHeader), security(("session" = []), ("bearer" = [])),
    request_body(content((PasswordInput = "application/json"), (PasswordInput = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Ten new codes; the old ones no longer work.", body = RecoveryCodesJson),
        (status = 401, description = "`invalid_credentials`.", body = ErrorBody),
        (status = 409, description = "`mfa_not_enabled`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`.", body = ErrorBody),
    ),
)]
pub(crate) async fn recovery_codes(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    input: Input<PasswordInput>,
) -> ApiResult {
    let codes = mfa::regenerate_codes(
        &state,
        &user,
        input.data.current_password.as_deref(),
        &client,
    )
    .await?;
    Ok(axum_json(&json!({ "recovery_codes": codes })))
}

/// `POST /api/auth/mfa/totp/disable`.
#[utoipa::path(
    post, path = "/api/auth/mfa/totp/disable", tag = "mfa", params(CsrfHeader), security(("session" = []), ("bearer" = [])),
    request_body(content((DisableInput = "application/json"), (DisableInput = "application/x-www-form-urlencoded"))),
    responses(
        (status = 204, description = "The second factor and the recovery codes are gone."),
        (status = 401, description = "`invalid_credentials` (password) or `invalid_code`.", body = ErrorBody),
        (status = 409, description = "`mfa_not_enabled`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: every missing field.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`.", body = ErrorBody),
    ),
)]
pub(crate) async fn disable(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    input: Input<DisableInput>,
) -> ApiResult {
    let data = &input.data;
    mfa::disable(
        &state,
        &user,
        data.current_password.as_deref(),
        data.code.as_deref(),
        &client,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
