//! The command line: `serve`, `migrate`, `config check` and user administration.
//!
//! Every command takes `--database` (and the other configuration flags); errors are one line
//! on stderr and a non-zero exit code.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::app::{App, AppState};
use crate::auth::{self, NewAccount, SignUpError, SignupInput};
use crate::config::{Config, Overrides};
use crate::domain::{nfkc_lower, Password};
use crate::store::{sessions as session_store, users};

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
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate and print the effective configuration (secrets masked).
    Check,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
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
    /// Set a user's password (ends all their sessions).
    Passwd {
        /// Username or email.
        user: String,
        /// Read the password from one line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// A CLI failure: printed as one line, exit code 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct CliError(String);

impl CliError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
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
        Command::User { command } => {
            let state = state(config).await?;
            let result = user_command(&state, command).await;
            state.db.close().await;
            result
        }
    }
}

async fn state(config: Config) -> Result<AppState, CliError> {
    AppState::new(config, std::sync::Arc::new(crate::clock::SystemClock))
        .await
        .map_err(|e| CliError::new(e.to_string()))
}

async fn serve(config: Config) -> Result<(), CliError> {
    let app = App::build(config)
        .await
        .map_err(|e| CliError::new(e.to_string()))?;
    let url = app.state().config.public_url.clone().unwrap_or_default();
    // Written with errors ignored: a closed stdout (`latch serve | head -1`) must not stop
    // the server.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "latch listening on http://{} (public URL {url})",
        app.local_addr()
    );
    let _ = writeln!(
        out,
        "Create the first admin with: latch user add <username> <email> --role admin"
    );
    let _ = out.flush();
    drop(out);
    tracing::info!(addr = %app.local_addr(), "listening");
    app.run_until_stopped()
        .await
        .map_err(|e| CliError::new(format!("server error: {e}")))?;
    tracing::info!("stopped");
    Ok(())
}

async fn user_command(state: &AppState, command: UserCommand) -> Result<(), CliError> {
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
            let hash = state
                .hasher
                .hash(&password)
                .await
                .map_err(|e| CliError::new(e.to_string()))?;
            users::set_password_hash(&state.db, found.id, &hash)
                .await
                .map_err(store_error)?;
            let ended = session_store::delete_for_user(&state.db, found.id)
                .await
                .map_err(store_error)?;
            println!(
                "password changed for {}; {ended} session(s) ended",
                found.username
            );
            Ok(())
        }
    }
}

fn store_error(e: crate::store::StoreError) -> CliError {
    CliError::new(e.to_string())
}

/// Reads a password from one stdin line, or prompts twice on a terminal. Never from argv.
fn read_password(from_stdin: bool) -> Result<String, CliError> {
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
