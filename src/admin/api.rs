//! `/api/admin/users`: the JSON side of the admin area (see [`super::routes`]).

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::domain::{flex_bool, nfkc_lower, FieldErrors, RoleName, IMPLICIT_ROLE};
use crate::state::AppState;
use crate::store::admin::{RoleEdit, UserChange};
use crate::web::error::{axum_json, ApiError};
use crate::web::extract::Client;
use crate::web::input::{Input, NoFields};
use crate::web::openapi::{CsrfHeader, ErrorBody};
use crate::web::roles::RequireAdmin;
use crate::web::view::{self};
use utoipa::ToSchema;

use super::routes::*;

// ---- JSON API ----

pub(super) type ApiResult = Result<Response, ApiError>;

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
pub(super) async fn api_list(
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
pub(super) async fn api_show(
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
pub(super) enum RolesField {
    List(Vec<String>),
    Text(String),
}

/// The body of `PATCH /api/admin/users/{id}`. Other fields (`id`, `email`…) are ignored.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(super) struct AdminPatch {
    #[serde(default, deserialize_with = "flex_bool")]
    locked: Option<bool>,
    roles: Option<RolesField>,
    role: Option<String>,
}

pub(super) fn is_implicit(name: &str) -> bool {
    nfkc_lower(name.trim()) == IMPLICIT_ROLE
}

/// Turns the body into a change; every bad field reported at once.
pub(super) fn parse_patch(patch: &AdminPatch) -> Result<(UserChange, &'static str), FieldErrors> {
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
pub(super) fn changed_response(
    status: StatusCode,
    body: serde_json::Value,
    applied: &Applied,
) -> Response {
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
pub(super) async fn api_patch(
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
pub(super) async fn api_delete(
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
pub(super) async fn api_revoke_sessions(
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
