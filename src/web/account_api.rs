//! The JSON API of the account lifecycle: password reset and change, email verification and
//! change, and the user's sessions.

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use super::error::{axum_json, ApiError};
use super::extract::{with_cookies, Client, RequireUser};
use super::input::{Input, NoFields, TokenInput};
use crate::account;
use crate::app::AppState;
use crate::auth::tokens::{self, NewToken};
use crate::clock::rfc3339;
use crate::sessions;
use crate::store::api_tokens::ApiTokenRecord;
use crate::store::sessions as session_store;

/// Every forgot-password answer takes at least this long, so its timing does not tell
/// whether the address has an account.
pub const FORGOT_FLOOR: Duration = Duration::from_millis(250);

/// The account-lifecycle API routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/password/forgot", post(password_forgot))
        .route("/api/auth/password/reset", post(password_reset))
        .route("/api/auth/password/change", post(password_change))
        .route("/api/auth/email/verify", post(email_verify))
        .route("/api/auth/email/resend", post(email_resend))
        .route("/api/auth/email/change", post(email_change))
        .route(
            "/api/auth/sessions",
            get(sessions_list).delete(sessions_revoke_others),
        )
        .route("/api/auth/sessions/{id}", delete(session_revoke))
        .route("/api/auth/tokens", get(tokens_list).post(token_create))
        .route("/api/auth/tokens/{id}", delete(token_revoke))
}

type ApiResult = Result<Response, ApiError>;

#[derive(Debug, Deserialize)]
struct ForgotInput {
    email: Option<String>,
}

