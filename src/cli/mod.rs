//! The command line: `serve`, `migrate`, `config check`, user and role administration and
//! the audit log. User changes go through the same store transaction as the admin area
//! (so the last-admin rule holds here too) and are audited with `by=cli`.
//!
//! Every command takes `--database` (and the other configuration flags); errors are one line
//! on stderr and a non-zero exit code.
//!
//! One file per job: `support` (the error, the state, finding a user, reading a password),
//! `serve`, `user` and `changes` (user administration), `roles`, `audit`, `access` and
//! `import`. Each command calls the capability functions the web uses.

mod access;
mod audit;
mod changes;
mod import;
mod roles;
mod serve;
mod support;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use access::{access_check, AccessCommand};
use audit::audit_command;
use import::{import_werkzeug, ImportCommand};
use roles::{role_command, RoleCommand};
use serve::serve;
use support::{state, CliError};
use user::{user_command, UserCommand};

use crate::config::{Config, Overrides};

/// latch: user authentication for web applications.
#[derive(Debug, Parser)]
#[command(name = "latch", version, about)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct GlobalArgs {
    /// Configuration file (optional unless given).
    #[arg(long, global = true, env = "LATCH_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Database URL: sqlite://path or postgres://…
    #[arg(long, global = true, value_name = "URL")]
    database: Option<String>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, global = true, value_name = "ADDR")]
    bind: Option<String>,
    /// External origin, e.g. https://auth.example.com.
    #[arg(long, global = true, value_name = "URL")]
    public_url: Option<String>,
    /// Directory for outgoing mail when no SMTP server is configured.
    #[arg(long, global = true, value_name = "DIR")]
    mail_outbox: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web application.
    Serve,
    /// Create or update the database schema.
    Migrate,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Explain forward-auth decisions.
    Access {
        #[command(subcommand)]
        command: AccessCommand,
    },
    /// Manage roles.
    Role {
        #[command(subcommand)]
        command: RoleCommand,
    },
    /// Import users from another application's database.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Print recent security events from the audit log, newest first.
    Audit {
        /// Only the events of this user (username or email).
        #[arg(long)]
        user: Option<String>,
        /// How many events to print.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate and print the effective configuration (secrets masked).
    Check,
}

/// Parses the arguments and runs the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(global: &GlobalArgs) -> Result<Config, CliError> {
    let overrides = Overrides {
        bind: global.bind.clone(),
        database_url: global.database.clone(),
        public_url: global.public_url.clone(),
        mail_outbox: global.mail_outbox.clone(),
    };
    let (path, required) = match &global.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from("latch.toml"), false),
    };
    Config::load(&path, required, &overrides).map_err(|e| CliError::new(e.to_string()))
}

async fn execute(cli: Cli) -> Result<(), CliError> {
    let config = load_config(&cli.global)?;
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            print!("{}", config.to_masked_toml());
            match config.passkey_relying_party() {
                Ok((rp_id, origin)) => {
                    println!(
                        "# passkeys: relying party {rp_id}, origin {}",
                        origin.origin().ascii_serialization()
                    )
                }
                Err(reason) => println!("# {reason}"),
            }
            println!("# configuration is valid");
            Ok(())
        }
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let state = state(config).await?;
            println!("database is up to date");
            state.db.close().await;
            Ok(())
        }
        Command::Import {
            command:
                ImportCommand::Werkzeug {
                    source,
                    table,
                    id_column,
                    username_column,
                    email_column,
                    hash_column,
                },
        } => {
            let state = state(config).await?;
            let from = crate::import::Source {
                url: source,
                table,
                id: id_column,
                username: username_column,
                email: email_column,
                hash: hash_column,
            };
            let result = import_werkzeug(&state, &from).await;
            state.db.close().await;
            result
        }
        Command::User { command } => {
            let state = state(config).await?;
            let result = user_command(&state, command).await;
            state.db.close().await;
            result
        }
        Command::Access {
            command: AccessCommand::Check { url, method, user },
        } => access_check(config, &url, &method, user.as_deref()).await,
        Command::Role { command } => {
            let state = state(config).await?;
            let result = role_command(&state, command).await;
            state.db.close().await;
            result
        }
        Command::Audit { user, limit } => {
            let state = state(config).await?;
            let result = audit_command(&state, user.as_deref(), limit).await;
            state.db.close().await;
            result
        }
    }
}
