//! The JSON API of passkeys under `/api/auth/passkeys`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde_json::json;

use crate::passkeys;
use crate::state::AppState;
use crate::user::AuthUser;
use crate::web::error::{axum_json, ApiError};
use crate::web::extract::{with_session, Client, RequireUser};
use crate::web::input::{Input, NoFields};
use crate::web::openapi::{CsrfHeader, ErrorBody, UserEnvelope};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/passkeys", get(list))
        .route("/api/auth/passkeys/{id}", delete(remove).patch(rename))
        .route("/api/auth/passkeys/register/start", post(register_start))
        .route("/api/auth/passkeys/register/finish", post(register_finish))
        .route("/api/auth/passkeys/login/start", post(login_start))
        .route("/api/auth/passkeys/login/finish", post(login_finish))
}

type ApiResult = Result<Response, ApiError>;

/// `{"current_password"}`, which may be left out right after a passkey sign-in.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct RegisterStartInput {
    /// The account's current password (not needed within 5 minutes of a passkey sign-in).
    pub current_password: Option<String>,
}

/// `{"name", "credential"}`.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct RegisterFinishInput {
    /// What to call the passkey (default "Passkey"; at most 64 characters).
    pub name: Option<String>,
    /// The browser's `RegistrationResponseJSON` (`credential.toJSON()`).
    #[schema(value_type = Object)]
    pub credential: Option<serde_json::Value>,
}

/// `{"credential", "remember_me"?}`.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct LoginFinishInput {
    /// The browser's `AuthenticationResponseJSON` (`credential.toJSON()`).
    #[schema(value_type = Object)]
    pub credential: Option<serde_json::Value>,
    /// Keep the session for 30 days (a pending sign-in keeps what its password step asked).
    #[serde(default, deserialize_with = "crate::domain::flex_bool")]
    pub remember_me: Option<bool>,
}

/// `{"name"}`.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct RenameInput {
    /// The new name (at most 64 characters).
    pub name: Option<String>,
}

/// A registered passkey.
#[derive(Debug, utoipa::ToSchema)]
pub struct PasskeyJson {
    /// Its id (for renaming and removing).
    pub id: i64,
    /// The name its owner gave it.
    pub name: String,
    /// When it was added (RFC 3339).
    pub created_at: String,
    /// When it last signed in (RFC 3339), or `null`.
    pub last_used_at: Option<String>,
}

/// `{"passkey": …}`.
#[derive(Debug, utoipa::ToSchema)]
pub struct PasskeyEnvelope {
    /// The passkey.
    pub passkey: PasskeyJson,
}

/// `{"passkeys": [...]}`.
#[derive(Debug, utoipa::ToSchema)]
pub struct PasskeyList {
    /// The caller's passkeys, oldest first.
    pub passkeys: Vec<PasskeyJson>,
}

/// `{"publicKey": …}`: WebAuthn options in their JSON form (binary fields base64url).
#[derive(Debug, utoipa::ToSchema)]
pub struct OptionsJson {
    /// `PublicKeyCredentialCreationOptionsJSON` or `PublicKeyCredentialRequestOptionsJSON`.
    #[schema(value_type = Object, rename = "publicKey")]
    pub public_key: serde_json::Value,
}

fn options_json<T: serde::Serialize>(options: &T) -> Response {
    axum_json(&serde_json::to_value(options).unwrap_or_default())
}

/// `GET /api/auth/passkeys`.
#[utoipa::path(
    get, path = "/api/auth/passkeys", tag = "passkeys", security(("session" = []), ("bearer" = [])),
    responses((status = 200, description = "The caller's passkeys, oldest first.", body = PasskeyList)),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
) -> ApiResult {
    let passkeys = passkeys::list(&state, &user).await?;
    let list: Vec<_> = passkeys.iter().map(passkeys::to_json).collect();
    Ok(axum_json(&json!({ "passkeys": list })))
}

/// `POST /api/auth/passkeys/register/start`.
#[utoipa::path(
    post, path = "/api/auth/passkeys/register/start", tag = "passkeys", params(CsrfHeader), security(("session" = [])),
    request_body(content((RegisterStartInput = "application/json"))),
    responses(
        (status = 200, description = "Creation options for `navigator.credentials.create` (resident key required, user verification preferred, the caller's passkeys excluded); finish within 5 minutes.", body = OptionsJson),
        (status = 401, description = "`invalid_credentials`: wrong current password; `unauthenticated`.", body = ErrorBody),
        (status = 404, description = "`passkeys_unavailable`: `public_url` has an IP address as its host.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `current_password` missing.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`.", body = ErrorBody),
    ),
)]
pub(crate) async fn register_start(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    input: Input<RegisterStartInput>,
) -> ApiResult {
    let Input { data, session } = input;
    let options = passkeys::start_registration(
        &state,
        &user,
        session.as_ref(),
        data.current_password.as_deref(),
        &client,
    )
    .await?;
    Ok(options_json(&options))
}

