//! Posts: a small blog where users may change only their own posts (the classic recipe's
//! ownership demo), as pages under `/posts` and as JSON under `/api/posts`.
//!
//! # Policy
//! Every posts route needs sign-in. What a signed-in user may do with one post is decided by
//! one function, [`authorize`], and every handler reaches a post only through
//! [`load_for`], which loads it and applies that function:
//!
//! | caller | view | edit | delete |
//! |---|---|---|---|
//! | the author | yes | yes | yes |
//! | an admin (not the author) | yes | 403 | yes |
//! | anyone else | 404 | 404 | 404 |
//!
//! Another user's post is answered exactly like a post that does not exist (404, same body),
//! so ids reveal nothing (docs/security.md Z2). An admin, who may see every post, gets 403 when
//! editing one that is not theirs: only the author may put words in a post under their name.
//! The author of a new post is always the caller; `id`, `author_id` and any other field in a
//! body are ignored (Z3). Titles and bodies are printed through autoescaping templates, so
//! markup in them is inert (H3).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::clock::rfc3339;
use crate::domain::{FieldErrors, ADMIN_ROLE};
use crate::state::AppState;
use crate::store::posts::{self, PostRecord};
use crate::store::users;
use crate::user::AuthUser;
use crate::web::error::{axum_json, ApiError};
use crate::web::extract::{see_other, RequireUser};
use crate::web::input::{Input, NoFields};
use crate::web::openapi::{CsrfHeader, ErrorBody};
use crate::web::view::{self, Frame, HtmlResult};
use utoipa::ToSchema;

/// Longest title, in characters.
pub const MAX_TITLE: usize = 200;
/// Longest body, in characters.
pub const MAX_BODY: usize = 20_000;

/// The posts routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/posts", get(list_get))
        .route("/posts/new", get(new_get).post(new_post))
        .route("/posts/{id}", get(show_get))
        .route("/posts/{id}/edit", get(edit_get).post(edit_post))
        .route("/posts/{id}/delete", post(delete_post))
        .route("/api/posts", get(api_list).post(api_create))
        .route(
            "/api/posts/{id}",
            get(api_show).patch(api_update).delete(api_delete),
        )
}

/// What a caller wants to do with a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read it.
    View,
    /// Change its title or body.
    Edit,
    /// Delete it.
    Delete,
}

/// The posts policy (see the module docs): `Ok` when `user` may do `action` to `post`,
/// otherwise the error to answer with (404 when the user may not even see the post).
pub fn authorize(user: &AuthUser, post: &PostRecord, action: Action) -> Result<(), ApiError> {
    if post.author_id == user.id {
        return Ok(());
    }
    match (user.has_role(ADMIN_ROLE), action) {
        (true, Action::View | Action::Delete) => Ok(()),
        (true, Action::Edit) => Err(ApiError::Forbidden),
        (false, _) => Err(ApiError::NotFound),
    }
}

/// Loads post `id` for `user` to do `action`: the only way handlers reach a post.
pub async fn load_for(
    state: &AppState,
    user: &AuthUser,
    id: &str,
    action: Action,
) -> Result<PostRecord, ApiError> {
    let id = view::parse_id(id)?;
    let post = posts::find(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    authorize(user, &post, action)?;
    Ok(post)
}

/// The post fields as sent (JSON or form). Anything else (`id`, `author_id`…) is ignored.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct PostInput {
    /// Title.
    pub title: Option<String>,
    /// Body.
    pub body: Option<String>,
}

/// A valid title and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostFields {
    /// 1–200 characters, one line.
    pub title: String,
    /// 1–20,000 characters.
    pub body: String,
}

fn parse_title(raw: &str) -> Result<String, String> {
    let title = raw.trim();
    if title.is_empty() {
        return Err("Enter a title.".into());
    }
    if title.chars().count() > MAX_TITLE {
        return Err(format!("Must be at most {MAX_TITLE} characters."));
    }
    if title.chars().any(char::is_control) {
        return Err("Must be one line, without control characters.".into());
    }
    Ok(title.to_owned())
}

fn parse_body(raw: &str) -> Result<String, String> {
    let body = raw.replace("\r\n", "\n");
    let body = body.trim();
    if body.is_empty() {
        return Err("Write something.".into());
    }
    if body.chars().count() > MAX_BODY {
        return Err("Must be at most 20,000 characters.".into());
    }
    if body
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("Must not contain control characters.".into());
    }
    Ok(body.to_owned())
}

impl TryFrom<&PostInput> for PostFields {
    type Error = FieldErrors;

    /// Both fields required; every failure reported at once.
    fn try_from(input: &PostInput) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let title = errors.check("title", parse_title(input.title.as_deref().unwrap_or("")));
        let body = errors.check("body", parse_body(input.body.as_deref().unwrap_or("")));
        errors.into_result(|| {
            Some(PostFields {
                title: title?,
                body: body?,
            })
        })
    }
}

