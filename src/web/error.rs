//! Every failure a request can end in, mapped to HTTP once: JSON for the API, a page for
//! browsers. Causes of server errors are logged here and never shown to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::FieldErrors;
use crate::passwords::HashError;
use crate::store::StoreError;

/// A request's failure, with the status and code docs/http-api.md gives it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body cannot be read (malformed JSON, invalid UTF-8, repeated fields).
    #[error("{0}")]
    BadRequest(String),
    /// 400: unknown, used or expired mailed token.
    #[error("invalid token")]
    InvalidToken,
    /// 401: not signed in.
    #[error("not signed in")]
    Unauthenticated,
    /// 401: wrong password or unknown account.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// 401: a wrong, used or malformed second-factor code.
    #[error("invalid code")]
    InvalidCode,
    /// 400: a passkey registration response that does not verify (malformed, replayed,
    /// expired, another origin or relying party).
    #[error("invalid credential")]
    InvalidCredential,
    /// 401 `invalid_credentials`: a passkey sign-in that does not verify.
    #[error("passkey refused")]
    PasskeyRefused,
    /// 404: passkeys are off on this server (`public_url` has no domain name).
    #[error("passkeys unavailable")]
    PasskeysUnavailable,
    /// 401: a second-factor step without a sign-in waiting for one.
    #[error("mfa not pending")]
    MfaNotPending,
    /// 403: the user's role requires a second factor and none is set up yet.
    #[error("mfa enrollment required")]
    MfaEnrollmentRequired,
    /// 409: the second factor is already on.
    #[error("mfa already enabled")]
    MfaAlreadyEnabled,
    /// 409: the second factor is off.
    #[error("mfa not enabled")]
    MfaNotEnabled,
    /// 403: signed in without the permission.
    #[error("forbidden")]
    Forbidden,
    /// 403: missing or wrong CSRF token.
    #[error("csrf failed")]
    CsrfFailed,
    /// 403: locked by an administrator.
    #[error("account locked")]
    AccountLocked,
    /// 403: email verification required.
    #[error("email unverified")]
    EmailUnverified,
    /// 404: no such route or resource.
    #[error("not found")]
    NotFound,
    /// 405: the route exists with other methods.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: username taken.
    #[error("username taken")]
    UsernameTaken,
    /// 409: email taken.
    #[error("email taken")]
    EmailTaken,
    /// 429: too many failed sign-ins; retry after the given seconds.
    #[error("too many attempts")]
    TooManyAttempts {
        /// Seconds for the `Retry-After` header.
        retry_after: i64,
    },
    /// 413: body over 1 MiB.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 415: body with a content type other than JSON or a form.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 422: fields failed validation.
    #[error("validation failed")]
    Validation(FieldErrors),
    /// 503: the database is unreachable.
    #[error("service unavailable")]
    Unavailable,
    /// 500: a bug or an unexpected failure (already logged).
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            BadRequest(_) | InvalidToken | InvalidCredential => StatusCode::BAD_REQUEST,
            Unauthenticated | InvalidCredentials | PasskeyRefused | InvalidCode | MfaNotPending => {
                StatusCode::UNAUTHORIZED
            }
            Forbidden | CsrfFailed | AccountLocked | EmailUnverified | MfaEnrollmentRequired => {
                StatusCode::FORBIDDEN
            }
            NotFound | PasskeysUnavailable => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            UsernameTaken | EmailTaken | MfaAlreadyEnabled | MfaNotEnabled => StatusCode::CONFLICT,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable `snake_case` code clients branch on.
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            BadRequest(_) => "bad_request",
            InvalidToken => "invalid_token",
            Unauthenticated => "unauthenticated",
            InvalidCredentials | PasskeyRefused => "invalid_credentials",
            InvalidCredential => "invalid_credential",
            PasskeysUnavailable => "passkeys_unavailable",
            InvalidCode => "invalid_code",
            MfaNotPending => "mfa_not_pending",
            MfaEnrollmentRequired => "mfa_enrollment_required",
            MfaAlreadyEnabled => "mfa_already_enabled",
            MfaNotEnabled => "mfa_not_enabled",
            Forbidden => "forbidden",
            CsrfFailed => "csrf_failed",
            AccountLocked => "account_locked",
            EmailUnverified => "email_unverified",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            UsernameTaken => "username_taken",
            EmailTaken => "email_taken",
            PayloadTooLarge => "payload_too_large",
            TooManyAttempts { .. } => "too_many_attempts",
            UnsupportedMediaType => "unsupported_media_type",
            Validation(_) => "validation_failed",
            Unavailable => "service_unavailable",
            Internal => "internal_error",
        }
    }

    /// A message for a person.
    pub fn message(&self) -> String {
        use ApiError::*;
        match self {
            BadRequest(detail) => format!("The request body could not be read: {detail}"),
            InvalidToken => "This link is invalid, already used or expired. Ask for a new one.".into(),
            Unauthenticated => "You need to sign in first.".into(),
            InvalidCredentials => "Invalid username, email or password.".into(),
            InvalidCredential => "The passkey could not be verified: the browser's answer was malformed, already used, older than 5 minutes, or made for another site. Try adding it again.".into(),
            PasskeyRefused => "This passkey could not sign you in: it is not registered here, or the attempt was already used or took longer than 5 minutes. Try again, or sign in with your password.".into(),
            PasskeysUnavailable => "Passkeys are not available on this server: its public_url must name a domain (like localhost), not an IP address.".into(),
            InvalidCode => "That code is not valid. Enter the current code from your authenticator app, or an unused recovery code.".into(),
            MfaNotPending => "There is no sign-in waiting for a second factor (or it took longer than 5 minutes). Sign in again.".into(),
            MfaEnrollmentRequired => "Your role requires two-factor authentication: set it up on /account/security first.".into(),
            MfaAlreadyEnabled => "Two-factor authentication is already on. Turn it off first to set up a new authenticator.".into(),
            MfaNotEnabled => "Two-factor authentication is not on.".into(),
            Forbidden => "You do not have permission to do this.".into(),
            CsrfFailed => {
                "The CSRF token is missing or invalid. Reload the page (or fetch /api/auth/csrf) and try again."
                    .into()
            }
            AccountLocked => "This account is locked. Contact an administrator.".into(),
            EmailUnverified => {
                "Verify your email address before signing in: we have just sent you a new link.".into()
            }
            NotFound => "There is nothing here.".into(),
            MethodNotAllowed => "This method is not allowed here.".into(),
            UsernameTaken => "This username is already taken.".into(),
            EmailTaken => "An account with this email address already exists.".into(),
            PayloadTooLarge => "The request body is larger than 1 MiB.".into(),
            TooManyAttempts { retry_after } => format!(
                "Too many attempts. Try again in {} minute(s).",
                (retry_after + 59) / 60
            ),
            UnsupportedMediaType => {
                "Send the body as application/json or application/x-www-form-urlencoded.".into()
            }
            Validation(_) => "Some fields are invalid.".into(),
            Unavailable => "The service is temporarily unavailable. Try again shortly.".into(),
            Internal => "Something went wrong on our side. Try again later.".into(),
        }
    }

    /// The field errors of a validation failure, including the fields that a 409 concerns.
    pub fn fields(&self) -> Option<FieldErrors> {
        match self {
            ApiError::Validation(fields) => Some(fields.clone()),
            ApiError::UsernameTaken => Some(FieldErrors::single("username", self.message())),
            ApiError::EmailTaken => Some(FieldErrors::single("email", self.message())),
            _ => None,
        }
    }

    /// The JSON envelope `{"error": {"code", "message", "fields"?}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut error = json!({ "code": self.code(), "message": self.message() });
        // `fields` belongs to validation errors only (docs/http-api.md); a 409 names its field in
        // the code itself.
        if let (ApiError::Validation(fields), Some(map)) = (self, error.as_object_mut()) {
            map.insert("fields".into(), json!(fields));
        }
        json!({ "error": error })
    }

    /// The error as an HTML page, for browsers.
    pub fn into_page(self) -> Response {
        let mut response = error_page(self.status(), &self.message());
        self.add_headers(&mut response);
        response
    }

    /// Headers that belong to the error whatever its rendering (`Retry-After`).
    pub fn add_headers(&self, response: &mut Response) {
        if let ApiError::TooManyAttempts { retry_after } = self {
            if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
    }

    fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        ApiError::Internal
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, axum_json(&self.to_json())).into_response();
        self.add_headers(&mut response);
        response
    }
}

