//! `latch access check`: explains a forward-auth decision.

use clap::Subcommand;

use super::support::{state, CliError};
use crate::config::Config;
use crate::domain::nfkc_lower;
use crate::store::users;

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
