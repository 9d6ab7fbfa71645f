//! The command line: `serve`, `migrate`, `config check`, user and role administration and
//! the audit log. User changes go through the same store transaction as the admin area
//! (so the last-admin rule holds here too) and are audited with `by=cli`.
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
use crate::domain::RoleName;
use crate::domain::{nfkc_lower, Password};
use crate::store::admin as admin_store;
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
enum ImportCommand {
    /// Users of a Flask app (Flask-Login + Werkzeug `pbkdf2:`/`scrypt:` hashes); they sign in
    /// with their old passwords, re-hashed to Argon2id at the first sign-in. Existing users
    /// are skipped, so a re-run is safe.
    Werkzeug {
        /// The Flask app's database: sqlite://path or postgres://…
        source: String,
        /// Table holding the users.
        #[arg(long, default_value = "users")]
        table: String,
        /// Primary key column.
        #[arg(long, default_value = "id")]
        id_column: String,
        /// Username column.
        #[arg(long, default_value = "username")]
        username_column: String,
        /// Email column.
        #[arg(long, default_value = "email")]
        email_column: String,
        /// Password hash column.
        #[arg(long, default_value = "password_hash")]
        hash_column: String,
    },
}

#[derive(Debug, Subcommand)]
enum RoleCommand {
    /// Create a role (then grant it with `latch user set-role`).
    Add {
        /// Role name: a letter, then letters, digits, _ or -.
        name: String,
    },
    /// List roles and how many users hold each.
    List,
}

#[derive(Debug, Subcommand)]
enum AccessCommand {
    /// Print the rule that matches a URL and the decision (for an anonymous visitor, or for
    /// --user with a password-only and with a two-factor session).
    Check {
        /// The URL a visitor asks for, like https://app.example.com/admin.
        url: String,
        /// The method of the request.
        #[arg(long, default_value = "GET")]
        method: String,
        /// Decide for this user (username or email) instead of an anonymous visitor.
        #[arg(long)]
        user: Option<String>,
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

/// `latch access check`: the same compiled rules and decision as `/auth/check`.
async fn access_check(
    config: Config,
    url: &str,
    method: &str,
    user: Option<&str>,
) -> Result<(), CliError> {
    use crate::domain::access::Outcome;
    let target = crate::forward_auth::Target {
        url: url::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| CliError::new(format!("{url:?} is not an absolute http(s) URL")))?,
        method: method.trim().to_ascii_uppercase(),
    };
    let rules = config
        .access_rules()
        .map_err(|e| CliError::new(e.to_string()))?;
    let describe = |decision: &crate::domain::access::Decision<'_>| match decision.rule {
        Some(rule) => rule.describe(),
        None => format!(
            "no rule matches: default_policy = {}",
            decision.policy.as_str()
        ),
    };
    let path = crate::forward_auth::rule_path(&target.url);
    let request = crate::domain::access::Request {
        host: target.url.host_str().unwrap_or_default(),
        path_and_query: &path,
        method: &target.method,
    };
    println!("{} {}", target.method, target.url);
    let Some(login) = user else {
        let decision = rules.decide(request, None);
        println!("rule: {}", describe(&decision));
        println!("decision (anonymous): {}", decision.outcome.as_str());
        return Ok(());
    };
    let state = state(config).await?;
    let found = users::find_by_login(&state.db, &nfkc_lower(login)).await;
    state.db.close().await;
    let record = found
        .map_err(|e| CliError::new(e.to_string()))?
        .ok_or_else(|| CliError::new(format!("no user {login:?}")))?;
    let decide = |two_factor| {
        let identity = crate::forward_auth::Identity {
            user: crate::user::AuthUser::from(&record),
            two_factor,
        };
        rules.decide(request, Some(&crate::forward_auth::visitor(&identity)))
    };
    let (one, two) = (decide(false), decide(true));
    let explain = |outcome: Outcome| match outcome {
        Outcome::SecondFactor if record.mfa_enabled => "second factor needed (sent to /login/mfa)",
        Outcome::SecondFactor => "second factor needed (sent to /account/security to set one up)",
        other => other.as_str(),
    };
    println!("rule: {}", describe(&one));
    if one.outcome == two.outcome {
        println!("decision ({}): {}", record.username, explain(one.outcome));
    } else {
        println!(
            "decision ({}, password-only session): {}",
            record.username,
            explain(one.outcome)
        );
        println!(
            "decision ({}, two-factor session): {}",
            record.username,
            explain(two.outcome)
        );
    }
    Ok(())
}

