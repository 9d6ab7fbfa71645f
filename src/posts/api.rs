//! The posts JSON API under `/api/posts`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{self as posts, load_for, parse_patch, Action, PostFields, PostInput};
use crate::clock::rfc3339;
use crate::state::AppState;
use crate::store::posts::PostRecord;
use crate::web::error::{axum_json, ApiError};
use crate::web::extract::RequireUser;
use crate::web::input::{Input, NoFields};
use crate::web::openapi::{CsrfHeader, ErrorBody};

/// docs/http-api.md's `Post` object.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Post)]
pub struct PostJson<'a> {
    id: i64,
    title: &'a str,
    body: &'a str,
    author_id: i64,
    created_at: String,
    updated_at: String,
}

/// The JSON form of a post.
pub fn post_json(post: &PostRecord) -> PostJson<'_> {
    PostJson {
        id: post.id,
        title: &post.title,
        body: &post.body,
        author_id: post.author_id,
        created_at: rfc3339(post.created_at),
        updated_at: rfc3339(post.updated_at),
    }
}

type ApiResult = Result<Response, ApiError>;

/// `POST /api/posts`: 201 `{"post": Post}` written by the caller.
#[utoipa::path(
    post, path = "/api/posts", tag = "posts", operation_id = "posts_create", security(("session" = []), ("bearer" = [])), params(CsrfHeader), request_body(content((PostInput = "application/json"), (PostInput = "application/x-www-form-urlencoded"))),
    responses(
        (status = 201, description = "Created, written by the caller.", body = PostEnvelope,
            links(("show_post" = (operation_id = "posts_show", parameters(("id" = "$response.body#/post/id")))),
                  ("update_post" = (operation_id = "posts_update", parameters(("id" = "$response.body#/post/id")))),
                  ("delete_post" = (operation_id = "posts_delete", parameters(("id" = "$response.body#/post/id")))))),
        (status = 422, description = "`validation_failed`: a missing, too long or multi-line title, or a missing or too long body.", body = ErrorBody),
    ),
)]
pub(super) async fn create(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    input: Input<PostInput>,
) -> ApiResult {
    let fields = PostFields::try_from(&input.data).map_err(ApiError::Validation)?;
    let post = posts::create(&state, &user, &fields).await?;
    Ok((
        StatusCode::CREATED,
        axum_json(&json!({ "post": post_json(&post) })),
    )
        .into_response())
}

/// `GET /api/posts`: the caller's posts, newest first.
#[utoipa::path(
    get, path = "/api/posts", tag = "posts", operation_id = "posts_list", security(("session" = []), ("bearer" = [])),
    responses((status = 200, description = "The caller's posts, newest first.", body = PostList)),
)]
pub(super) async fn list(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
) -> ApiResult {
    let list = posts::list(&state, &user).await?;
    let list: Vec<PostJson<'_>> = list.iter().map(post_json).collect();
    Ok(axum_json(&json!({ "posts": list })))
}

/// `GET /api/posts/{id}`.
#[utoipa::path(
    get, path = "/api/posts/{id}", tag = "posts", operation_id = "posts_show", security(("session" = []), ("bearer" = [])), params(("id" = i64, Path, description = "Post id.")),
    responses(
        (status = 200, description = "The post.", body = PostEnvelope),
        (status = 404, description = "`not_found`: no such post, or another user's.", body = ErrorBody),
    ),
)]
pub(super) async fn show(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Path(id): Path<String>,
) -> ApiResult {
    let post = load_for(&state, &user, &id, Action::View).await?;
    Ok(axum_json(&json!({ "post": post_json(&post) })))
}

/// `PATCH /api/posts/{id}`: `title` and/or `body`; the policy is applied before the body is
/// validated, so a post the caller may not see is 404 whatever the body says.
#[utoipa::path(
    patch, path = "/api/posts/{id}", tag = "posts", operation_id = "posts_update", security(("session" = []), ("bearer" = [])), params(CsrfHeader, ("id" = i64, Path, description = "Post id.")), request_body(content((PostInput = "application/json"), (PostInput = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Changed.", body = PostEnvelope),
        (status = 403, description = "`forbidden`: an administrator editing another user's post.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such post, or another user's.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: nothing to change, or a bad title or body.", body = ErrorBody),
    ),
)]
pub(super) async fn update(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Path(id): Path<String>,
    input: Input<PostInput>,
) -> ApiResult {
    let post = load_for(&state, &user, &id, Action::Edit).await?;
    let (title, body) = parse_patch(&input.data).map_err(ApiError::Validation)?;
    let post = posts::update(&state, &post, title.as_deref(), body.as_deref()).await?;
    Ok(axum_json(&json!({ "post": post_json(&post) })))
}

/// `DELETE /api/posts/{id}`: 204.
#[utoipa::path(
    delete, path = "/api/posts/{id}", tag = "posts", operation_id = "posts_delete", security(("session" = []), ("bearer" = [])), params(CsrfHeader, ("id" = i64, Path, description = "Post id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "`not_found`: no such post, or another user's.", body = ErrorBody),
    ),
)]
pub(super) async fn delete(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Path(id): Path<String>,
    _csrf: Input<NoFields>,
) -> ApiResult {
    let post = load_for(&state, &user, &id, Action::Delete).await?;
    posts::delete(&state, &post).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `{"post": Post}`.
#[derive(Debug, ToSchema)]
pub struct PostEnvelope {
    /// The post.
    pub post: PostJson<'static>,
}

/// `{"posts": [Post]}`.
#[derive(Debug, ToSchema)]
pub struct PostList {
    /// The caller's posts, newest first.
    pub posts: Vec<PostJson<'static>>,
}
