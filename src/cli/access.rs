//! `latch access check`: explains a forward-auth decision.

use clap::Subcommand;

use super::support::{find_user, state, CliError};
use crate::config::Config;
use crate::domain::access::{Decision, Outcome};
use crate::forward_auth::{self, Identity, Target};
use crate::mfa::gate::{missing_factor, MissingFactor};
use crate::state::AppState;
use crate::user::AuthUser;

#[derive(Debug, Subcommand)]
pub(super) enum AccessCommand {
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

/// `latch access check`: the same compiled rules and decision as `/auth/check`.
pub(super) async fn access_check(
    config: Config,
    url: &str,
    method: &str,
    user: Option<&str>,
) -> Result<(), CliError> {
    let target = Target {
        url: url::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| CliError::new(format!("{url:?} is not an absolute http(s) URL")))?,
        method: method.trim().to_ascii_uppercase(),
    };
    let rules = config
        .access_rules()
        .map_err(|e| CliError::new(e.to_string()))?;
    println!("{} {}", target.method, target.url);
    let Some(login) = user else {
        let path = forward_auth::rule_path(&target.url);
        let request = crate::domain::access::Request {
            host: target.url.host_str().unwrap_or_default(),
            path_and_query: &path,
            method: &target.method,
        };
        let decision = rules.decide(request, None);
        println!("rule: {}", describe(&decision));
        println!("decision (anonymous): {}", decision.outcome.as_str());
        return Ok(());
    };
    let state = state(config).await?;
    let lines = user_decision(&state, &target, login).await;
    state.db.close().await;
    for line in lines? {
        println!("{line}");
    }
    Ok(())
}

/// The rule and decision lines for `login`, with a password-only and with a two-factor
/// session.
async fn user_decision(
    state: &AppState,
    target: &Target,
    login: &str,
) -> Result<Vec<String>, CliError> {
    let record = find_user(state, login).await?;
    let user = AuthUser::from(&record);
    let (rule, one) = answer(state, target, &user, false);
    let (_, two) = answer(state, target, &user, true);
    let name = &record.username;
    let mut lines = vec![format!("rule: {rule}")];
    if one == two {
        lines.push(format!("decision ({name}): {one}"));
    } else {
        lines.push(format!("decision ({name}, password-only session): {one}"));
        lines.push(format!("decision ({name}, two-factor session): {two}"));
    }
    Ok(lines)
}

/// The rule and the explained outcome for `user` with a session of `two_factor`, as
/// `/auth/check` decides it: [`forward_auth::decide`] (the `require_mfa_roles` hold included)
/// and, when a second factor is missing, [`missing_factor`] for where the visitor is sent.
fn answer(
    state: &AppState,
    target: &Target,
    user: &AuthUser,
    two_factor: bool,
) -> (String, &'static str) {
    let identity = Identity {
        user: user.clone(),
        two_factor,
    };
    let decision = forward_auth::decide(state, target, Some(&identity));
    let explained = match decision.outcome {
        Outcome::SecondFactor => match missing_factor(state, user) {
            MissingFactor::SecondStep => "second factor needed (sent to /login/mfa)",
            MissingFactor::Enrolment => {
                "second factor needed (sent to /account/security to set one up)"
            }
        },
        other => other.as_str(),
    };
    (describe(&decision), explained)
}

/// The rule that decided, or the default policy.
fn describe(decision: &Decision<'_>) -> String {
    match decision.rule {
        Some(rule) => rule.describe(),
        None => format!(
            "no rule matches: default_policy = {}",
            decision.policy.as_str()
        ),
    }
}
