//! `latch user`: add, list, show, set a password, reset the second factor, and the changes
//! of `changes.rs` (roles, lock, delete).

use clap::Subcommand;

use super::changes::{user_delete, user_set_locked, user_set_role};
use super::support::{find_user, read_password, store_error, CliError};
use crate::app::AppState;
use crate::auth::{self, NewAccount, SignUpError, SignupInput};
use crate::domain::{nfkc_lower, Password};
use crate::store::admin as admin_store;
use crate::store::{sessions as session_store, users};

#[derive(Debug, Subcommand)]
pub(super) enum UserCommand {
    /// Create a user; the password is prompted for, or read from stdin with --password-stdin.
    Add {
        /// Username.
        username: String,
        /// Email address.
        email: String,
        /// Role to grant (e.g. admin).
        #[arg(long)]
        role: Option<String>,
        /// Read the password from one line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Set a user's password (ends all their sessions and API tokens and pending reset links).
    Passwd {
        /// Username or email.
        user: String,
        /// Read the password from one line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Show a user: roles, verified, locked, created, last sign-in, active sessions.
    Show {
        /// Username or email.
        user: String,
    },
    /// Grant a role to a user, or remove it with --revoke (ends all their sessions).
    SetRole {
        /// Username or email.
        user: String,
        /// Role name (see `latch role list`).
        role: String,
        /// Remove the role instead of granting it.
        #[arg(long)]
        revoke: bool,
    },
    /// Lock a user out (ends all their sessions and API tokens; sign-in answers account_locked).
    Lock {
        /// Username or email.
        user: String,
    },
    /// Unlock a user.
    Unlock {
        /// Username or email.
        user: String,
    },
    /// Remove every second factor of a user (TOTP, recovery codes) and end their sessions.
    MfaReset {
        /// Username or email.
        user: String,
    },
    /// Delete a user with their sessions and posts.
    Delete {
        /// Username or email.
        user: String,
    },
}

pub(super) async fn user_command(state: &AppState, command: UserCommand) -> Result<(), CliError> {
    match command {
        UserCommand::Add {
            username,
            email,
            role,
            password_stdin,
        } => {
            let role = role
                .map(|r| r.trim().to_ascii_lowercase())
                .filter(|r| r != "user");
            if let Some(role) = &role {
                if !users::role_exists(&state.db, role)
                    .await
                    .map_err(store_error)?
                {
                    return Err(CliError::new(format!("unknown role {role:?}")));
                }
            }
            let password = read_password(password_stdin)?;
            let input = SignupInput {
                username: Some(username),
                email: Some(email),
                password: Some(password),
                ..SignupInput::default()
            };
            let account = NewAccount::try_from(input).map_err(|errors| {
                let fields = serde_json::to_value(&errors).unwrap_or_default();
                let text = fields
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}: {}", v[0].as_str().unwrap_or_default()))
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .unwrap_or_default();
                CliError::new(format!("invalid user: {text}"))
            })?;
            let user = auth::sign_up(state, &account, role.as_deref().unwrap_or(""))
                .await
                .map_err(|e| match e {
                    SignUpError::UsernameTaken => CliError::new(format!(
                        "username {:?} is already taken",
                        account.username.as_str()
                    )),
                    SignUpError::EmailTaken => CliError::new(format!(
                        "email {:?} is already registered",
                        account.email.as_str()
                    )),
                    other => CliError::new(other.to_string()),
                })?;
            let roles = user.role_list();
            println!(
                "created user {} (id {}){}",
                user.username,
                user.id,
                if roles.is_empty() {
                    String::new()
                } else {
                    format!(" with roles: {}", roles.join(", "))
                }
            );
            Ok(())
        }
        UserCommand::List => {
            let list = users::list(&state.db).await.map_err(store_error)?;
            println!(
                "{:<6} {:<32} {:<40} {:<16} created",
                "id", "username", "email", "roles"
            );
            for u in list {
                println!(
                    "{:<6} {:<32} {:<40} {:<16} {}",
                    u.id,
                    u.username,
                    u.email,
                    u.role_list().join(","),
                    crate::clock::rfc3339(u.created_at)
                );
            }
            Ok(())
        }
        UserCommand::Passwd {
            user,
            password_stdin,
        } => {
            let found = users::find_by_login(&state.db, &nfkc_lower(user.trim()))
                .await
                .map_err(store_error)?
                .ok_or_else(|| CliError::new(format!("no user {user:?}")))?;
            let raw = read_password(password_stdin)?;
            let password = Password::new_for_account(&raw)
                .map_err(|m| CliError::new(format!("password: {m}")))?;
            let by = "cli";
            let revoked = crate::account::set_password_by_admin(
                state,
                &found,
                &password,
                by,
                &session_store::ClientInfo::default(),
            )
            .await
            .map_err(|e| CliError::new(e.to_string()))?;
            let ended = revoked.sessions_ended;
            let tokens = revoked.api_tokens_ended;
            println!(
                "password changed for {}; {ended} session(s) ended, {tokens} API token(s) revoked",
                found.username
            );
            Ok(())
        }
        UserCommand::Show { user } => user_show(state, &user).await,
        UserCommand::SetRole { user, role, revoke } => {
            user_set_role(state, &user, &role, revoke).await
        }
        UserCommand::Lock { user } => user_set_locked(state, &user, true).await,
        UserCommand::Unlock { user } => user_set_locked(state, &user, false).await,
        UserCommand::Delete { user } => user_delete(state, &user).await,
        UserCommand::MfaReset { user } => user_mfa_reset(state, &user).await,
    }
}

/// `latch user mfa-reset`: the same capability function as the admin area's button.
async fn user_mfa_reset(state: &AppState, user: &str) -> Result<(), CliError> {
    let found = find_user(state, user).await?;
    let client = session_store::ClientInfo::default();
    let by = crate::admin::Actor::Cli.by();
    let reset = crate::mfa::reset(state, found.id, &by, &client)
        .await
        .map_err(|e| CliError::new(e.to_string()))?;
    let what = if reset.was_on {
        "second factor removed"
    } else {
        "no second factor was on"
    };
    println!(
        "{what} for {}; {} session(s) ended",
        found.username, reset.sessions_ended
    );
    Ok(())
}

fn live_since(state: &AppState) -> admin_store::LiveSince {
    admin_store::LiveSince::at(&state.config, state.clock.now())
}

async fn user_show(state: &AppState, user: &str) -> Result<(), CliError> {
    let found = find_user(state, user).await?;
    let u = admin_store::find(&state.db, found.id, live_since(state))
        .await
        .map_err(store_error)?
        .ok_or_else(|| CliError::new(format!("no user {user:?}")))?;
    let roles = u.role_list();
    let name = [u.first_name.as_deref(), u.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    println!("id:              {}", u.id);
    println!("username:        {}", u.username);
    println!("email:           {}", u.email);
    if !name.is_empty() {
        println!("name:            {name}");
    }
    println!("email verified:  {}", yes_no(u.email_verified));
    println!(
        "roles:           {}",
        if roles.is_empty() {
            "user".to_owned()
        } else {
            roles.join(", ")
        }
    );
    println!("locked:          {}", yes_no(u.locked));
    println!("created:         {}", crate::clock::rfc3339(u.created_at));
    println!(
        "last sign-in:    {}",
        u.last_login_at
            .map(crate::clock::rfc3339)
            .unwrap_or_else(|| "never".into())
    );
    println!("active sessions: {}", u.active_sessions);
    Ok(())
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
