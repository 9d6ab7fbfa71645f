//! The audit log of security events.

use super::{db_run, Db, StoreError};
use crate::clock::Timestamp;

/// One recorded event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRecord {
    /// Primary key.
    pub id: i64,
    /// When it happened.
    pub at: Timestamp,
    /// The account concerned, if known.
    pub user_id: Option<i64>,
    /// Its username at the time.
    pub username: Option<String>,
    /// What happened (`sign_in`, `password_reset`, …).
    pub event: String,
    /// `success`, `failure`, …
    pub outcome: String,
    /// Client IP.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Extra words for a person (never a secret).
    pub detail: Option<String>,
}

/// A new event.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEvent<'a> {
    /// When.
    pub at: Timestamp,
    /// Account id.
    pub user_id: Option<i64>,
    /// Username at the time.
    pub username: Option<&'a str>,
    /// Event name.
    pub event: &'a str,
    /// Outcome.
    pub outcome: &'a str,
    /// Client IP.
    pub ip: Option<&'a str>,
    /// Client user agent.
    pub user_agent: Option<&'a str>,
    /// Extra words.
    pub detail: Option<&'a str>,
}

/// Appends an event.
pub async fn insert(db: &Db, e: &NewAuditEvent<'_>) -> Result<(), StoreError> {
    let sql =
        "INSERT INTO audit_events (at, user_id, username, event, outcome, ip, user_agent, detail) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    db_run!(db, |pool| sqlx::query(sql)
        .bind(e.at)
        .bind(e.user_id)
        .bind(e.username)
        .bind(e.event)
        .bind(e.outcome)
        .bind(e.ip)
        .bind(e.user_agent)
        .bind(e.detail)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The newest events, of one user or of everyone.
pub async fn recent(
    db: &Db,
    user_id: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRecord>, StoreError> {
    let columns = "id, at, user_id, username, event, outcome, ip, user_agent, detail";
    let rows = match user_id {
        Some(id) => {
            let sql = format!(
                "SELECT {columns} FROM audit_events WHERE user_id = $1 ORDER BY id DESC LIMIT $2"
            );
            db_run!(db, |pool| sqlx::query_as::<_, AuditRecord>(&sql)
                .bind(id)
                .bind(limit)
                .fetch_all(pool)
                .await)?
        }
        None => {
            let sql = format!("SELECT {columns} FROM audit_events ORDER BY id DESC LIMIT $1");
            db_run!(db, |pool| sqlx::query_as::<_, AuditRecord>(&sql)
                .bind(limit)
                .fetch_all(pool)
                .await)?
        }
    };
    Ok(rows)
}