async fn state(config: Config) -> Result<AppState, CliError> {
    AppState::new(config, std::sync::Arc::new(crate::clock::SystemClock))
        .await
        .map_err(|e| CliError::new(e.to_string()))
}

async fn serve(config: Config) -> Result<(), CliError> {
    // Signal handlers first: a SIGTERM right after the address is printed stops gracefully.
    let stop = crate::app::shutdown_signal();
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
    if let Err(reason) = &app.state().relying_party {
        let _ = writeln!(out, "{reason}");
    }
    let _ = out.flush();
    drop(out);
    tracing::info!(addr = %app.local_addr(), "listening");
    app.run_until(stop)
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

/// Finds a user by username or email, or fails with a clear message.
async fn find_user(state: &AppState, user: &str) -> Result<users::UserRecord, CliError> {
    users::find_by_login(&state.db, &nfkc_lower(user.trim()))
        .await
        .map_err(store_error)?
        .ok_or_else(|| CliError::new(format!("no user {user:?}")))
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

async fn user_set_role(
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

async fn user_set_locked(state: &AppState, user: &str, locked: bool) -> Result<(), CliError> {
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

async fn user_delete(state: &AppState, user: &str) -> Result<(), CliError> {
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

async fn role_command(state: &AppState, command: RoleCommand) -> Result<(), CliError> {
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

async fn audit_command(state: &AppState, user: Option<&str>, limit: i64) -> Result<(), CliError> {
    if !(1..=10_000).contains(&limit) {
        return Err(CliError::new("--limit must be between 1 and 10000"));
    }
    let user_id = match user {
        Some(user) => Some(find_user(state, user).await?.id),
        None => None,
    };
    let events = crate::store::audit::recent(&state.db, user_id, limit)
        .await
        .map_err(store_error)?;
    println!(
        "{:<20} {:<24} {:<22} {:<10} {:<16} detail",
        "time", "user", "event", "outcome", "ip"
    );
    for e in events {
        let who = match (&e.username, e.user_id) {
            (Some(name), Some(id)) => format!("{name} ({id})"),
            (Some(name), None) => name.clone(),
            (None, Some(id)) => format!("#{id}"),
            (None, None) => "-".into(),
        };
        let time = crate::clock::rfc3339(e.at);
        println!(
            "{:<20} {:<24} {:<22} {:<10} {:<16} {}",
            time,
            who,
            e.event,
            e.outcome,
            e.ip.as_deref().unwrap_or("-"),
            e.detail.as_deref().unwrap_or("")
        );
    }
    Ok(())
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

async fn import_werkzeug(state: &AppState, from: &crate::import::Source) -> Result<(), CliError> {
    let interactive = std::io::stderr().is_terminal();
    let report = crate::import::werkzeug(state, from, |done, total| {
        if interactive && total > 0 {
            let width = 30;
            let filled = usize::try_from(done * width / total.max(1))
                .unwrap_or(0)
                .min(30);
            eprint!(
                "\r[{}{}] {done}/{total}",
                "#".repeat(filled),
                ".".repeat(30 - filled)
            );
        }
    })
    .await
    .map_err(|e| CliError::new(e.to_string()))?;
    if interactive {
        eprintln!();
    }
    for (id, username, reason) in &report.invalid {
        println!("skipped id {id} ({username:?}): {reason}");
    }
    println!(
        "imported {} user(s); {} already existed; {} skipped as invalid ({} rows read)",
        report.imported,
        report.existing,
        report.invalid.len(),
        report.seen
    );
    Ok(())
}
