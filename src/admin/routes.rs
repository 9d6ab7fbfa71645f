//! The admin area: `/admin/users` (pages) and `/api/admin/users` (JSON), for administrators
//! only; every handler declares [`RequireAdmin`], so anonymous callers get 401 / a redirect
//! to sign-in and other users 403.
//!
//! - List and search: `?q=` is a prefix of the normalised username or email, `?page=` counts
//!   from 1, [`PAGE_SIZE`] users a page, ordered by username (indexed offset, see
//!   [`crate::store::admin`]).
//! - One user: roles, verified, locked, created, last sign-in, live session count.
//! - Changes: lock / unlock, grant / revoke roles (or replace the list), end all sessions,
//!   delete. Role changes and locks end every session of the user (a privilege change must
//!   start a new session); when admins change their own roles, their current session is
//!   replaced by a new one (new id, new CSRF token) instead of just ending. Admins cannot
//!   lock or delete themselves here, and no change may leave the system without an
//!   unlocked administrator (docs/security.md Z4). Every change is written to the audit log.
//!
//! API routes beyond docs/http-api.md's two: `GET /api/admin/users/{id}` (one user),
//! `DELETE /api/admin/users/{id}` (204) and `DELETE /api/admin/users/{id}/sessions`
//! (200 `{"revoked": n}`). The user objects here are docs/http-api.md's `User` plus `locked`,
//! `last_sign_in_at` and `active_sessions`.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::admin::{Actor as AdminActor, AdminError};
use crate::clock::rfc3339;
use crate::domain::{flex_bool, nfkc_lower, FieldErrors, RoleName, IMPLICIT_ROLE};
use crate::sessions::{self, ActiveSession, NewSession};
use crate::state::AppState;
use crate::store::admin::{self as store, AdminUserRecord, ChangeOutcome, RoleEdit, UserChange};
use crate::store::sessions::ClientInfo;
use crate::user::AuthUser;
use crate::web::error::{axum_json, ApiError};
use crate::web::extract::{see_other, Client};
use crate::web::input::{Input, NoFields};
use crate::web::openapi::{CsrfHeader, ErrorBody};
use crate::web::roles::RequireAdmin;
use crate::web::view::{self, Frame, HtmlError, HtmlResult};
use utoipa::ToSchema;

/// Users per page of the list.
pub const PAGE_SIZE: i64 = 50;

/// Highest page number accepted (far beyond any real user count; keeps the offset in range).
const MAX_PAGE: i64 = 1_000_000_000;

/// Longest search prefix, in characters (an address is at most 254).
const MAX_QUERY: usize = 254;

/// The admin routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(users_get))
        .route("/admin/users/{id}", get(user_get))
        .route("/admin/users/{id}/lock", axum::routing::post(lock_post))
        .route("/admin/users/{id}/roles", axum::routing::post(roles_post))
        .route(
            "/admin/users/{id}/sessions",
            axum::routing::post(sessions_post),
        )
        .route(
            "/admin/users/{id}/delete",
            get(delete_get).post(delete_post),
        )
        .route("/api/admin/users", get(api_list))
        .route(
            "/api/admin/users/{id}",
            get(api_show).patch(api_patch).delete(api_delete),
        )
        .route(
            "/api/admin/users/{id}/sessions",
            axum::routing::delete(api_revoke_sessions),
        )
}

/// The admin view of a user: docs/http-api.md's `User` plus lock state, last sign-in and live
/// session count. Never a password hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AdminUser)]
pub struct AdminUserJson<'a> {
    id: i64,
    username: &'a str,
    email: &'a str,
    email_verified: bool,
    roles: Vec<String>,
    created_at: String,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    locked: bool,
    last_sign_in_at: Option<String>,
    active_sessions: i64,
}

/// The JSON form of an admin user record.
pub fn user_json(u: &AdminUserRecord) -> AdminUserJson<'_> {
    AdminUserJson {
        id: u.id,
        username: &u.username,
        email: &u.email,
        email_verified: u.email_verified,
        roles: u.role_list(),
        created_at: rfc3339(u.created_at),
        first_name: u.first_name.as_deref(),
        last_name: u.last_name.as_deref(),
        locked: u.locked,
        last_sign_in_at: u.last_login_at.map(rfc3339),
        active_sessions: u.active_sessions,
    }
}

