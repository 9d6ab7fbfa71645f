//! Sign-up and sign-in: the account logic behind both the pages and the JSON API.

pub mod api;
pub mod pages;
mod signin;
mod signup;

pub use crate::user::{AuthUser, UserJson};
pub use signin::{sign_in, Credentials, LoginInput, PasswordChecked, SignInError};
pub use signup::{register, sign_up, NewAccount, SignUpError, SignupInput};

/// The sign-up, sign-in and sign-out routes: pages and JSON side by side.
pub fn routes() -> axum::Router<crate::state::AppState> {
    api::router().merge(pages::router())
}

/// How the web answers a refused sign-in or sign-up (the one mapping to HTTP).
impl From<SignInError> for crate::web::error::ApiError {
    fn from(e: SignInError) -> Self {
        match e {
            SignInError::InvalidCredentials => crate::web::error::ApiError::InvalidCredentials,
            SignInError::Locked => crate::web::error::ApiError::AccountLocked,
            SignInError::EmailUnverified => crate::web::error::ApiError::EmailUnverified,
            SignInError::Throttled { retry_after } => {
                crate::web::error::ApiError::TooManyAttempts { retry_after }
            }
            SignInError::Store(e) => e.into(),
            SignInError::Hash(e) => e.into(),
        }
    }
}

impl From<SignUpError> for crate::web::error::ApiError {
    fn from(e: SignUpError) -> Self {
        match e {
            SignUpError::UsernameTaken => crate::web::error::ApiError::UsernameTaken,
            SignUpError::EmailTaken => crate::web::error::ApiError::EmailTaken,
            SignUpError::Throttled { retry_after } => {
                crate::web::error::ApiError::TooManyAttempts { retry_after }
            }
            SignUpError::Store(e) => e.into(),
            SignUpError::Hash(e) => e.into(),
        }
    }
}