/// `POST /api/auth/passkeys/register/finish`.
#[utoipa::path(
    post, path = "/api/auth/passkeys/register/finish", tag = "passkeys", params(CsrfHeader), security(("session" = [])),
    request_body(content((RegisterFinishInput = "application/json"))),
    responses(
        (status = 201, description = "The passkey is registered. When it is the second factor a `require_mfa_roles` role needs (no TOTP), the caller's other sessions end and this one is re-issued under a new id (`Set-Cookie`, `X-CSRF-Token`), as at TOTP confirmation.", body = PasskeyEnvelope, headers(("X-CSRF-Token" = String, description = "The CSRF token of the re-issued session, when it was re-issued."))),
        (status = 400, description = "`invalid_credential`: a malformed, replayed, expired, other-origin or other-site response, or a passkey registered already.", body = ErrorBody),
        (status = 404, description = "`passkeys_unavailable`: `public_url` has an IP address as its host.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `credential` missing or `name` too long.", body = ErrorBody),
    ),
)]
pub(crate) async fn register_finish(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    input: Input<RegisterFinishInput>,
) -> ApiResult {
    let Input { data, session } = input;
    let registered = passkeys::finish_registration(
        &state,
        &user,
        session.as_ref(),
        data.name.as_deref(),
        data.credential.as_ref(),
        &client,
    )
    .await?;
    let body = json!({ "passkey": passkeys::to_json(&registered.passkey) });
    let response = (StatusCode::CREATED, axum_json(&body)).into_response();
    Ok(match &registered.session {
        Some(new) => with_session(response, new),
        None => response,
    })
}

/// `PATCH /api/auth/passkeys/{id}`.
#[utoipa::path(
    patch, path = "/api/auth/passkeys/{id}", tag = "passkeys", params(CsrfHeader, ("id" = i64, Path, description = "The passkey's id.")),
    request_body(content((RenameInput = "application/json"))),
    responses(
        (status = 200, description = "The passkey with its new name.", body = PasskeyEnvelope),
        (status = 404, description = "`not_found`: the caller has no such passkey.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `name` too long.", body = ErrorBody),
    ),
)]
pub(crate) async fn rename(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    Path(id): Path<String>,
    input: Input<RenameInput>,
) -> ApiResult {
    let id = crate::web::view::parse_id(&id)?;
    let record = passkeys::rename(&state, &user, id, input.data.name.as_deref(), &client).await?;
    Ok(axum_json(&json!({ "passkey": passkeys::to_json(&record) })))
}

/// `DELETE /api/auth/passkeys/{id}`.
#[utoipa::path(
    delete, path = "/api/auth/passkeys/{id}", tag = "passkeys", params(CsrfHeader, ("id" = i64, Path, description = "The passkey's id.")),
    responses(
        (status = 204, description = "Removed."),
        (status = 404, description = "`not_found`: the caller has no such passkey (another user's is not found either).", body = ErrorBody),
    ),
)]
pub(crate) async fn remove(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    Path(id): Path<String>,
    _input: Input<NoFields>,
) -> ApiResult {
    let id = crate::web::view::parse_id(&id)?;
    passkeys::remove(&state, &user, id, &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/auth/passkeys/login/start`.
#[utoipa::path(
    post, path = "/api/auth/passkeys/login/start", tag = "passkeys", params(CsrfHeader),
    request_body(content((NoFields = "application/json")), description = "Empty."),
    responses(
        (status = 200, description = "Request options for `navigator.credentials.get` with an empty `allowCredentials` (discoverable passkeys); finish within 5 minutes.", body = OptionsJson),
        (status = 404, description = "`passkeys_unavailable`: `public_url` has an IP address as its host.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many sign-ins started from this client IP in the last minute (`throttle_ip_passkey_starts_per_minute`); retry after `Retry-After` seconds.", body = ErrorBody, headers(("Retry-After" = i64, description = "Seconds to wait."))),
    ),
)]
pub(crate) async fn login_start(
    State(state): State<AppState>,
    Client(client): Client,
    _input: Input<NoFields>,
) -> ApiResult {
    let options = passkeys::start_sign_in(&state, &client).await?;
    Ok(options_json(&options))
}

/// `POST /api/auth/passkeys/login/finish`.
#[utoipa::path(
    post, path = "/api/auth/passkeys/login/finish", tag = "passkeys", params(CsrfHeader),
    request_body(content((LoginFinishInput = "application/json"))),
    responses(
        (status = 200, description = "Signed in under a new session id (two factors when the authenticator verified the user); in a session waiting for its second factor, the sign-in is completed.", body = UserEnvelope, headers(("X-CSRF-Token" = String, description = "The CSRF token of the new session."), ("Set-Cookie" = String, description = "The new session cookie."))),
        (status = 401, description = "`invalid_credentials`: a malformed, replayed, expired, other-origin or unknown passkey response, or another user's passkey for a pending sign-in.", body = ErrorBody),
        (status = 403, description = "`account_locked`, or `email_unverified` when verification is required.", body = ErrorBody),
        (status = 404, description = "`passkeys_unavailable`: `public_url` has an IP address as its host.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `credential` missing.", body = ErrorBody),
    ),
)]
pub(crate) async fn login_finish(
    State(state): State<AppState>,
    Client(client): Client,
    input: Input<LoginFinishInput>,
) -> ApiResult {
    let Input { data, session } = input;
    let (user, new) = passkeys::finish_sign_in(
        &state,
        session.as_ref(),
        data.credential.as_ref(),
        data.remember_me.unwrap_or(false),
        &client,
    )
    .await?;
    let body = json!({ "user": AuthUser::from(&user).to_json() });
    Ok(with_session(axum_json(&body), &new))
}
