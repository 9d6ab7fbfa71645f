//! `latch import werkzeug`: users of a Flask application, through `crate::import`.

use std::io::IsTerminal;

use clap::Subcommand;

use super::support::CliError;
use crate::app::AppState;

#[derive(Debug, Subcommand)]
pub(super) enum ImportCommand {
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

pub(super) async fn import_werkzeug(
    state: &AppState,
    from: &crate::import::Source,
) -> Result<(), CliError> {
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
