//! The OpenAPI 3.1 document of the JSON API, generated from the code: each JSON handler
//! carries a `#[utoipa::path]` attribute and each body type derives `ToSchema`, so the
//! document follows the handlers instead of being written next to them. It is served at
//! `GET /api/openapi.json`; `docs/openapi.json` is a copy that a test keeps equal to it
//! (`LATCH_WRITE_OPENAPI=1 cargo test openapi` rewrites the copy), and CI runs schemathesis
//! against a live server with it.
//!
//! Each handler lists the answers particular to it. The answers that every operation of a
//! kind can give are added here by [`CommonResponses`], so none is forgotten: a body that
//! cannot be read (400, 413, 415, 422 for a field of the wrong type), a missing CSRF token
//! (403 `csrf_failed`) where the `X-CSRF-Token` header is listed, 401 where sign-in is
//! required, and 503 when the database is unreachable.
//!
//! Some response bodies are built with `json!` in the handlers; their shapes are described
//! by the types below, and schemathesis' response-schema check (`.ci/schemathesis.sh`)
//! catches any drift between the two.

use std::collections::BTreeMap;

use axum::response::Response;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use super::error::axum_json;
use super::{account_api, admin, api, posts};
use crate::auth::UserJson;

/// The document's description, shown at its top.
const DESCRIPTION: &str = "The JSON API of latch: sign-up, sign-in, sessions, the account \
lifecycle, API tokens, the admin area and the posts demo. Bodies may be sent as \
`application/json` or `application/x-www-form-urlencoded`. Requests are authenticated by the \
session cookie (then every state change, and every sign-in and sign-up, needs the CSRF token \
of `GET /api/auth/csrf` in `X-CSRF-Token`) or by `Authorization: Bearer <API token>` (no CSRF \
token needed). Every error body is `{\"error\": {\"code\", \"message\", \"fields\"?}}` with an \
`X-Request-Id` response header.";

/// The whole JSON API.
#[derive(OpenApi)]
#[openapi(
    info(title = "latch", description = DESCRIPTION),
    paths(
        api::csrf_get,
        api::verify_auth,
        api::login,
        api::logout,
        api::signup,
        api::forward_auth,
        account_api::password_forgot,
        account_api::password_reset,
        account_api::password_change,
        account_api::email_verify,
        account_api::email_resend,
        account_api::email_change,
        account_api::sessions_list,
        account_api::sessions_revoke_others,
        account_api::session_revoke,
        account_api::token_create,
        account_api::tokens_list,
        account_api::token_revoke,
        admin::api_list,
        admin::api_show,
        admin::api_patch,
        admin::api_delete,
        admin::api_revoke_sessions,
        posts::api_create,
        posts::api_list,
        posts::api_show,
        posts::api_update,
        posts::api_delete,
        openapi_json,
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes, &CommonResponses),
    tags(
        (name = "auth", description = "Sign-up, sign-in, sign-out and forward-auth."),
        (name = "account", description = "Password, email, sessions and API tokens of the caller."),
        (name = "admin", description = "User administration (the `admin` role)."),
        (name = "posts", description = "The ownership demo: the caller's posts."),
        (name = "meta", description = "This document."),
    )
)]
pub struct ApiDoc;

/// The generated document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as JSON, with the spelling of link fields corrected: utoipa 5 writes
/// `operation_id`, `operation_ref` and `request_body` in Link objects, where OpenAPI (and
/// schemathesis) read `operationId`, `operationRef` and `requestBody`.
pub fn document_value() -> serde_json::Value {
    let mut value = serde_json::to_value(document()).unwrap_or_default();
    fix_links(&mut value);
    value
}

fn fix_links(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(links)) = map.get_mut("links") {
                for link in links.values_mut() {
                    if let serde_json::Value::Object(link) = link {
                        for (from, to) in [
                            ("operation_id", "operationId"),
                            ("operation_ref", "operationRef"),
                            ("request_body", "requestBody"),
                        ] {
                            if let Some(v) = link.remove(from) {
                                link.insert(to.to_owned(), v);
                            }
                        }
                    }
                }
            }
            map.values_mut().for_each(fix_links);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(fix_links),
        _ => {}
    }
}

