//! `/account/tokens`: the signed-in user's API tokens as a page — list, create (the secret
//! is shown once, on the page that answers the form), revoke. The same capability functions
//! as `/api/auth/tokens`.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::Deserialize;

use crate::clock::rfc3339;
use crate::domain::FieldErrors;
use crate::state::AppState;
use crate::tokens::{self, NewToken};
use crate::user::AuthUser;
use crate::web::base::Base;
use crate::web::extract::{see_other, Client, RequireUser};
use crate::web::input::{Input, NoFields};
use crate::web::view::{self, first_messages, Frame, HtmlResult};

/// The token page routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account/tokens", get(tokens_get).post(create_post))
        .route("/account/tokens/{id}/revoke", post(revoke_post))
}

/// What the page shows besides the list: a just-created secret, or the form's errors.
#[derive(Default)]
struct Shown<'a> {
    secret: Option<&'a str>,
    errors: FieldErrors,
    name: Option<&'a str>,
    notice: Option<&'a str>,
}

async fn page(
    state: &AppState,
    frame: &Frame,
    user: &AuthUser,
    status: StatusCode,
    shown: Shown<'_>,
) -> HtmlResult {
    let list = tokens::list(state, user).await?;
    let rows: Vec<_> = list
        .iter()
        .map(|t| {
            context! {
                id => t.id,
                name => t.name,
                created_at => rfc3339(t.created_at),
                last_used_at => t.last_used_at.map(rfc3339),
                expires_at => t.expires_at.map(rfc3339),
            }
        })
        .collect();
    view::render(
        state,
        frame,
        "account_tokens.html",
        status,
        shown.notice,
        context! {
            tokens => rows,
            secret => shown.secret,
            errors => first_messages(&shown.errors),
            name_value => shown.name,
        },
    )
}

async fn tokens_get(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    frame: Frame,
    RawQuery(raw): RawQuery,
) -> HtmlResult {
    let done = view::query_param(raw.as_deref(), "done");
    let shown = Shown {
        notice: view::notice(done.as_deref()),
        ..Shown::default()
    };
    page(&state, &frame, &user, StatusCode::OK, shown).await
}

#[derive(Debug, Deserialize)]
struct CreateForm {
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::domain::flex_i64")]
    expires_in_days: Option<i64>,
}

/// Creates a token and answers with the page showing its secret this once (never a
/// redirect: the secret must not travel in a URL or a cookie).
async fn create_post(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    frame: Frame,
    input: Input<CreateForm>,
) -> HtmlResult {
    let data = input.data;
    let new = match NewToken::parse(data.name.as_deref(), data.expires_in_days) {
        Ok(new) => new,
        Err(errors) => {
            let shown = Shown {
                errors,
                name: data.name.as_deref(),
                ..Shown::default()
            };
            return page(
                &state,
                &frame,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                shown,
            )
            .await;
        }
    };
    let (_, secret) = tokens::create(&state, &user, &new).await?;
    let shown = Shown {
        secret: Some(secret.expose()),
        notice: Some("Token created. Copy it now: it is shown this once."),
        ..Shown::default()
    };
    page(&state, &frame, &user, StatusCode::CREATED, shown).await
}

async fn revoke_post(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    Path(id): Path<String>,
    base: Base,
    _input: Input<NoFields>,
) -> HtmlResult {
    let id = view::parse_id(&id)?;
    tokens::revoke(&state, &user, id, &client).await?;
    Ok(see_other(
        &base.join("/account/tokens?done=token_revoked"),
        &[],
    ))
}
