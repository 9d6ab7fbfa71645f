//! The posts pages under `/posts`: list, show, new, edit, delete (forms without JavaScript).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use minijinja::context;

use super::{
    self as posts, authorize, load_for, post_json, Action, PostFields, PostInput, PostJson,
};
use crate::domain::FieldErrors;
use crate::state::AppState;
use crate::web::base::Base;
use crate::web::extract::{see_other, RequireUser};
use crate::web::input::{Input, NoFields};
use crate::web::view::{self, Frame, HtmlResult};

/// `GET /posts`: the signed-in user's posts.
pub(super) async fn list_get(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    frame: Frame,
    RawQuery(query): RawQuery,
) -> HtmlResult {
    let list = posts::list(&state, &user).await?;
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
pub(super) async fn new_get(
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
pub(super) async fn new_post(
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
    let post = posts::create(&state, &user, &fields).await?;
    Ok(see_other(
        &frame.base.join(&format!("/posts/{}?done=created", post.id)),
        &[],
    ))
}

/// `GET /posts/{id}`: one post, with edit and delete controls when allowed.
pub(super) async fn show_get(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    frame: Frame,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> HtmlResult {
    let post = load_for(&state, &user, &id, Action::View).await?;
    let author = posts::author_name(&state, &user, &post).await?;
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
pub(super) async fn edit_get(
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
pub(super) async fn edit_post(
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
    posts::update(&state, &post, Some(&fields.title), Some(&fields.body)).await?;
    Ok(see_other(
        &frame.base.join(&format!("/posts/{}?done=updated", post.id)),
        &[],
    ))
}

/// `POST /posts/{id}/delete`: deletes (author or admin), then goes to the list.
pub(super) async fn delete_post(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Path(id): Path<String>,
    base: Base,
    _csrf: Input<NoFields>,
) -> HtmlResult {
    let post = load_for(&state, &user, &id, Action::Delete).await?;
    posts::delete(&state, &post).await?;
    Ok(see_other(&base.join("/posts?done=deleted"), &[]))
}