// ---- Listing ----

/// A parsed `?q=&page=`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ListQuery {
    /// Normalised prefix, if any.
    q: Option<String>,
    /// 1-based page.
    page: i64,
}

fn parse_q(raw: Option<&str>) -> Result<Option<String>, String> {
    let q = view::query_param(raw, "q")
        .map(|q| nfkc_lower(q.trim()))
        .filter(|q| !q.is_empty());
    if let Some(q) = &q {
        if q.chars().count() > MAX_QUERY {
            return Err(format!("Must be at most {MAX_QUERY} characters."));
        }
        if q.chars().any(char::is_control) {
            return Err("Must not contain control characters.".into());
        }
    }
    Ok(q)
}

fn parse_page(raw: Option<&str>) -> Result<i64, String> {
    match view::query_param(raw, "page").as_deref().map(str::trim) {
        None | Some("") => Ok(1),
        Some(p) => p
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| format!("Must be a whole number from 1 to {MAX_PAGE}.")),
    }
}

fn parse_list_query(raw: Option<&str>) -> Result<ListQuery, FieldErrors> {
    let mut errors = FieldErrors::new();
    let q = errors.check("q", parse_q(raw));
    let page = errors.check("page", parse_page(raw));
    errors.into_result(|| Some(ListQuery { q: q?, page: page? }))
}

async fn list(state: &AppState, query: &ListQuery) -> Result<store::UserPage, ApiError> {
    let offset = (query.page - 1) * PAGE_SIZE;
    Ok(crate::admin::list_users(state, query.q.as_deref(), offset, PAGE_SIZE).await?)
}

// ---- Changes ----

/// A change applied by an admin: the outcome and, when admins changed their own roles, the
/// session that replaces their ended one.
struct Applied {
    outcome: ChangeOutcome,
    new_session: Option<NewSession>,
}

/// Who makes a change: the admin, where from, and whether their session is a "remember me"
/// one (kept when their own session has to be replaced).
struct Actor<'a> {
    user: &'a AuthUser,
    client: &'a ClientInfo,
    remember: bool,
}

impl<'a> Actor<'a> {
    fn new(user: &'a AuthUser, client: &'a ClientInfo, session: Option<&ActiveSession>) -> Self {
        Self {
            user,
            client,
            remember: session.is_some_and(ActiveSession::remember),
        }
    }
}

/// Applies `change` to user `id` for `actor`: the self-protection rules, the store's
/// transaction (with the last-admin rule), the audit log, and a fresh session for an actor
/// whose own sessions ended. `field` names the input field that errors about roles go to.
async fn apply(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    change: &UserChange,
    field: &str,
) -> Result<Applied, ApiError> {
    let Actor {
        user: actor,
        client,
        remember,
    } = *actor;
    let outcome = crate::admin::change_user(state, AdminActor::User(actor), id, change, client)
        .await
        .map_err(|e| match e {
            AdminError::NotFound => ApiError::NotFound,
            AdminError::SelfDelete => ApiError::Validation(FieldErrors::single(
                "user",
                "You cannot delete your own account here.",
            )),
            AdminError::SelfLock => ApiError::Validation(FieldErrors::single(
                "locked",
                "You cannot lock your own account.",
            )),
            AdminError::LastAdmin => {
                let field = if change.delete {
                    "user"
                } else if change.roles.is_some() {
                    field
                } else {
                    "locked"
                };
                ApiError::Validation(FieldErrors::single(
                    field,
                    "At least one unlocked administrator must remain: make someone else an \
                     administrator first.",
                ))
            }
            AdminError::UnknownRole(role) => ApiError::Validation(FieldErrors::single(
                field,
                format!("Unknown role {role:?} (roles are created with `latch role add`)."),
            )),
            AdminError::Store(e) => e.into(),
        })?;
    let mut new_session = None;
    if id == actor.id && outcome.sessions_ended > 0 && outcome.after.is_some() {
        new_session = sessions::reissue(state, id, remember, client).await?;
    }
    Ok(Applied {
        outcome,
        new_session,
    })
}