/// `POST /api/auth/password/forgot`: 202 whether or not the address has an account.
async fn password_forgot(
    State(state): State<AppState>,
    Client(client): Client,
    TokenInput(input): TokenInput<ForgotInput>,
) -> ApiResult {
    let started = Instant::now();
    let result =
        account::forgot_password(&state, input.email.as_deref().unwrap_or_default(), &client).await;
    tokio::time::sleep(FORGOT_FLOOR.saturating_sub(started.elapsed())).await;
    result?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[derive(Debug, Deserialize)]
struct ResetInput {
    token: Option<String>,
    password: Option<String>,
}

/// `POST /api/auth/password/reset`: 204; every session of the account ends.
async fn password_reset(
    State(state): State<AppState>,
    Client(client): Client,
    TokenInput(input): TokenInput<ResetInput>,
) -> ApiResult {
    account::reset_password(
        &state,
        input.token.as_deref().unwrap_or_default(),
        input.password.as_deref().unwrap_or_default(),
        &client,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
struct ChangePasswordInput {
    current_password: Option<String>,
    new_password: Option<String>,
    /// Keep API tokens working (they are revoked by default).
    #[serde(default, deserialize_with = "crate::domain::flex_bool")]
    keep_api_tokens: Option<bool>,
}

/// `POST /api/auth/password/change`: 204 with a new session cookie; other sessions end.
async fn password_change(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    input: Input<ChangePasswordInput>,
) -> ApiResult {
    let Input { data, session } = input;
    let record = account::change_password(
        &state,
        &user,
        &account::PasswordChange {
            current: data.current_password.as_deref().unwrap_or_default(),
            new: data.new_password.as_deref().unwrap_or_default(),
            keep_api_tokens: data.keep_api_tokens.unwrap_or(false),
        },
        &client,
    )
    .await?;
    let remember = session.as_ref().is_some_and(|s| s.remember());
    let new = sessions::start(&state, Some(&record), remember, &client, None).await?;
    let mut response = with_cookies(
        StatusCode::NO_CONTENT.into_response(),
        std::slice::from_ref(&new.set_cookie),
    );
    if let Ok(token) = HeaderValue::from_str(&new.session.csrf_token()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-csrf-token"), token);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct TokenOnly {
    token: Option<String>,
}

/// `POST /api/auth/email/verify`: 204, or 400 `invalid_token`.
async fn email_verify(
    State(state): State<AppState>,
    Client(client): Client,
    TokenInput(input): TokenInput<TokenOnly>,
) -> ApiResult {
    account::verify_email(&state, input.token.as_deref().unwrap_or_default(), &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/auth/email/resend`: 202 (nothing is sent when already verified).
async fn email_resend(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    _input: Input<NoFields>,
) -> ApiResult {
    account::resend_verification(&state, &user, &client).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[derive(Debug, Deserialize)]
struct ChangeEmailInput {
    password: Option<String>,
    #[serde(alias = "new_email")]
    email: Option<String>,
}

/// `POST /api/auth/email/change`: 202; the new address takes effect once verified.
async fn email_change(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    input: Input<ChangeEmailInput>,
) -> ApiResult {
    account::change_email(
        &state,
        &user,
        input.data.password.as_deref().unwrap_or_default(),
        input.data.email.as_deref().unwrap_or_default(),
        &client,
    )
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `GET /api/auth/sessions`: the user's sessions; `id` is the public id, not the cookie.
async fn sessions_list(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    session: super::extract::MaybeSession,
) -> ApiResult {
    let current = session.0.as_ref().map(|s| s.id());
    let list =
        session_store::list_for_user(&state.db, user.id, sessions::lifetimes(&state)).await?;
    let sessions: Vec<_> = list
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "created_at": rfc3339(s.created_at),
                "last_seen_at": rfc3339(s.last_seen_at),
                "ip": s.ip,
                "user_agent": sessions::describe_user_agent(s.user_agent.as_deref()),
                "current": Some(s.id) == current,
            })
        })
        .collect();
    Ok(axum_json(&json!({ "sessions": sessions })))
}

/// `DELETE /api/auth/sessions/{id}`: 204, or 404 for an unknown id or another user's.
async fn session_revoke(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    Path(id): Path<String>,
    _input: Input<NoFields>,
) -> ApiResult {
    let id = super::view::parse_id(&id)?;
    account::revoke_session(&state, &user, id, &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /api/auth/sessions`: ends every session but the current one.
async fn sessions_revoke_others(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    input: Input<NoFields>,
) -> ApiResult {
    let keep = input.session.as_ref().map(|s| s.id());
    account::revoke_other_sessions(&state, &user, keep, &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// PRODUCT.md's `Token` object (never the secret).
fn token_json(t: &ApiTokenRecord) -> serde_json::Value {
    json!({
        "id": t.id,
        "name": t.name,
        "created_at": rfc3339(t.created_at),
        "last_used_at": t.last_used_at.map(rfc3339),
        "expires_at": t.expires_at.map(rfc3339),
    })
}

#[derive(Debug, Deserialize)]
struct TokenCreateInput {
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::domain::flex_i64")]
    expires_in_days: Option<i64>,
}

/// `POST /api/auth/tokens`: 201 with the secret, shown this once.
async fn token_create(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    input: Input<TokenCreateInput>,
) -> ApiResult {
    let new = NewToken::parse(input.data.name.as_deref(), input.data.expires_in_days)
        .map_err(ApiError::Validation)?;
    let (record, secret) = tokens::create(&state, &user, &new).await?;
    let body = json!({ "token": token_json(&record), "secret": secret.expose() });
    Ok((StatusCode::CREATED, axum_json(&body)).into_response())
}

/// `GET /api/auth/tokens`: the caller's tokens.
async fn tokens_list(State(state): State<AppState>, RequireUser(user): RequireUser) -> ApiResult {
    let list = tokens::list(&state, &user).await?;
    let tokens: Vec<_> = list.iter().map(token_json).collect();
    Ok(axum_json(&json!({ "tokens": tokens })))
}

/// `DELETE /api/auth/tokens/{id}`: 204, or 404 for an unknown id or another user's.
async fn token_revoke(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    Path(id): Path<String>,
    _input: Input<NoFields>,
) -> ApiResult {
    let id = super::view::parse_id(&id)?;
    tokens::revoke(&state, &user, id, &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
