//! `/api/auth/tokens`: the JSON side of the API tokens (create, list, revoke), next to the
//! page in [`super::pages`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use crate::clock::rfc3339;
use crate::state::AppState;
use crate::store::api_tokens::ApiTokenRecord;
use crate::tokens::{self, NewToken};
use crate::web::error::{axum_json, ApiError};
use crate::web::extract::{Client, RequireUser};
use crate::web::input::{Input, NoFields};
use crate::web::openapi::{CsrfHeader, ErrorBody, TokenCreated, TokenList};

/// The token API routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/tokens", get(tokens_list).post(token_create))
        .route("/api/auth/tokens/{id}", delete(token_revoke))
}

type ApiResult = Result<Response, ApiError>;

/// The `Token` object of docs/http-api.md (never the secret).
fn token_json(t: &ApiTokenRecord) -> serde_json::Value {
    json!({
        "id": t.id,
        "name": t.name,
        "created_at": rfc3339(t.created_at),
        "last_used_at": t.last_used_at.map(rfc3339),
        "expires_at": t.expires_at.map(rfc3339),
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct TokenCreateInput {
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::domain::flex_i64")]
    expires_in_days: Option<i64>,
}

/// `POST /api/auth/tokens`: 201 with the secret, shown this once.
#[utoipa::path(
    post, path = "/api/auth/tokens", tag = "account", security(("session" = []), ("bearer" = [])), params(CsrfHeader), request_body(content((TokenCreateInput = "application/json"), (TokenCreateInput = "application/x-www-form-urlencoded"))),
    responses(
        (status = 201, description = "Created; the secret is shown this once.", body = TokenCreated,
            links(("revoke_token" = (operation_id = "token_revoke", parameters(("id" = "$response.body#/token/id")))))),
        (status = 422, description = "`validation_failed`: missing or too long `name`, or `expires_in_days` out of range.", body = ErrorBody),
    ),
)]
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
#[utoipa::path(
    get, path = "/api/auth/tokens", tag = "account", security(("session" = []), ("bearer" = [])),
    responses((status = 200, description = "The caller's API tokens.", body = TokenList)),
)]
async fn tokens_list(State(state): State<AppState>, RequireUser(user): RequireUser) -> ApiResult {
    let list = tokens::list(&state, &user).await?;
    let tokens: Vec<_> = list.iter().map(token_json).collect();
    Ok(axum_json(&json!({ "tokens": tokens })))
}

/// `DELETE /api/auth/tokens/{id}`: 204, or 404 for an unknown id or another user's.
#[utoipa::path(
    delete, path = "/api/auth/tokens/{id}", tag = "account", security(("session" = []), ("bearer" = [])), params(CsrfHeader, ("id" = i64, Path, description = "A token id from `GET /api/auth/tokens`.")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 404, description = "`not_found`: unknown id or another user's token.", body = ErrorBody),
    ),
)]
async fn token_revoke(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    Path(id): Path<String>,
    _input: Input<NoFields>,
) -> ApiResult {
    let id = crate::web::view::parse_id(&id)?;
    tokens::revoke(&state, &user, id, &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
