//! The JSON API under `/api/auth/`, with the classic endpoint names.

use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use crate::auth::{self, AuthUser, Credentials, LoginInput, NewAccount, SignupInput};
use crate::mfa;
use crate::sessions::{self, NewSession};
use crate::state::AppState;
use crate::web::error::{axum_json, ApiError};
use crate::web::extract::{with_cookies, with_session, Client, MaybeSession, RequireUser};
use crate::web::input::{Input, NoFields};
use crate::web::openapi::{CsrfHeader, CsrfToken, ErrorBody, UserEnvelope};

/// The API routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/csrf", get(csrf_get))
        .route("/api/auth/verify_auth", get(verify_auth))
        .route("/api/auth/login", post(login))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/signup", post(signup))
}

type ApiResult = Result<Response, ApiError>;

/// `{"user": …}` with the new session's cookie and its CSRF token (which changed with it).
fn signed_in(status: StatusCode, user: &AuthUser, new: &NewSession) -> Response {
    let response = (status, axum_json(&user.envelope())).into_response();
    with_session(response, new)
}

/// `GET /api/auth/csrf`: the token for this session, starting an anonymous one if needed.
#[utoipa::path(
    get, path = "/api/auth/csrf", tag = "auth",
    responses((status = 200, description = "The CSRF token of this session; an anonymous session (and its cookie) is started when there is none.", body = CsrfToken)),
)]
async fn csrf_get(
    State(state): State<AppState>,
    MaybeSession(session): MaybeSession,
    Client(client): Client,
) -> ApiResult {
    let (session, cookie) = match session {
        Some(s) => (s, None),
        None => {
            let new = sessions::start(&state, None, false, &client, None).await?;
            (new.session, Some(new.set_cookie))
        }
    };
    let response = axum_json(&json!({ "csrf_token": session.csrf_token() }));
    Ok(with_cookies(response, cookie.as_slice()))
}

/// `GET /api/auth/verify_auth`: who is signed in.
#[utoipa::path(
    get, path = "/api/auth/verify_auth", tag = "auth", security(("session" = []), ("bearer" = [])),
    responses((status = 200, description = "The signed-in user.", body = UserEnvelope)),
)]
async fn verify_auth(RequireUser(user): RequireUser) -> Response {
    axum_json(&user.envelope())
}

/// `POST /api/auth/login`.
#[utoipa::path(
    post, path = "/api/auth/login", tag = "auth", params(CsrfHeader), request_body(content((LoginInput = "application/json"), (LoginInput = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Signed in under a new session id.", body = UserEnvelope, headers(("X-CSRF-Token" = String, description = "The CSRF token of the new session."), ("Set-Cookie" = String, description = "The new session cookie.")),
            links(("verify_auth" = (operation_id = "verify_auth")), ("create_token" = (operation_id = "token_create")))),
        (status = 202, description = "The password is right and the account has a second factor: the session is rotated into a pending one (not signed in, 5 minutes); finish with `POST /api/auth/mfa` or, when `methods` has `passkey`, with the user's passkey (`POST /api/auth/passkeys/login/…`). A holder of a `require_mfa_roles` role whose second factor is a passkey gets `methods: [\"passkey\"]`.", body = mfa::api::MfaRequiredJson, headers(("X-CSRF-Token" = String, description = "The CSRF token of the pending session."), ("Set-Cookie" = String, description = "The pending session cookie."))),
        (status = 401, description = "`invalid_credentials`: wrong password or unknown account (one answer for both).", body = ErrorBody),
        (status = 403, description = "`account_locked`, or `email_unverified` when verification is required.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `login` or `password` missing, or `login` over 254 characters.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: over the limit; retry after `Retry-After` seconds.", body = ErrorBody, headers(("Retry-After" = i64, description = "Seconds to wait."))),
    ),
)]
async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    input: Input<LoginInput>,
) -> ApiResult {
    let credentials = Credentials::try_from(&input.data).map_err(ApiError::Validation)?;
    let auth::PasswordChecked { user, second_step } =
        auth::sign_in(&state, &credentials, &client).await?;
    let remember = input.data.remember_me.unwrap_or(false);
    if !second_step.is_empty() {
        let pending =
            mfa::begin_sign_in(&state, &user, remember, &client, input.session.as_ref()).await?;
        let body = json!({ "mfa_required": true, "methods": second_step });
        let response = (StatusCode::ACCEPTED, axum_json(&body)).into_response();
        return Ok(with_session(response, &pending));
    }
    let new = sessions::start(
        &state,
        Some(&user),
        remember,
        &client,
        input.session.as_ref(),
    )
    .await?;
    Ok(signed_in(StatusCode::OK, &AuthUser::from(&user), &new))
}

/// `POST /api/auth/logout`: ends the session; without one there is nothing to do.
#[utoipa::path(
    post, path = "/api/auth/logout", tag = "auth", params(CsrfHeader),
    request_body(content((NoFields = "application/json"), (NoFields = "application/x-www-form-urlencoded")), description = "Empty, or only the `csrf_token` field."),
    responses((status = 204, description = "Signed out (also without a session); the cookie is cleared.")),
)]
async fn logout(
    State(state): State<AppState>,
    MaybeSession(session): MaybeSession,
    Client(client): Client,
    request: Request,
) -> Response {
    let Some(session) = session else {
        return with_cookies(
            StatusCode::NO_CONTENT.into_response(),
            &[sessions::removal_cookie(&state)],
        );
    };
    if let Err(rejection) = Input::<NoFields>::from_request(request, &state).await {
        return rejection.into_response();
    }
    match sessions::end(&state, &session, &client).await {
        Ok(clear) => with_cookies(StatusCode::NO_CONTENT.into_response(), &[clear]),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `POST /api/auth/signup`: creates the account and signs it in.
#[utoipa::path(
    post, path = "/api/auth/signup", tag = "auth", params(CsrfHeader), request_body(content((SignupInput = "application/json"), (SignupInput = "application/x-www-form-urlencoded"))),
    responses(
        (status = 201, description = "Account created and signed in.", body = UserEnvelope, headers(("X-CSRF-Token" = String, description = "The CSRF token of the new session."), ("Set-Cookie" = String, description = "The new session cookie.")),
            links(("verify_auth" = (operation_id = "verify_auth")), ("create_token" = (operation_id = "token_create")))),
        (status = 409, description = "`username_taken` or `email_taken`.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: every failing field at once.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: over the limit; retry after `Retry-After` seconds.", body = ErrorBody, headers(("Retry-After" = i64, description = "Seconds to wait."))),
    ),
)]
async fn signup(
    State(state): State<AppState>,
    Client(client): Client,
    input: Input<SignupInput>,
) -> ApiResult {
    let Input { data, session } = input;
    let account = NewAccount::try_from(data).map_err(ApiError::Validation)?;
    let user = auth::register(&state, &account, &client).await?;
    let new = sessions::start(&state, Some(&user), false, &client, session.as_ref()).await?;
    Ok(signed_in(StatusCode::CREATED, &AuthUser::from(&user), &new))
}