/// A partial change: the fields given, each valid.
fn parse_patch(input: &PostInput) -> Result<(Option<String>, Option<String>), FieldErrors> {
    let mut errors = FieldErrors::new();
    if input.title.is_none() && input.body.is_none() {
        errors.add("title", "Give a new title, a new body, or both.");
        errors.add("body", "Give a new title, a new body, or both.");
        return Err(errors);
    }
    let title = input
        .title
        .as_deref()
        .and_then(|t| errors.check("title", parse_title(t)));
    let body = input
        .body
        .as_deref()
        .and_then(|b| errors.check("body", parse_body(b)));
    errors.into_result(|| Some((title, body)))
}

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

// ---- JSON API ----

type ApiResult = Result<Response, ApiError>;

/// `POST /api/posts`: 201 `{"post": Post}` written by the caller.
#[utoipa::path(
    post, path = "/api/posts", tag = "posts", security(("session" = []), ("bearer" = [])), params(CsrfHeader), request_body(content((PostInput = "application/json"), (PostInput = "application/x-www-form-urlencoded"))),
    responses(
        (status = 201, description = "Created, written by the caller.", body = PostEnvelope,
            links(("show_post" = (operation_id = "posts_show", parameters(("id" = "$response.body#/post/id")))),
                  ("update_post" = (operation_id = "posts_update", parameters(("id" = "$response.body#/post/id")))),
                  ("delete_post" = (operation_id = "posts_delete", parameters(("id" = "$response.body#/post/id")))))),
        (status = 422, description = "`validation_failed`: a missing, too long or multi-line title, or a missing or too long body.", body = ErrorBody),
    ),
)]
async fn api_create(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    input: Input<PostInput>,
) -> ApiResult {
    let fields = PostFields::try_from(&input.data).map_err(ApiError::Validation)?;
    let post = posts::insert(
        &state.db,
        user.id,
        &fields.title,
        &fields.body,
        state.clock.now(),
    )
    .await?;
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
async fn api_list(State(state): State<AppState>, RequireUser(user): RequireUser) -> ApiResult {
    let list = posts::list_by_author(&state.db, user.id).await?;
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
async fn api_show(
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
async fn api_update(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Path(id): Path<String>,
    input: Input<PostInput>,
) -> ApiResult {
    let post = load_for(&state, &user, &id, Action::Edit).await?;
    let (title, body) = parse_patch(&input.data).map_err(ApiError::Validation)?;
    let post = posts::update(
        &state.db,
        post.id,
        title.as_deref(),
        body.as_deref(),
        state.clock.now(),
    )
    .await?;
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
async fn api_delete(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Path(id): Path<String>,
    _csrf: Input<NoFields>,
) -> ApiResult {
    let post = load_for(&state, &user, &id, Action::Delete).await?;
    posts::delete(&state.db, post.id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- Pages ----

/// `GET /posts`: the signed-in user's posts.
async fn list_get(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    frame: Frame,
    RawQuery(query): RawQuery,
) -> HtmlResult {
    let list = posts::list_by_author(&state.db, user.id).await?;
    let list: Vec<PostJson<'_>> = list.iter().map(post_json).collect();
    let done = view::query_param(query.as_deref(), "done");
    view::render(
        &state,
        &frame,
        "posts_list.html",
        StatusCode::OK,
        view::notice(done.as_deref()),
        context! { posts => list },
    )
}

fn form_page(
    state: &AppState,
    frame: &Frame,
    status: StatusCode,
    post_id: Option<i64>,
    values: &PostInput,
    errors: &FieldErrors,
) -> HtmlResult {
    view::render(
        state,
        frame,
        "posts_form.html",
        status,
        None,
        context! {
            post_id,
            values => context! { title => values.title.clone(), body => values.body.clone() },
            errors => view::first_messages(errors),
        },
    )
}

/// `GET /posts/new`: the form for a new post.
async fn new_get(
    State(state): State<AppState>,
    RequireUser(_user): RequireUser,
    frame: Frame,
) -> HtmlResult {
    form_page(
        &state,
        &frame,
        StatusCode::OK,
        None,
        &PostInput::default(),
        &FieldErrors::new(),
    )
}

/// `POST /posts/new`: publishes, then shows the post; the form again on errors.
async fn new_post(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    frame: Frame,
    input: Input<PostInput>,
) -> HtmlResult {
    let fields = match PostFields::try_from(&input.data) {
        Ok(fields) => fields,
        Err(errors) => {
            return form_page(
                &state,
                &frame,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                &input.data,
                &errors,
            )
        }
    };
    let post = posts::insert(
        &state.db,
        user.id,
        &fields.title,
        &fields.body,
        state.clock.now(),
    )
    .await?;
    Ok(see_other(&format!("/posts/{}?done=created", post.id), &[]))
}

/// `GET /posts/{id}`: one post, with edit and delete controls when allowed.
async fn show_get(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    frame: Frame,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> HtmlResult {
    let post = load_for(&state, &user, &id, Action::View).await?;
    let author = if post.author_id == user.id {
        None
    } else {
        users::find_by_id(&state.db, post.author_id)
            .await?
            .map(|u| u.username)
    };
    let done = view::query_param(query.as_deref(), "done");
    view::render(
        &state,
        &frame,
        "posts_show.html",
        StatusCode::OK,
        view::notice(done.as_deref()),
        context! {
            post => post_json(&post),
            author,
            can_edit => authorize(&user, &post, Action::Edit).is_ok(),
            can_delete => authorize(&user, &post, Action::Delete).is_ok(),
        },
    )
}

/// `GET /posts/{id}/edit`: the edit form (author only).
async fn edit_get(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    frame: Frame,
    Path(id): Path<String>,
) -> HtmlResult {
    let post = load_for(&state, &user, &id, Action::Edit).await?;
    let values = PostInput {
        title: Some(post.title),
        body: Some(post.body),
    };
    form_page(
        &state,
        &frame,
        StatusCode::OK,
        Some(post.id),
        &values,
        &FieldErrors::new(),
    )
}

/// `POST /posts/{id}/edit`: saves, then shows the post; the form again on errors.
async fn edit_post(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    frame: Frame,
    Path(id): Path<String>,
    input: Input<PostInput>,
) -> HtmlResult {
    let post = load_for(&state, &user, &id, Action::Edit).await?;
    let fields = match PostFields::try_from(&input.data) {
        Ok(fields) => fields,
        Err(errors) => {
            return form_page(
                &state,
                &frame,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(post.id),
                &input.data,
                &errors,
            )
        }
    };
    posts::update(
        &state.db,
        post.id,
        Some(&fields.title),
        Some(&fields.body),
        state.clock.now(),
    )
    .await?;
    Ok(see_other(&format!("/posts/{}?done=updated", post.id), &[]))
}

/// `POST /posts/{id}/delete`: deletes (author or admin), then goes to the list.
async fn delete_post(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Path(id): Path<String>,
    _csrf: Input<NoFields>,
) -> HtmlResult {
    let post = load_for(&state, &user, &id, Action::Delete).await?;
    posts::delete(&state.db, post.id).await?;
    Ok(see_other("/posts?done=deleted", &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, roles: &[&str]) -> AuthUser {
        AuthUser {
            id,
            username: format!("u{id}"),
            email: format!("u{id}@example.com"),
            email_verified: false,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            first_name: None,
            last_name: None,
            created_at: 0,
            credential_gen: 0,
            mfa_enabled: false,
        }
    }

    fn post_by(author_id: i64) -> PostRecord {
        PostRecord {
            id: 7,
            author_id,
            title: "t".into(),
            body: "b".into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn policy_table() {
        use Action::*;
        let post = post_by(1);
        let author = user(1, &[]);
        let admin = user(2, &["admin"]);
        let other = user(3, &["editor"]);
        for action in [View, Edit, Delete] {
            assert!(authorize(&author, &post, action).is_ok());
            assert!(matches!(
                authorize(&other, &post, action),
                Err(ApiError::NotFound)
            ));
        }
        assert!(authorize(&admin, &post, View).is_ok());
        assert!(authorize(&admin, &post, Delete).is_ok());
        assert!(matches!(
            authorize(&admin, &post, Edit),
            Err(ApiError::Forbidden)
        ));
        // An admin's own post is theirs like anyone's.
        assert!(authorize(&admin, &post_by(2), Edit).is_ok());
    }

    #[test]
    fn fields_are_checked_at_once() {
        let input = PostInput {
            title: Some("  ".into()),
            body: Some("x".repeat(MAX_BODY + 1)),
        };
        let errors = PostFields::try_from(&input).unwrap_err();
        assert!(errors.first("title").is_some() && errors.first("body").is_some());
        let ok = PostInput {
            title: Some(format!(" {} ", "é".repeat(MAX_TITLE))),
            body: Some("line one\r\nline two".into()),
        };
        let fields = PostFields::try_from(&ok).unwrap();
        assert_eq!(fields.title.chars().count(), MAX_TITLE);
        assert_eq!(fields.body, "line one\nline two");
        assert!(parse_title("a\nb").is_err());
        assert!(parse_title(&"a".repeat(MAX_TITLE + 1)).is_err());
        assert!(parse_patch(&PostInput::default()).is_err());
        assert_eq!(
            parse_patch(&PostInput {
                title: Some("New".into()),
                body: None
            })
            .unwrap(),
            (Some("New".into()), None)
        );
    }
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
