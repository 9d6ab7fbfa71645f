//! `latch role`: create and list roles.

use clap::Subcommand;

use super::support::{store_error, CliError};
use crate::app::AppState;
use crate::domain::RoleName;
use crate::store::admin as admin_store;

#[derive(Debug, Subcommand)]
pub(super) enum RoleCommand {
    /// Create a role (then grant it with `latch user set-role`).
    Add {
        /// Role name: a letter, then letters, digits, _ or -.
        name: String,
    },
    /// List roles and how many users hold each.
    List,
}

pub(super) async fn role_command(state: &AppState, command: RoleCommand) -> Result<(), CliError> {
    match command {
        RoleCommand::Add { name } => {
            let role =
                RoleName::parse(&name).map_err(|m| CliError::new(format!("role {name:?}: {m}")))?;
            admin_store::add_role(&state.db, &role, state.clock.now())
                .await
                .map_err(|e| match e {
                    crate::store::StoreError::Conflict => {
                        CliError::new(format!("role {:?} already exists", role.as_str()))
                    }
                    other => store_error(other),
                })?;
            println!("created role {role}");
            Ok(())
        }
        RoleCommand::List => {
            let roles = admin_store::list_roles(&state.db)
                .await
                .map_err(store_error)?;
            println!("{:<32} {:>8}", "role", "users");
            println!("{:<32} {:>8}", "user (implicit)", "all");
            for role in roles {
                println!("{:<32} {:>8}", role.name, role.members);
            }
            Ok(())
        }
    }
}