/// Ends every session and API token of user `id` for the admin (404 when there is no such
/// user); returns how many sessions ended.
async fn revoke_sessions(
    state: &AppState,
    actor: &AuthUser,
    client: &ClientInfo,
    id: i64,
) -> Result<u64, ApiError> {
    crate::admin::end_all_sessions(state, crate::admin::Actor::User(actor), id, client)
        .await
        .map_err(|e| match e {
            AdminError::NotFound => ApiError::NotFound,
            other => ApiError::from(other),
        })
}

// ---- JSON API ----

type ApiResult = Result<Response, ApiError>;

/// `GET /api/admin/users?q=&page=`: `{"users", "page", "total", "per_page"}`.
#[utoipa::path(
    get, path = "/api/admin/users", tag = "admin", operation_id = "admin_users_list", security(("session" = []), ("bearer" = [])),
    params(("q" = Option<String>, Query, description = "Prefix of the username or email."), ("page" = Option<i64>, Query, description = "Page, from 1.")),
    responses(
        (status = 200, description = "One page of users.", body = AdminUserPage,
            links(("show_user" = (operation_id = "admin_user_show", parameters(("id" = "$response.body#/users/0/id")))))),
        (status = 403, description = "`forbidden`: not an administrator.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: bad `q` or `page`.", body = ErrorBody),
    ),
)]
async fn api_list(
    State(state): State<AppState>,
    RequireAdmin(_admin): RequireAdmin,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let query = parse_list_query(raw.as_deref()).map_err(ApiError::Validation)?;
    let page = list(&state, &query).await?;
    let users: Vec<AdminUserJson<'_>> = page.users.iter().map(user_json).collect();
    Ok(axum_json(&json!({
        "users": users,
        "page": query.page,
        "total": page.total,
        "per_page": PAGE_SIZE,
    })))
}

/// `GET /api/admin/users/{id}`: `{"user": …}`.
#[utoipa::path(
    get, path = "/api/admin/users/{id}", tag = "admin", operation_id = "admin_user_show", security(("session" = []), ("bearer" = [])), params(("id" = i64, Path, description = "User id.")),
    responses(
        (status = 200, description = "The user.", body = AdminUserEnvelope),
        (status = 403, description = "`forbidden`: not an administrator.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user.", body = ErrorBody),
    ),
)]
async fn api_show(
    State(state): State<AppState>,
    RequireAdmin(_admin): RequireAdmin,
    Path(id): Path<String>,
) -> ApiResult {
    let id = view::parse_id(&id)?;
    let user = crate::admin::find_user(&state, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(axum_json(&json!({ "user": user_json(&user) })))
}

/// `roles` as a JSON list or, from a form, one string of names separated by spaces or commas.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum RolesField {
    List(Vec<String>),
    Text(String),
}

/// The body of `PATCH /api/admin/users/{id}`. Other fields (`id`, `email`…) are ignored.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
struct AdminPatch {
    #[serde(default, deserialize_with = "flex_bool")]
    locked: Option<bool>,
    roles: Option<RolesField>,
    role: Option<String>,
}

fn is_implicit(name: &str) -> bool {
    nfkc_lower(name.trim()) == IMPLICIT_ROLE
}

/// Turns the body into a change; every bad field reported at once.
fn parse_patch(patch: &AdminPatch) -> Result<(UserChange, &'static str), FieldErrors> {
    let mut errors = FieldErrors::new();
    if patch.locked.is_none() && patch.roles.is_none() && patch.role.is_none() {
        errors.add(
            "roles",
            "Nothing to change: give locked, roles (the whole list) or role (one to add).",
        );
        return Err(errors);
    }
    if patch.roles.is_some() && patch.role.is_some() {
        errors.add(
            "role",
            "Give either roles (the whole list) or role (one to add), not both.",
        );
    }
    let mut roles = None;
    let mut field = "roles";
    if let Some(given) = &patch.roles {
        let names: Vec<String> = match given {
            RolesField::List(list) => list.clone(),
            RolesField::Text(text) => text
                .split(|c: char| c == ',' || c.is_whitespace())
                .map(str::to_owned)
                .collect(),
        };
        let mut list = Vec::new();
        for name in names
            .iter()
            .filter(|n| !n.trim().is_empty() && !is_implicit(n))
        {
            match RoleName::parse(name) {
                Ok(role) => list.push(role),
                Err(message) => errors.add("roles", format!("{name:?}: {message}")),
            }
        }
        roles = Some(RoleEdit::Set(list));
    } else if let Some(name) = &patch.role {
        field = "role";
        if !is_implicit(name) {
            roles = errors
                .check("role", RoleName::parse(name))
                .map(RoleEdit::Grant);
        }
    }
    errors.into_result(|| {
        Some((
            UserChange {
                roles,
                locked: patch.locked,
                delete: false,
            },
            field,
        ))
    })
}

