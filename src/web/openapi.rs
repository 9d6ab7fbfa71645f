//! Schema types of the JSON bodies that handlers build with `json!`, shared by every
//! capability's `#[utoipa::path]` attributes (the document itself is assembled in
//! [`crate::openapi`]).

use std::collections::BTreeMap;

use utoipa::{IntoParams, ToSchema};

use crate::user::UserJson;

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
    /// How the session was made: each factor (`password`, `totp`, `recovery_code`) with the
    /// time it was proven.
    pub factors: Vec<SessionFactor>,
    /// Whether its sign-in proved a second factor.
    pub two_factor: bool,
}

/// One factor of a session.
#[derive(Debug, ToSchema)]
pub struct SessionFactor {
    /// `password`, `totp` or `recovery_code`.
    pub factor: String,
    /// When it was proven (RFC 3339).
    #[schema(format = DateTime)]
    pub at: String,
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
