//! Helpers for an application's own tests: a user and a signed-in session without the
//! password hash (Argon2 on every test sign-in would make a suite slow for nothing).
//!
//! ```no_run
//! # async fn run(latch: latch::Latch) -> anyhow::Result<()> {
//! let session = latch::testing::signed_in(&latch, "alice", "alice@example.com").await?;
//! let response = reqwest::Client::new()
//!     .post("http://127.0.0.1:3000/notes")
//!     .header("Cookie", &session.cookie)
//!     .header("X-CSRF-Token", &session.csrf_token)
//!     .send()
//!     .await?;
//! # let _ = response;
//! # Ok(())
//! # }
//! ```

use crate::domain::{EmailAddress, Username};
use crate::handle::Latch;
use crate::store::sessions::ClientInfo;
use crate::store::users::{self, NewUser};
use crate::user::AuthUser;

/// A signed-in test user: what a client sends to be them.
#[derive(Debug, Clone)]
pub struct TestSession {
    /// The user.
    pub user: AuthUser,
    /// The `Cookie` header value (`latch_session=…`, or `__Host-latch_session=…` behind https).
    pub cookie: String,
    /// The CSRF token of that session, for `X-CSRF-Token` or a form's `csrf_token`.
    pub csrf_token: String,
}

/// Why a test user could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TestingError {
    /// The username or address is not valid.
    #[error("{0}")]
    Invalid(String),
    /// The store failed (a taken name included).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Creates `username` (with no usable password: it can only sign in through this helper or a
/// reset) and returns a signed-in session for it.
pub async fn signed_in(
    latch: &Latch,
    username: &str,
    email: &str,
) -> Result<TestSession, TestingError> {
    let state = latch.state();
    let name = Username::parse(username).map_err(TestingError::Invalid)?;
    let email = EmailAddress::parse(email).map_err(TestingError::Invalid)?;
    let record = users::insert(
        &state.db,
        &NewUser {
            username: name.as_str(),
            username_norm: &name.normalized(),
            email: email.as_str(),
            // Not a PHC string: no password ever matches it.
            password_hash: "!testing",
            first_name: None,
            last_name: None,
            roles: "",
            created_at: state.clock.now(),
        },
    )
    .await?;
    let new =
        crate::sessions::start(state, Some(&record), false, &ClientInfo::default(), None).await?;
    let cookie = new
        .set_cookie
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok(TestSession {
        user: AuthUser::from(&record),
        cookie,
        csrf_token: new.session.csrf_token(),
    })
}
