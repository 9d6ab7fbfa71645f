//! What every command shares: the one-line error, the state, finding a user and reading a
//! password.

use std::io::{BufRead, IsTerminal};

use crate::app::AppState;
use crate::config::Config;
use crate::domain::nfkc_lower;
use crate::store::users;

/// A CLI failure: printed as one line, exit code 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct CliError(String);

impl CliError {
    pub(super) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

pub(super) async fn state(config: Config) -> Result<AppState, CliError> {
    AppState::new(config, std::sync::Arc::new(crate::clock::SystemClock))
        .await
        .map_err(|e| CliError::new(e.to_string()))
}

/// Finds a user by username or email, or fails with a clear message.
pub(super) async fn find_user(state: &AppState, user: &str) -> Result<users::UserRecord, CliError> {
    users::find_by_login(&state.db, &nfkc_lower(user.trim()))
        .await
        .map_err(store_error)?
        .ok_or_else(|| CliError::new(format!("no user {user:?}")))
}

pub(super) fn store_error(e: crate::store::StoreError) -> CliError {
    CliError::new(e.to_string())
}

/// Reads a password from one stdin line, or prompts twice on a terminal. Never from argv.
pub(super) fn read_password(from_stdin: bool) -> Result<String, CliError> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::new(format!("cannot read the password from stdin: {e}")))?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        return Ok(line.to_owned());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::new("no terminal to prompt for the password; pass --password-stdin and write it to standard input"));
    }
    let first =
        rpassword::prompt_password("Password: ").map_err(|e| CliError::new(e.to_string()))?;
    let second = rpassword::prompt_password("Repeat the password: ")
        .map_err(|e| CliError::new(e.to_string()))?;
    if first != second {
        return Err(CliError::new("the passwords do not match"));
    }
    Ok(first)
}