/// A JSON body with its content type, without pulling in axum's `json` feature.
pub fn axum_json<T: serde::Serialize + ?Sized>(value: &T) -> Response {
    // Room for a typical answer (a user is about 250 bytes) up front: growing the buffer from
    // empty reallocates it four or five times, which cost more than the serialising itself.
    let mut body = Vec::with_capacity(512);
    if serde_json::to_writer(&mut body, value).is_err() {
        body.clear();
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A small self-contained error page.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{code} {title} · latch</title><link rel=\"stylesheet\" href=\"{base}/static/pico.min.css\">\
         <link rel=\"stylesheet\" href=\"{base}/static/latch.css\">\
         <link rel=\"icon\" href=\"{base}/static/favicon.svg\" type=\"image/svg+xml\"></head><body><main class=\"container\">\
         <article><h1>{code} {title}</h1><p>{message}</p><p><a href=\"{base}/\">Go to the home page</a></p>\
         </article></main></body></html>",
        code = status.as_u16(),
        title = escape(title),
        message = escape(message),
        base = escape(super::base::Base::current().as_str()),
    );
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// Escapes text for HTML (only used outside the autoescaping templates).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                ApiError::Unavailable
            }
            other => ApiError::internal(&other),
        }
    }
}

impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        ApiError::internal(&e)
    }
}