/// The document as pretty-printed JSON with a final newline (the form of `docs/openapi.json`).
pub fn document_json() -> String {
    let mut text = serde_json::to_string_pretty(&document_value()).unwrap_or_default();
    text.push('\n');
    text
}

/// `GET /api/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of the JSON API.",
        content_type = "application/json", body = Object)),
)]
pub async fn openapi_json() -> Response {
    axum_json(&document_value())
}

/// The CSRF token of a cookie session, required on its state changes and on every sign-in
/// and sign-up; requests with a valid `Authorization: Bearer` token need none.
#[derive(Debug, IntoParams)]
#[into_params(names("X-CSRF-Token"), parameter_in = Header)]
pub struct CsrfHeader(
    /// The token from `GET /api/auth/csrf` (`X-CSRFToken` is accepted too; forms may send a
    /// `csrf_token` field instead).
    pub Option<String>,
);

/// Every error: `{"error": {"code", "message", "fields"?}}`.
#[derive(Debug, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of an error body.
#[derive(Debug, ToSchema)]
pub struct ErrorDetail {
    /// Stable `snake_case` code to branch on, e.g. `invalid_credentials`, `csrf_failed`,
    /// `validation_failed`, `not_found`.
    pub code: String,
    /// For a person.
    pub message: String,
    /// Validation errors only: every failing field with its messages.
    pub fields: Option<BTreeMap<String, Vec<String>>>,
}

/// `{"csrf_token": …}`.
#[derive(Debug, ToSchema)]
pub struct CsrfToken {
    /// Send it in `X-CSRF-Token`; it changes when the session does (sign-in, sign-up).
    pub csrf_token: String,
}

/// `{"user": User}`.
#[derive(Debug, ToSchema)]
pub struct UserEnvelope {
    /// The user.
    pub user: UserJson<'static>,
}

/// One of the caller's sessions; `id` is a public id, not the cookie value.
#[derive(Debug, ToSchema)]
pub struct Session {
    /// Public id (for `DELETE /api/auth/sessions/{id}`).
    pub id: i64,
    /// When it started (RFC 3339).
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Last request (RFC 3339, at most a minute behind).
    #[schema(format = DateTime)]
    pub last_seen_at: String,
    /// Client address at creation.
    pub ip: Option<String>,
    /// A short description of the client.
    pub user_agent: String,
    /// Whether this is the session of the request.
    pub current: bool,
}

/// `{"sessions": [Session]}`.
#[derive(Debug, ToSchema)]
pub struct SessionList {
    /// Live sessions of the caller.
    pub sessions: Vec<Session>,
}

/// An API token, never its secret.
#[derive(Debug, ToSchema)]
pub struct Token {
    /// Public id (for `DELETE /api/auth/tokens/{id}`).
    pub id: i64,
    /// The owner's label.
    pub name: String,
    /// Creation time (RFC 3339).
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Last use (RFC 3339), if any.
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    /// Expiry (RFC 3339), if any.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// `{"token": Token, "secret": …}`: the secret is shown this once.
#[derive(Debug, ToSchema)]
pub struct TokenCreated {
    /// The new token.
    pub token: Token,
    /// Send as `Authorization: Bearer <secret>`.
    pub secret: String,
}

/// `{"tokens": [Token]}`.
#[derive(Debug, ToSchema)]
pub struct TokenList {
    /// The caller's tokens.
    pub tokens: Vec<Token>,
}

/// One page of the admin user list.
#[derive(Debug, ToSchema)]
pub struct AdminUserPage {
    /// Users of this page, by username.
    pub users: Vec<admin::AdminUserJson<'static>>,
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
    pub user: admin::AdminUserJson<'static>,
}

/// `{"revoked": n}`.
#[derive(Debug, ToSchema)]
pub struct Revoked {
    /// Sessions ended.
    pub revoked: u64,
}

/// `{"post": Post}`.
#[derive(Debug, ToSchema)]
pub struct PostEnvelope {
    /// The post.
    pub post: posts::PostJson<'static>,
}

/// `{"posts": [Post]}`.
#[derive(Debug, ToSchema)]
pub struct PostList {
    /// The caller's posts, newest first.
    pub posts: Vec<posts::PostJson<'static>>,
}

/// Adds the two ways to authenticate.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "latch_session",
                "The session cookie set at sign-in and sign-up (`__Host-latch_session` behind \
                 https). State changes need the `X-CSRF-Token` header as well.",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token from `POST /api/auth/tokens`; no CSRF token needed, and \
                         any cookie is ignored.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Adds the answers common to a kind of operation (see the module docs).
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            if path == "/api/openapi.json" {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
                &mut item.put,
            ];
            for operation in operations.into_iter().flatten() {
                add_common(operation);
            }
        }
    }
}

