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

use axum::response::Response;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::web::error::axum_json;
use crate::web::openapi::ErrorBody;
use crate::{account, admin, auth, mfa, passkeys, posts, tokens};

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
        auth::api::csrf_get,
        auth::api::verify_auth,
        auth::api::login,
        auth::api::logout,
        auth::api::signup,
        crate::forward_auth::api::check,
        crate::forward_auth::api::forward,
        account::api::password_forgot,
        account::api::password_reset,
        account::api::password_change,
        account::api::email_verify,
        account::api::email_resend,
        account::api::email_change,
        account::api::sessions_list,
        account::api::sessions_revoke_others,
        account::api::session_revoke,
        mfa::api::status,
        mfa::api::second_step,
        mfa::api::setup,
        mfa::api::confirm,
        mfa::api::recovery_codes,
        mfa::api::disable,
        passkeys::api::list,
        passkeys::api::register_start,
        passkeys::api::register_finish,
        passkeys::api::rename,
        passkeys::api::remove,
        passkeys::api::login_start,
        passkeys::api::login_finish,
        tokens::api::token_create,
        tokens::api::tokens_list,
        tokens::api::token_revoke,
        admin::api::api_list,
        admin::api::api_show,
        admin::api::api_patch,
        admin::api::api_delete,
        admin::api::api_revoke_sessions,
        posts::api::create,
        posts::api::list,
        posts::api::show,
        posts::api::update,
        posts::api::delete,
        openapi_json,
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes, &CommonResponses),
    tags(
        (name = "auth", description = "Sign-up, sign-in and sign-out."),
        (name = "forward-auth", description = "Decisions for reverse proxies protecting other applications."),
        (name = "account", description = "Password, email, sessions and API tokens of the caller."),
        (name = "mfa", description = "The second factor: TOTP, recovery codes and the second step of a sign-in."),
        (name = "passkeys", description = "Passkeys (WebAuthn): adding, listing, naming and removing them, and signing in with one."),
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
            "/auth/forward",
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
