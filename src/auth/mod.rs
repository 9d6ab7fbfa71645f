//! Sign-up and sign-in: the account logic behind both the pages and the JSON API.

mod signin;
mod signup;
pub mod tokens;
mod user;

pub use signin::{sign_in, Credentials, LoginInput, SignInError};
pub use signup::{register, sign_up, NewAccount, SignUpError, SignupInput};
pub use user::{AuthUser, UserJson};
