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

pub mod api;
mod pages;

pub use api::{post_json, PostEnvelope, PostJson, PostList};

use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::domain::{FieldErrors, ADMIN_ROLE};
use crate::state::AppState;
use crate::store::posts::{self, PostRecord};
use crate::store::users;
use crate::user::AuthUser;
use crate::web::error::ApiError;
use crate::web::view;

/// Longest title, in characters.
pub const MAX_TITLE: usize = 200;
/// Longest body, in characters.
pub const MAX_BODY: usize = 20_000;

/// The posts routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/posts", get(pages::list_get))
        .route("/posts/new", get(pages::new_get).post(pages::new_post))
        .route("/posts/{id}", get(pages::show_get))
        .route(
            "/posts/{id}/edit",
            get(pages::edit_get).post(pages::edit_post),
        )
        .route("/posts/{id}/delete", post(pages::delete_post))
        .route("/api/posts", get(api::list).post(api::create))
        .route(
            "/api/posts/{id}",
            get(api::show).patch(api::update).delete(api::delete),
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
pub fn parse_patch(input: &PostInput) -> Result<(Option<String>, Option<String>), FieldErrors> {
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

/// Publishes a post written by `author` (never another author, whatever the input said).
pub async fn create(
    state: &AppState,
    author: &AuthUser,
    fields: &PostFields,
) -> Result<PostRecord, ApiError> {
    let now = state.clock.now();
    Ok(posts::insert(&state.db, author.id, &fields.title, &fields.body, now).await?)
}

/// `user`'s posts, newest first.
pub async fn list(state: &AppState, user: &AuthUser) -> Result<Vec<PostRecord>, ApiError> {
    Ok(posts::list_by_author(&state.db, user.id).await?)
}

/// Changes the title and/or body of a post already loaded by [`load_for`] with
/// [`Action::Edit`].
pub async fn update(
    state: &AppState,
    post: &PostRecord,
    title: Option<&str>,
    body: Option<&str>,
) -> Result<PostRecord, ApiError> {
    let now = state.clock.now();
    Ok(posts::update(&state.db, post.id, title, body, now).await?)
}

/// Deletes a post already loaded by [`load_for`] with [`Action::Delete`].
pub async fn delete(state: &AppState, post: &PostRecord) -> Result<(), ApiError> {
    posts::delete(&state.db, post.id).await?;
    Ok(())
}

/// The author's username, when `viewer` is not the author (an admin looking at a post).
pub async fn author_name(
    state: &AppState,
    viewer: &AuthUser,
    post: &PostRecord,
) -> Result<Option<String>, ApiError> {
    if post.author_id == viewer.id {
        return Ok(None);
    }
    Ok(users::find_by_id(&state.db, post.author_id)
        .await?
        .map(|u| u.username))
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
            passkey_count: 0,
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
