//! `latch audit`: recent security events, newest first.

use super::support::{find_user, store_error, CliError};
use crate::app::AppState;

pub(super) async fn audit_command(
    state: &AppState,
    user: Option<&str>,
    limit: i64,
) -> Result<(), CliError> {
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
