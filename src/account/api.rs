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

use crate::account;
use crate::clock::rfc3339;
use crate::sessions;
use crate::state::AppState;
use crate::web::error::{axum_json, ApiError};
use crate::web::extract::{with_cookies, Client, RequireUser};
use crate::web::input::{Input, NoFields, TokenInput};
use crate::web::openapi::{CsrfHeader, ErrorBody, SessionList};

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
}

type ApiResult = Result<Response, ApiError>;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct ForgotInput {
    email: Option<String>,
}

/// `POST /api/auth/password/forgot`: 202 whether or not the address has an account.
#[utoipa::path(
    post, path = "/api/auth/password/forgot", tag = "account", request_body(content((ForgotInput = "application/json"), (ForgotInput = "application/x-www-form-urlencoded"))),
    responses(
        (status = 202, description = "Accepted, the same whether or not the address has an account."),
        (status = 429, description = "`too_many_attempts`: over the limit; retry after `Retry-After` seconds.", body = ErrorBody, headers(("Retry-After" = i64, description = "Seconds to wait."))),
    ),
)]
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct ResetInput {
    token: Option<String>,
    password: Option<String>,
}

/// `POST /api/auth/password/reset`: 204; every session of the account ends.
#[utoipa::path(
    post, path = "/api/auth/password/reset", tag = "account", request_body(content((ResetInput = "application/json"), (ResetInput = "application/x-www-form-urlencoded"))),
    responses(
        (status = 204, description = "Password set; every session and API token of the account ends."),
        (status = 400, description = "`invalid_token`: unknown, used or expired link.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: the new password breaks the policy.", body = ErrorBody),
    ),
)]
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

/// `POST /api/auth/password/change`: 204 with a new session cookie; other sessions end.
#[utoipa::path(
    post, path = "/api/auth/password/change", tag = "account", security(("session" = []), ("bearer" = [])), params(CsrfHeader), request_body(content((account::PasswordChangeInput = "application/json"), (account::PasswordChangeInput = "application/x-www-form-urlencoded"))),
    responses(
        (status = 204, description = "Changed; other sessions end and this one gets a new id.", headers(("X-CSRF-Token" = String, description = "The CSRF token of the new session."), ("Set-Cookie" = String, description = "The new session cookie."))),
        (status = 401, description = "`invalid_credentials`: the current password is wrong; or `unauthenticated`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: the new password breaks the policy.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: over the limit; retry after `Retry-After` seconds.", body = ErrorBody, headers(("Retry-After" = i64, description = "Seconds to wait."))),
    ),
)]
async fn password_change(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    input: Input<account::PasswordChangeInput>,
) -> ApiResult {
    let Input { data, session } = input;
    let record = account::change_password(&state, &user, &data.change(), &client).await?;
    let new =
        sessions::reissue_after_password_change(&state, &record, session.as_ref(), &client).await?;
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct TokenOnly {
    token: Option<String>,
}

/// `POST /api/auth/email/verify`: 204, or 400 `invalid_token`.
#[utoipa::path(
    post, path = "/api/auth/email/verify", tag = "account", request_body(content((TokenOnly = "application/json"), (TokenOnly = "application/x-www-form-urlencoded"))),
    responses(
        (status = 204, description = "The address is verified."),
        (status = 400, description = "`invalid_token`: unknown, used or expired link.", body = ErrorBody),
    ),
)]
async fn email_verify(
    State(state): State<AppState>,
    Client(client): Client,
    TokenInput(input): TokenInput<TokenOnly>,
) -> ApiResult {
    account::verify_email(&state, input.token.as_deref().unwrap_or_default(), &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/auth/email/resend`: 202 (nothing is sent when already verified).
#[utoipa::path(
    post, path = "/api/auth/email/resend", tag = "account", security(("session" = []), ("bearer" = [])), params(CsrfHeader),
    request_body(content((NoFields = "application/json"), (NoFields = "application/x-www-form-urlencoded")), description = "Empty, or only the `csrf_token` field."),
    responses(
        (status = 202, description = "Accepted (nothing is sent when already verified)."),
        (status = 429, description = "`too_many_attempts`: over the limit; retry after `Retry-After` seconds.", body = ErrorBody, headers(("Retry-After" = i64, description = "Seconds to wait."))),
    ),
)]
async fn email_resend(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    _input: Input<NoFields>,
) -> ApiResult {
    account::resend_verification(&state, &user, &client).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct ChangeEmailInput {
    password: Option<String>,
    #[serde(alias = "new_email")]
    email: Option<String>,
}

/// `POST /api/auth/email/change`: 202; the new address takes effect once verified.
#[utoipa::path(
    post, path = "/api/auth/email/change", tag = "account", security(("session" = []), ("bearer" = [])), params(CsrfHeader), request_body(content((ChangeEmailInput = "application/json"), (ChangeEmailInput = "application/x-www-form-urlencoded"))),
    responses(
        (status = 202, description = "Accepted for any well-formed address; the new one takes effect once verified."),
        (status = 401, description = "`invalid_credentials`: the password is wrong; or `unauthenticated`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: a malformed address or a missing password.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: over the limit; retry after `Retry-After` seconds.", body = ErrorBody, headers(("Retry-After" = i64, description = "Seconds to wait."))),
    ),
)]
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
#[utoipa::path(
    get, path = "/api/auth/sessions", tag = "account", security(("session" = []), ("bearer" = [])),
    responses((status = 200, description = "The caller's live sessions.", body = SessionList,
        links(("revoke_session" = (operation_id = "session_revoke", parameters(("id" = "$response.body#/sessions/0/id"))))))),
)]
async fn sessions_list(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    session: crate::web::extract::MaybeSession,
) -> ApiResult {
    let current = session.0.as_ref().map(|s| s.id());
    let list = account::sessions(&state, &user).await?;
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
                "factors": sessions::factors_json(&s.factors),
                "two_factor": crate::domain::Factors::parse(&s.factors).two_factor(),
            })
        })
        .collect();
    Ok(axum_json(&json!({ "sessions": sessions })))
}

/// `DELETE /api/auth/sessions/{id}`: 204, or 404 for an unknown id or another user's.
#[utoipa::path(
    delete, path = "/api/auth/sessions/{id}", tag = "account", security(("session" = []), ("bearer" = [])), params(CsrfHeader, ("id" = i64, Path, description = "A session id from `GET /api/auth/sessions`.")),
    responses(
        (status = 204, description = "The session ended."),
        (status = 404, description = "`not_found`: unknown id or another user's session.", body = ErrorBody),
    ),
)]
async fn session_revoke(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    Path(id): Path<String>,
    _input: Input<NoFields>,
) -> ApiResult {
    let id = crate::web::view::parse_id(&id)?;
    account::revoke_session(&state, &user, id, &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /api/auth/sessions`: ends every session but the current one.
#[utoipa::path(
    delete, path = "/api/auth/sessions", tag = "account", security(("session" = []), ("bearer" = [])), params(CsrfHeader),
    responses((status = 204, description = "Every session but the current one ended.")),
)]
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
