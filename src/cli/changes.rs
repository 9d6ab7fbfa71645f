//! `latch user set-role|lock|unlock|delete`: through `admin::change_user`, the admin area's
//! own function, so the last-admin rule, the ended sessions and tokens and the audit events
//! do not depend on the door.

use super::support::{find_user, store_error, CliError};
use crate::app::AppState;
use crate::domain::RoleName;
use crate::store::admin as admin_store;
use crate::store::sessions as session_store;

/// Applies a change from the CLI through the same capability function as the admin area,
/// so the rules, the ended sessions and tokens and the audit events are the same.
async fn cli_change(
    state: &AppState,
    user: &str,
    change: &admin_store::UserChange,
) -> Result<admin_store::ChangeOutcome, CliError> {
    let found = find_user(state, user).await?;
    let client = session_store::ClientInfo::default();
    crate::admin::change_user(state, crate::admin::Actor::Cli, found.id, change, &client)
        .await
        .map_err(|e| match e {
            crate::admin::AdminError::NotFound => CliError::new(format!("no user {user:?}")),
            crate::admin::AdminError::LastAdmin => CliError::new(format!(
                "refused: {} is the last unlocked administrator; grant admin to someone else first",
                found.username
            )),
            crate::admin::AdminError::UnknownRole(role) => CliError::new(format!(
                "unknown role {role:?} (see `latch role list`; create it with `latch role add`)"
            )),
            crate::admin::AdminError::Store(e) => store_error(e),
            other => CliError::new(other.to_string()),
        })
}

pub(super) async fn user_set_role(
    state: &AppState,
    user: &str,
    role: &str,
    revoke: bool,
) -> Result<(), CliError> {
    let role = RoleName::parse(role).map_err(|m| CliError::new(format!("role {role:?}: {m}")))?;
    let edit = if revoke {
        admin_store::RoleEdit::Revoke(role.clone())
    } else {
        admin_store::RoleEdit::Grant(role.clone())
    };
    let change = admin_store::UserChange {
        roles: Some(edit),
        ..Default::default()
    };
    let outcome = cli_change(state, user, &change).await?;
    let name = &outcome.before.username;
    let roles = outcome
        .after
        .as_ref()
        .map(|u| u.role_list())
        .unwrap_or_default();
    let roles = if roles.is_empty() {
        "user".to_owned()
    } else {
        roles.join(", ")
    };
    if outcome.granted.is_empty() && outcome.revoked.is_empty() {
        let had = if revoke {
            "does not have"
        } else {
            "already has"
        };
        println!("{name} {had} the role {role}; roles: {roles}");
    } else {
        let verb = if revoke { "removed from" } else { "granted to" };
        println!(
            "role {role} {verb} {name}; roles: {roles}; {} session(s) ended",
            outcome.sessions_ended
        );
    }
    Ok(())
}

pub(super) async fn user_set_locked(
    state: &AppState,
    user: &str,
    locked: bool,
) -> Result<(), CliError> {
    let change = admin_store::UserChange {
        locked: Some(locked),
        ..Default::default()
    };
    let outcome = cli_change(state, user, &change).await?;
    let name = &outcome.before.username;
    if locked {
        println!("locked {name}; {} session(s) ended", outcome.sessions_ended);
    } else {
        println!("unlocked {name}");
    }
    Ok(())
}

pub(super) async fn user_delete(state: &AppState, user: &str) -> Result<(), CliError> {
    let change = admin_store::UserChange {
        delete: true,
        ..Default::default()
    };
    let outcome = cli_change(state, user, &change).await?;
    println!(
        "deleted user {} (id {}) with their sessions and posts",
        outcome.before.username, outcome.before.id
    );
    Ok(())
}