/// `{"user": …}`, and when the caller's own session was replaced, its cookie and new CSRF
/// token (as sign-in answers them).
fn changed_response(status: StatusCode, body: serde_json::Value, applied: &Applied) -> Response {
    let mut response = (status, axum_json(&body)).into_response();
    if let Some(new) = &applied.new_session {
        if let Ok(token) = HeaderValue::from_str(&new.session.csrf_token()) {
            response
                .headers_mut()
                .insert(HeaderName::from_static("x-csrf-token"), token);
        }
        if let Ok(cookie) = HeaderValue::from_str(&new.set_cookie) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    response
}

/// `PATCH /api/admin/users/{id}`: `locked`, and `roles` (the whole list) or `role` (one to
/// add). 200 `{"user": …}`; 404 unknown id; 422 bad values, unknown roles, the last admin.
#[utoipa::path(
    patch, path = "/api/admin/users/{id}", tag = "admin", operation_id = "admin_user_update", security(("session" = []), ("bearer" = [])), params(CsrfHeader, ("id" = i64, Path, description = "User id.")), request_body(content((AdminPatch = "application/json"), (AdminPatch = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Changed; when admins change their own roles, their session is replaced.", body = AdminUserEnvelope),
        (status = 403, description = "`forbidden`: not an administrator.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: nothing to change, a bad or unknown role, locking oneself, or no unlocked administrator left.", body = ErrorBody),
    ),
)]
async fn api_patch(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    Client(client): Client,
    Path(id): Path<String>,
    input: Input<AdminPatch>,
) -> ApiResult {
    let id = view::parse_id(&id)?;
    let (change, field) = parse_patch(&input.data).map_err(ApiError::Validation)?;
    let actor = Actor::new(&admin, &client, input.session.as_ref());
    let applied = apply(&state, &actor, id, &change, field).await?;
    let user = applied.outcome.after.as_ref().ok_or(ApiError::NotFound)?;
    let body = json!({ "user": user_json(user) });
    Ok(changed_response(StatusCode::OK, body, &applied))
}

/// `DELETE /api/admin/users/{id}`: 204.
#[utoipa::path(
    delete, path = "/api/admin/users/{id}", tag = "admin", operation_id = "admin_user_delete", security(("session" = []), ("bearer" = [])), params(CsrfHeader, ("id" = i64, Path, description = "User id.")),
    responses(
        (status = 204, description = "The account, its sessions and its posts are deleted."),
        (status = 403, description = "`forbidden`: not an administrator.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user.", body = ErrorBody),
        (status = 422, description = "`validation_failed`: deleting oneself or the last unlocked administrator.", body = ErrorBody),
    ),
)]
async fn api_delete(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    Client(client): Client,
    Path(id): Path<String>,
    csrf: Input<NoFields>,
) -> ApiResult {
    let id = view::parse_id(&id)?;
    let change = UserChange {
        delete: true,
        ..UserChange::default()
    };
    let actor = Actor::new(&admin, &client, csrf.session.as_ref());
    apply(&state, &actor, id, &change, "user").await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /api/admin/users/{id}/sessions`: 200 `{"revoked": n}`.
#[utoipa::path(
    delete, path = "/api/admin/users/{id}/sessions", tag = "admin", operation_id = "admin_user_sessions_revoke", security(("session" = []), ("bearer" = [])), params(CsrfHeader, ("id" = i64, Path, description = "User id.")),
    responses(
        (status = 200, description = "Every session of the user ended.", body = Revoked),
        (status = 403, description = "`forbidden`: not an administrator.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user.", body = ErrorBody),
    ),
)]
async fn api_revoke_sessions(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    Client(client): Client,
    Path(id): Path<String>,
    _csrf: Input<NoFields>,
) -> ApiResult {
    let id = view::parse_id(&id)?;
    let revoked = revoke_sessions(&state, &admin, &client, id).await?;
    Ok(axum_json(&json!({ "revoked": revoked })))
}

// ---- Pages ----

/// `GET /admin/users?q=&page=`: search and pages.
async fn users_get(
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
async fn user_page(
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

async fn load_target(state: &AppState, id: &str) -> Result<AdminUserRecord, ApiError> {
    let id = view::parse_id(id)?;
    crate::admin::find_user(state, id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// `GET /admin/users/{id}`.
async fn user_get(
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
async fn page_change(
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
                "/dashboard".to_owned()
            } else {
                format!("/admin/users/{}?done={done}", target.id)
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
struct LockForm {
    #[serde(default, deserialize_with = "flex_bool")]
    locked: Option<bool>,
}

/// `POST /admin/users/{id}/lock`.
async fn lock_post(
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
struct RoleForm {
    role: Option<String>,
    action: Option<String>,
}

/// `POST /admin/users/{id}/roles`.
async fn roles_post(
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
async fn sessions_post(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    Client(client): Client,
    Path(id): Path<String>,
    _csrf: Input<NoFields>,
) -> HtmlResult {
    let id = view::parse_id(&id)?;
    revoke_sessions(&state, &admin, &client, id).await?;
    if id == admin.id {
        // That included this very session.
        return Ok(see_other("/login", &[sessions::removal_cookie(&state)]));
    }
    Ok(see_other(
        &format!("/admin/users/{id}?done=sessions_revoked"),
        &[],
    ))
}

fn delete_page(
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
async fn delete_get(
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
struct DeleteForm {
    confirm_username: Option<String>,
}

/// `POST /admin/users/{id}/delete`: deletes when the typed username matches.
async fn delete_post(
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
        Ok(_) => Ok(see_other("/admin/users?done=user_deleted", &[])),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_queries() {
        assert_eq!(
            parse_list_query(None).unwrap(),
            ListQuery { q: None, page: 1 }
        );
        assert_eq!(
            parse_list_query(Some("q=+Ａlice+&page=3")).unwrap(),
            ListQuery {
                q: Some("alice".into()),
                page: 3
            }
        );
        for bad in ["page=0", "page=-1", "page=x", "page=1000000001", "q=a%00b"] {
            assert!(parse_list_query(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn patches() {
        let p = AdminPatch {
            roles: Some(RolesField::List(vec!["Admin".into(), "user".into()])),
            ..AdminPatch::default()
        };
        let (change, field) = parse_patch(&p).unwrap();
        assert_eq!(field, "roles");
        assert_eq!(change.roles, Some(RoleEdit::Set(vec![RoleName::admin()])));
        let p = AdminPatch {
            roles: Some(RolesField::Text("a b".into())),
            role: Some("c".into()),
            ..AdminPatch::default()
        };
        assert!(parse_patch(&p).unwrap_err().first("role").is_some());
        assert!(parse_patch(&AdminPatch::default()).is_err());
        let p = AdminPatch {
            roles: Some(RolesField::List(vec!["bad name".into()])),
            ..AdminPatch::default()
        };
        assert!(parse_patch(&p).unwrap_err().first("roles").is_some());
        let p = AdminPatch {
            locked: Some(true),
            ..AdminPatch::default()
        };
        assert_eq!(parse_patch(&p).unwrap().0.locked, Some(true));
    }
}

// ---- OpenAPI schemas of the admin bodies ----

/// One page of the admin user list.
#[derive(Debug, ToSchema)]
pub struct AdminUserPage {
    /// Users of this page, by username.
    pub users: Vec<AdminUserJson<'static>>,
    /// This page (from 1).
    pub page: i64,
    /// Users matching the search.
    pub total: i64,
    /// Users per page.
    pub per_page: i64,
}

/// `{"user": AdminUser}`.
#[derive(Debug, ToSchema)]
pub struct AdminUserEnvelope {
    /// The user.
    pub user: AdminUserJson<'static>,
}

/// `{"revoked": n}`.
#[derive(Debug, ToSchema)]
pub struct Revoked {
    /// Sessions ended.
    pub revoked: u64,
}