impl From<minijinja::Error> for ApiError {
    fn from(e: minijinja::Error) -> Self {
        ApiError::internal(&e)
    }
}

/// An extractor's failure, rendered as JSON for the API and as a page for browsers.
#[derive(Debug)]
pub struct Rejection {
    /// What went wrong.
    pub error: ApiError,
    /// Whether the request came from a page (render HTML) rather than the API.
    pub html: bool,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        if self.html {
            self.error.into_page()
        } else {
            self.error.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_follows_the_contract() {
        let cases = [
            (ApiError::InvalidCredentials, 401, "invalid_credentials"),
            (ApiError::PasskeyRefused, 401, "invalid_credentials"),
            (ApiError::InvalidCredential, 400, "invalid_credential"),
            (ApiError::CsrfFailed, 403, "csrf_failed"),
            (ApiError::UsernameTaken, 409, "username_taken"),
            (ApiError::EmailTaken, 409, "email_taken"),
            (
                ApiError::Validation(FieldErrors::new()),
                422,
                "validation_failed",
            ),
            (
                ApiError::UnsupportedMediaType,
                415,
                "unsupported_media_type",
            ),
            (ApiError::PayloadTooLarge, 413, "payload_too_large"),
            (ApiError::AccountLocked, 403, "account_locked"),
            (ApiError::InvalidToken, 400, "invalid_token"),
            (
                ApiError::TooManyAttempts { retry_after: 60 },
                429,
                "too_many_attempts",
            ),
            (ApiError::Unavailable, 503, "service_unavailable"),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status().as_u16(), status);
            assert_eq!(error.code(), code);
            assert_eq!(error.to_json()["error"]["code"], code);
        }
    }

    #[test]
    fn server_errors_hide_their_cause() {
        let e: ApiError = StoreError::Migration("SELECT secret FROM users".into()).into();
        assert!(!e.to_json().to_string().contains("SELECT"));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn validation_lists_fields() {
        let e = ApiError::Validation(FieldErrors::single("email", "bad"));
        assert_eq!(e.to_json()["error"]["fields"]["email"][0], "bad");
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href='x'>&\""),
            "&lt;a href=&#x27;x&#x27;&gt;&amp;&quot;"
        );
    }
}