fn add_common(operation: &mut Operation) {
    let csrf = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| p.name == "X-CSRF-Token");
    // Sign-in is required when every listed requirement names a scheme (an empty one means
    // anonymous callers are served too).
    let signed_in = operation.security.as_ref().is_some_and(|list| {
        !list.is_empty() && list.iter().all(|s| s != &SecurityRequirement::default())
    });
    let mut add = |status: &str, description: &str| {
        let responses = &mut operation.responses.responses;
        match responses.get_mut(status) {
            None => {
                responses.insert(status.to_owned(), error_response(description));
            }
            Some(RefOr::T(existing)) if matches!(status, "400" | "403" | "422") => {
                existing.description = format!("{} Or: {description}", existing.description);
            }
            Some(_) => {}
        }
    };
    if operation.request_body.is_some() {
        add(
            "400",
            "`bad_request`: the body cannot be read (malformed JSON, not an object, invalid \
             UTF-8, a repeated form field).",
        );
        add("413", "`payload_too_large`: the body is over 1 MiB.");
        add(
            "415",
            "`unsupported_media_type`: a body that is neither JSON nor a URL-encoded form.",
        );
        add(
            "422",
            "`validation_failed`: a field has the wrong type or a NUL character; `fields` \
             names it.",
        );
    }
    if csrf {
        add(
            "403",
            "`csrf_failed`: the CSRF token is missing or wrong (cookie sessions and \
             anonymous callers).",
        );
    }
    if signed_in {
        add("401", "`unauthenticated`: not signed in.");
    }
    add(
        "503",
        "`service_unavailable`: the database is unreachable; try again shortly.",
    );
}

/// An error answer with the envelope schema.
fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/openapi.json` is the generated document; `LATCH_WRITE_OPENAPI=1` rewrites it.
    #[test]
    fn openapi_document_matches_docs_copy() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
        let generated = document_json();
        if std::env::var_os("LATCH_WRITE_OPENAPI").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let saved = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            saved == generated,
            "docs/openapi.json differs from the generated document; rewrite it with \
             `LATCH_WRITE_OPENAPI=1 cargo test openapi` and review the diff"
        );
    }

    #[test]
    fn openapi_document_is_3_1_and_complete() {
        let doc: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths = doc["paths"].as_object().unwrap();
        for path in [
            "/api/auth/login",
            "/api/auth/signup",
            "/api/auth/email/change",
            "/auth/check",
            "/api/admin/users/{id}",
            "/api/posts/{id}",
        ] {
            assert!(paths.contains_key(path), "{path}");
        }
        let login = &paths["/api/auth/login"]["post"]["responses"];
        for status in ["200", "401", "403", "422", "429", "415", "413"] {
            assert!(login.get(status).is_some(), "login {status}");
        }
        let link = &paths["/api/auth/tokens"]["post"]["responses"]["201"]["links"]["revoke_token"];
        assert_eq!(link["operationId"], "token_revoke");
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["session"]["in"], "cookie");
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
    }
}
