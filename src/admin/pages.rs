//! `/admin/users`: the pages of the admin area (see [`super::routes`]).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use minijinja::context;
use serde::Deserialize;

use crate::domain::{flex_bool, nfkc_lower, RoleName};
use crate::sessions::{self};
use crate::state::AppState;
use crate::store::admin::{self as store, AdminUserRecord, RoleEdit, UserChange};
use crate::user::AuthUser;
use crate::web::base::Base;
use crate::web::error::ApiError;
use crate::web::extract::{see_other, Client};
use crate::web::input::{Input, NoFields};
use crate::web::roles::RequireAdmin;
use crate::web::view::{self, Frame, HtmlError, HtmlResult};

use super::routes::*;

// ---- Pages ----

/// `GET /admin/users?q=&page=`: search and pages.
pub(super) async fn users_get(
    State(state): State<AppState>,
    RequireAdmin(_admin): RequireAdmin,
    frame: Frame,
    RawQuery(raw): RawQuery,
) -> HtmlResult {
    // A bad page number shows the first page; a bad search shows its message and nobody.
    let page_number = parse_page(raw.as_deref()).unwrap_or(1);
    let (q, q_error, page) = match parse_q(raw.as_deref()) {
        Ok(q) => {
            let query = ListQuery {
                q,
                page: page_number,
            };
            let page = list(&state, &query).await?;
            (query.q, None, page)
        }
        Err(message) => (
            view::query_param(raw.as_deref(), "q"),
            Some(message),
            store::UserPage::default(),
        ),
    };
    let pages = ((page.total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let users: Vec<AdminUserJson<'_>> = page.users.iter().map(user_json).collect();
    let done = view::query_param(raw.as_deref(), "done");
    view::render(
        &state,
        &frame,
        "admin_users.html",
        StatusCode::OK,
        view::notice(done.as_deref()),
        context! {
            users,
            q,
            q_error,
            page => page_number,
            pages,
            total => page.total,
            per_page => PAGE_SIZE,
        },
    )
}

/// Renders one user's page, optionally with an error above the controls.
pub(super) async fn user_page(
    state: &AppState,
    frame: &Frame,
    admin: &AuthUser,
    target: &AdminUserRecord,
    status: StatusCode,
    notice: Option<&str>,
    form_error: Option<String>,
) -> HtmlResult {
    let all_roles = crate::admin::role_names(state).await?;
    view::render(
        state,
        frame,
        "admin_user.html",
        status,
        notice,
        context! {
            target => user_json(target),
            all_roles,
            is_self => target.id == admin.id,
            form_error,
        },
    )
}

pub(super) async fn load_target(state: &AppState, id: &str) -> Result<AdminUserRecord, ApiError> {
    let id = view::parse_id(id)?;
    crate::admin::find_user(state, id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// `GET /admin/users/{id}`.
pub(super) async fn user_get(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    frame: Frame,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> HtmlResult {
    let target = load_target(&state, &id).await?;
    let done = view::query_param(raw.as_deref(), "done");
    user_page(
        &state,
        &frame,
        &admin,
        &target,
        StatusCode::OK,
        view::notice(done.as_deref()),
        None,
    )
    .await
}

/// Runs a change from one of the user page's forms: back to the user page with a notice, or
/// the page again with the error (422).
pub(super) async fn page_change(
    state: &AppState,
    frame: &Frame,
    actor: &Actor<'_>,
    target: &AdminUserRecord,
    change: &UserChange,
    field: &str,
    done: &str,
) -> HtmlResult {
    let admin = actor.user;
    match apply(state, actor, target.id, change, field).await {
        Ok(applied) => {
            let cookies: Vec<String> = applied
                .new_session
                .iter()
                .map(|s| s.set_cookie.clone())
                .collect();
            // Admins who just gave up their own admin role cannot see this area any more.
            let still_admin = applied
                .outcome
                .after
                .as_ref()
                .is_some_and(AdminUserRecord::is_active_admin);
            let location = if target.id == admin.id && !still_admin {
                frame.base.join("/dashboard")
            } else {
                frame
                    .base
                    .join(&format!("/admin/users/{}?done={done}", target.id))
            };
            Ok(see_other(&location, &cookies))
        }
        Err(ApiError::Validation(errors)) => {
            let message = errors
                .first(field)
                .or_else(|| errors.first("locked"))
                .or_else(|| errors.first("user"))
                .unwrap_or("This change is not allowed.")
                .to_owned();
            user_page(
                state,
                frame,
                admin,
                target,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(message),
            )
            .await
        }
        Err(e) => Err(HtmlError(e)),
    }
}

/// The lock form: `locked` = true or false.
#[derive(Debug, Default, Deserialize)]
pub(super) struct LockForm {
    #[serde(default, deserialize_with = "flex_bool")]
    locked: Option<bool>,
}

/// `POST /admin/users/{id}/lock`.
pub(super) async fn lock_post(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    frame: Frame,
    Client(client): Client,
    Path(id): Path<String>,
    input: Input<LockForm>,
) -> HtmlResult {
    let target = load_target(&state, &id).await?;
    let locked = input.data.locked.unwrap_or(true);
    let change = UserChange {
        locked: Some(locked),
        ..UserChange::default()
    };
    let done = if locked { "locked" } else { "unlocked" };
    let actor = Actor::new(&admin, &client, input.session.as_ref());
    page_change(&state, &frame, &actor, &target, &change, "locked", done).await
}

/// The role form: `role` and `action` = grant or revoke.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RoleForm {
    role: Option<String>,
    action: Option<String>,
}

/// `POST /admin/users/{id}/roles`.
pub(super) async fn roles_post(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    frame: Frame,
    Client(client): Client,
    Path(id): Path<String>,
    input: Input<RoleForm>,
) -> HtmlResult {
    let target = load_target(&state, &id).await?;
    let parsed = RoleName::parse(input.data.role.as_deref().unwrap_or(""));
    let edit = match (parsed, input.data.action.as_deref()) {
        (Ok(role), Some("grant")) => Ok((RoleEdit::Grant(role), "role_granted")),
        (Ok(role), Some("revoke")) => Ok((RoleEdit::Revoke(role), "role_revoked")),
        (Ok(_), _) => Err("Choose grant or revoke.".to_owned()),
        (Err(message), _) => Err(message),
    };
    match edit {
        Ok((edit, done)) => {
            let change = UserChange {
                roles: Some(edit),
                ..UserChange::default()
            };
            let actor = Actor::new(&admin, &client, input.session.as_ref());
            page_change(&state, &frame, &actor, &target, &change, "role", done).await
        }
        Err(message) => {
            user_page(
                &state,
                &frame,
                &admin,
                &target,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(message),
            )
            .await
        }
    }
}

/// `POST /admin/users/{id}/sessions`: ends all of the user's sessions.
pub(super) async fn sessions_post(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    Client(client): Client,
    Path(id): Path<String>,
    base: Base,
    _csrf: Input<NoFields>,
) -> HtmlResult {
    let id = view::parse_id(&id)?;
    revoke_sessions(&state, &admin, &client, id).await?;
    if id == admin.id {
        // That included this very session.
        return Ok(see_other(
            &base.join("/login"),
            &[sessions::removal_cookie(&state)],
        ));
    }
    Ok(see_other(
        &base.join(&format!("/admin/users/{id}?done=sessions_revoked")),
        &[],
    ))
}

/// `POST /admin/users/{id}/mfa-reset`: removes the user's second factors and ends their
/// sessions (through [`crate::mfa::reset`], like `latch user mfa-reset`).
pub(super) async fn mfa_reset_post(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    Client(client): Client,
    Path(id): Path<String>,
    base: Base,
    _csrf: Input<NoFields>,
) -> HtmlResult {
    let target = load_target(&state, &id).await?;
    let by = crate::admin::Actor::User(&admin).by();
    crate::mfa::reset(&state, target.id, &by, &client).await?;
    if target.id == admin.id {
        // That ended this very session.
        return Ok(see_other(
            &base.join("/login"),
            &[sessions::removal_cookie(&state)],
        ));
    }
    Ok(see_other(
        &base.join(&format!("/admin/users/{}?done=mfa_reset", target.id)),
        &[],
    ))
}

pub(super) fn delete_page(
    state: &AppState,
    frame: &Frame,
    target: &AdminUserRecord,
    status: StatusCode,
    error: Option<String>,
) -> HtmlResult {
    view::render(
        state,
        frame,
        "admin_user_delete.html",
        status,
        None,
        context! { target => user_json(target), error },
    )
}

/// `GET /admin/users/{id}/delete`: the confirmation step.
pub(super) async fn delete_get(
    State(state): State<AppState>,
    RequireAdmin(_admin): RequireAdmin,
    frame: Frame,
    Path(id): Path<String>,
) -> HtmlResult {
    let target = load_target(&state, &id).await?;
    delete_page(&state, &frame, &target, StatusCode::OK, None)
}

/// The confirmation form: the username typed again.
#[derive(Debug, Default, Deserialize)]
pub(super) struct DeleteForm {
    confirm_username: Option<String>,
}

/// `POST /admin/users/{id}/delete`: deletes when the typed username matches.
pub(super) async fn delete_post(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    frame: Frame,
    Client(client): Client,
    Path(id): Path<String>,
    input: Input<DeleteForm>,
) -> HtmlResult {
    let target = load_target(&state, &id).await?;
    let typed = nfkc_lower(input.data.confirm_username.as_deref().unwrap_or("").trim());
    if typed != nfkc_lower(&target.username) {
        return delete_page(
            &state,
            &frame,
            &target,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Type the username exactly to confirm.".into()),
        );
    }
    let change = UserChange {
        delete: true,
        ..UserChange::default()
    };
    let actor = Actor::new(&admin, &client, input.session.as_ref());
    match apply(&state, &actor, target.id, &change, "user").await {
        Ok(_) => Ok(see_other(
            &frame.base.join("/admin/users?done=user_deleted"),
            &[],
        )),
        Err(ApiError::Validation(errors)) => delete_page(
            &state,
            &frame,
            &target,
            StatusCode::UNPROCESSABLE_ENTITY,
            errors.first("user").map(str::to_owned),
        ),
        Err(e) => Err(HtmlError(e)),
    }
}
