//! Administration: the user list with prefix search, one user with their live session count,
//! role grants, locks and deletion, and the role catalogue.
//!
//! # Paging
//! The list is ordered by `username_norm` and read through its unique index. A page is found
//! by *indexed offset*: one query walks only that narrow index to the first key of the page
//! (`SELECT username_norm … LIMIT 1 OFFSET n`, index-only), a second reads the page's rows
//! from that key on. A search is two index range scans, `username_norm >= q AND < q'` and
//! the same on `email_norm`, where `q'` is `q` with its last character incremented (so the
//! range is exactly the strings starting with `q`, in code point order; PostgreSQL compares
//! these columns with the "C" collation for that reason, see migration 21).
//!
//! # At least one administrator (docs/security.md Z4)
//! Every change that can take administration away from someone (removing `admin`, locking,
//! deleting) runs in one transaction that first takes a write lock on the `admin` row of
//! `roles`, then counts the *other* unlocked administrators. The lock serialises such changes
//! on both databases (SQLite has one writer; on PostgreSQL it is a row lock), so two admins
//! demoting each other at the same moment cannot both succeed.

use super::{db_run, Db, StoreError};
use crate::clock::Timestamp;
use crate::config::Config;
use crate::domain::{RoleName, ADMIN_ROLE};
use crate::store::users::split_roles;

/// A user as the admin area shows them: no password hash, plus the live session count.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AdminUserRecord {
    /// Primary key.
    pub id: i64,
    /// Display form.
    pub username: String,
    /// Normalised address.
    pub email: String,
    /// Whether the address was confirmed.
    pub email_verified: bool,
    /// Profile field.
    pub first_name: Option<String>,
    /// Profile field.
    pub last_name: Option<String>,
    /// Space-separated explicit roles.
    pub roles: String,
    /// Refused sign-in by an administrator.
    pub locked: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last successful sign-in.
    pub last_login_at: Option<Timestamp>,
    /// Sessions that have not timed out.
    pub active_sessions: i64,
    /// Whether a second factor is on.
    pub mfa_enabled: bool,
}

impl AdminUserRecord {
    /// The explicit roles, sorted.
    pub fn role_list(&self) -> Vec<String> {
        split_roles(&self.roles)
    }

    /// Whether the user can administer right now: holds `admin` and is not locked.
    pub fn is_active_admin(&self) -> bool {
        !self.locked && self.role_list().iter().any(|r| r == ADMIN_ROLE)
    }
}

/// The oldest `last_seen_at` / `created_at` a session may have to still count as live: the
/// same rule as the session loader's timeouts.
#[derive(Debug, Clone, Copy)]
pub struct LiveSince {
    /// Idle cut-off for ordinary sessions.
    pub idle: Timestamp,
    /// Absolute cut-off for ordinary sessions.
    pub absolute: Timestamp,
    /// Cut-off (idle and absolute) for "remember me" sessions.
    pub remember: Timestamp,
}

impl LiveSince {
    /// The cut-offs at `now` under `config`'s timeouts.
    pub fn at(config: &Config, now: Timestamp) -> Self {
        Self {
            idle: now - config.session_idle_timeout_secs,
            absolute: now - config.session_absolute_timeout_secs,
            remember: now - config.remember_me_secs,
        }
    }
}

/// The admin columns of `users u`; the session cut-offs are always `$1`, `$2`, `$3`.
const ADMIN_COLUMNS: &str = "u.id, u.username, u.email, u.email_verified, u.first_name, \
     u.last_name, u.roles, u.locked, u.created_at, u.last_login_at, u.mfa_enabled, \
     (SELECT COUNT(*) FROM sessions s WHERE s.user_id = u.id \
      AND s.credential_gen = u.credential_gen AND \
      ((s.remember = FALSE AND s.last_seen_at >= $1 AND s.created_at >= $2) \
       OR (s.remember = TRUE AND s.last_seen_at >= $3 AND s.created_at >= $3))) \
     AS active_sessions";

/// One page of the user list.
#[derive(Debug, Clone, Default)]
pub struct UserPage {
    /// The users on this page.
    pub users: Vec<AdminUserRecord>,
    /// How many users match in all.
    pub total: i64,
}

/// The exclusive upper bound of the strings that start with `prefix`, in code point order:
/// `prefix` with its last character incremented (characters that cannot be incremented are
/// dropped first). `None` when no bound exists, i.e. every character is U+10FFFF.
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 {
            0xD7FF => Some('\u{E000}'),
            n => char::from_u32(n + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// One page of users ordered by username, optionally only those whose normalised username
/// or email starts with `prefix` (already NFKC-lower-cased). `offset` is the number of
/// matching users before the page.
pub async fn search(
    db: &Db,
    prefix: Option<&str>,
    offset: i64,
    limit: i64,
    live: LiveSince,
) -> Result<UserPage, StoreError> {
    match prefix.filter(|p| !p.is_empty()) {
        None => list_all(db, offset, limit, live).await,
        Some(prefix) => {
            let Some(upper) = prefix_upper_bound(prefix) else {
                // Only U+10FFFF characters: no username or address starts with those.
                return Ok(UserPage::default());
            };
            search_prefix(db, prefix, &upper, offset, limit, live).await
        }
    }
}

async fn list_all(
    db: &Db,
    offset: i64,
    limit: i64,
    live: LiveSince,
) -> Result<UserPage, StoreError> {
    let (total,): (i64,) = db_run!(db, |pool| sqlx::query_as("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await)?;
    if offset >= total || limit <= 0 {
        return Ok(UserPage {
            users: Vec::new(),
            total,
        });
    }
    // Walks only the narrow unique index to the page's first key.
    let first: Option<(String,)> = db_run!(db, |pool| sqlx::query_as(
        "SELECT username_norm FROM users ORDER BY username_norm LIMIT 1 OFFSET $1"
    )
    .bind(offset)
    .fetch_optional(pool)
    .await)?;
    let Some((first,)) = first else {
        return Ok(UserPage {
            users: Vec::new(),
            total,
        });
    };
    let sql = format!(
        "SELECT {ADMIN_COLUMNS} FROM users u WHERE u.username_norm >= $4 \
         ORDER BY u.username_norm LIMIT $5"
    );
    let users = db_run!(db, |pool| sqlx::query_as::<_, AdminUserRecord>(&sql)
        .bind(live.idle)
        .bind(live.absolute)
        .bind(live.remember)
        .bind(&first)
        .bind(limit)
        .fetch_all(pool)
        .await)?;
    Ok(UserPage { users, total })
}

async fn search_prefix(
    db: &Db,
    prefix: &str,
    upper: &str,
    offset: i64,
    limit: i64,
    live: LiveSince,
) -> Result<UserPage, StoreError> {
    let count_sql = "SELECT COUNT(*) FROM users WHERE \
                     (username_norm >= $1 AND username_norm < $2) \
                     OR (email_norm >= $1 AND email_norm < $2)";
    let (total,): (i64,) = db_run!(db, |pool| sqlx::query_as(count_sql)
        .bind(prefix)
        .bind(upper)
        .fetch_one(pool)
        .await)?;
    if offset >= total || limit <= 0 {
        return Ok(UserPage {
            users: Vec::new(),
            total,
        });
    }
    // The sort runs over (username_norm, id) only; the full rows, with their session
    // counts, are read for the one page. Sorting by `username_norm || ''` (same order) keeps
    // PostgreSQL from walking the whole username index in order and filtering on the OR,
    // which it prefers under a small LIMIT and which took 0.8 s for a 1-letter prefix at a
    // million users; both databases then scan the two prefix ranges and sort the matches.
    let ids_sql = "SELECT id FROM users WHERE \
                   (username_norm >= $1 AND username_norm < $2) \
                   OR (email_norm >= $1 AND email_norm < $2) \
                   ORDER BY username_norm || '' LIMIT $3 OFFSET $4";
    let ids: Vec<(i64,)> = db_run!(db, |pool| sqlx::query_as(ids_sql)
        .bind(prefix)
        .bind(upper)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await)?;
    if ids.is_empty() {
        return Ok(UserPage {
            users: Vec::new(),
            total,
        });
    }
    let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 4)).collect();
    let sql = format!(
        "SELECT {ADMIN_COLUMNS} FROM users u WHERE u.id IN ({}) ORDER BY u.username_norm",
        placeholders.join(", ")
    );
    let users = db_run!(db, |pool| {
        let mut query = sqlx::query_as::<_, AdminUserRecord>(&sql)
            .bind(live.idle)
            .bind(live.absolute)
            .bind(live.remember);
        for (id,) in &ids {
            query = query.bind(*id);
        }
        query.fetch_all(pool).await
    })?;
    Ok(UserPage { users, total })
}

/// One user with their live session count.
pub async fn find(
    db: &Db,
    id: i64,
    live: LiveSince,
) -> Result<Option<AdminUserRecord>, StoreError> {
    let sql = format!("SELECT {ADMIN_COLUMNS} FROM users u WHERE u.id = $4");
    Ok(db_run!(db, |pool| sqlx::query_as::<_, AdminUserRecord>(
        &sql
    )
    .bind(live.idle)
    .bind(live.absolute)
    .bind(live.remember)
    .bind(id)
    .fetch_optional(pool)
    .await)?)
}

/// How the roles of a user change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleEdit {
    /// Replace the whole list.
    Set(Vec<RoleName>),
    /// Add one role.
    Grant(RoleName),
    /// Remove one role.
    Revoke(RoleName),
}

/// A change to one user, applied atomically by [`change`].
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    /// New roles, if they change.
    pub roles: Option<RoleEdit>,
    /// New lock state, if it changes.
    pub locked: Option<bool>,
    /// Delete the account (the other fields are then ignored).
    pub delete: bool,
}

/// What [`change`] did.
#[derive(Debug, Clone)]
pub struct ChangeOutcome {
    /// The user before the change.
    pub before: AdminUserRecord,
    /// The user after it (`None` when deleted).
    pub after: Option<AdminUserRecord>,
    /// Roles added.
    pub granted: Vec<String>,
    /// Roles removed.
    pub revoked: Vec<String>,
    /// Sessions ended (privilege change, lock or deletion).
    pub sessions_ended: u64,
}

/// Why [`change`] refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// No user with that id.
    #[error("no such user")]
    NotFound,
    /// The change would leave no unlocked administrator.
    #[error("at least one unlocked administrator must remain")]
    LastAdmin,
    /// A role that does not exist (create it with `latch role add`).
    #[error("unknown role {0:?}")]
    UnknownRole(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ChangeError {
    fn from(e: sqlx::Error) -> Self {
        ChangeError::Store(e.into())
    }
}

fn contains_role(roles: &[String], role: &str) -> bool {
    roles.iter().any(|r| r == role)
}

/// Applies `change` to user `id` in one transaction, keeping at least one unlocked
/// administrator. A change of roles and a lock end every session of the user (a privilege
/// change must not ride on a session granted under the old privileges); a deletion takes
/// the sessions with the row.
pub async fn change(
    db: &Db,
    id: i64,
    change: &UserChange,
    live: LiveSince,
) -> Result<ChangeOutcome, ChangeError> {
    let select = format!("SELECT {ADMIN_COLUMNS} FROM users u WHERE u.id = $4");
    let other_admins = "SELECT COUNT(*) FROM users WHERE id <> $1 AND locked = FALSE \
                        AND (' ' || roles || ' ') LIKE '% admin %'";
    db_run!(db, |pool| {
        let mut tx = pool.begin().await?;
        // The serialising lock of the Z4 rule (see the module docs).
        sqlx::query("UPDATE roles SET created_at = created_at WHERE name = 'admin'")
            .execute(&mut *tx)
            .await?;
        let before = sqlx::query_as::<_, AdminUserRecord>(&select)
            .bind(live.idle)
            .bind(live.absolute)
            .bind(live.remember)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(ChangeError::NotFound)?;
        let old_roles = before.role_list();
        let new_roles = match &change.roles {
            None => old_roles.clone(),
            Some(edit) => {
                let known: Vec<(String,)> = sqlx::query_as("SELECT name FROM roles")
                    .fetch_all(&mut *tx)
                    .await?;
                let exists = |r: &RoleName| known.iter().any(|(k,)| k == r.as_str());
                let wanted: Vec<&RoleName> = match edit {
                    RoleEdit::Set(list) => list.iter().collect(),
                    RoleEdit::Grant(role) | RoleEdit::Revoke(role) => vec![role],
                };
                if let Some(unknown) = wanted.into_iter().find(|r| !exists(r)) {
                    return Err(ChangeError::UnknownRole(unknown.as_str().to_owned()));
                }
                let mut list: Vec<String> = match edit {
                    RoleEdit::Set(list) => list.iter().map(|r| r.as_str().to_owned()).collect(),
                    RoleEdit::Grant(role) => {
                        let mut l = old_roles.clone();
                        l.push(role.as_str().to_owned());
                        l
                    }
                    RoleEdit::Revoke(role) => old_roles
                        .iter()
                        .filter(|r| r.as_str() != role.as_str())
                        .cloned()
                        .collect(),
                };
                list.sort();
                list.dedup();
                list
            }
        };
        let new_locked = change.locked.unwrap_or(before.locked);
        let stays_admin = !change.delete && !new_locked && contains_role(&new_roles, ADMIN_ROLE);
        if before.is_active_admin() && !stays_admin {
            let (others,): (i64,) = sqlx::query_as(other_admins)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            if others == 0 {
                return Err(ChangeError::LastAdmin);
            }
        }
        let granted: Vec<String> = new_roles
            .iter()
            .filter(|r| !contains_role(&old_roles, r))
            .cloned()
            .collect();
        let revoked: Vec<String> = old_roles
            .iter()
            .filter(|r| !contains_role(&new_roles, r))
            .cloned()
            .collect();
        let mut sessions_ended = 0;
        let after = if change.delete {
            sessions_ended = before.active_sessions.max(0) as u64;
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            None
        } else {
            sqlx::query("UPDATE users SET roles = $1, locked = $2 WHERE id = $3")
                .bind(new_roles.join(" "))
                .bind(new_locked)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let privilege_change = !granted.is_empty() || !revoked.is_empty();
            if change.locked == Some(true) {
                // A lock is a revocation: a new generation (so a sign-in that read the user
                // before the lock yields a dead session) and no session or API token left.
                sqlx::query(super::revocation::BUMP_SQL)
                    .bind(id)
                    .bind(None::<&str>)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(super::revocation::END_API_TOKENS_SQL)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            if privilege_change || change.locked == Some(true) {
                sessions_ended = sqlx::query(super::revocation::END_SESSIONS_SQL)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            sqlx::query_as::<_, AdminUserRecord>(&select)
                .bind(live.idle)
                .bind(live.absolute)
                .bind(live.remember)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
        };
        tx.commit().await?;
        Ok(ChangeOutcome {
            before,
            after,
            granted,
            revoked,
            sessions_ended,
        })
    })
}

/// A role and how many users hold it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RoleRecord {
    /// The role's name.
    pub name: String,
    /// When it was created (0 for the built-in `admin`).
    pub created_at: Timestamp,
    /// Users holding it.
    pub members: i64,
}

/// Every role, by name, with its member count (a scan of `users` per role: for the CLI).
pub async fn list_roles(db: &Db) -> Result<Vec<RoleRecord>, StoreError> {
    // `_` is a LIKE wildcard and may appear in role names, so it is escaped.
    let sql = "SELECT r.name, r.created_at, \
               (SELECT COUNT(*) FROM users u WHERE (' ' || u.roles || ' ') \
                LIKE '% ' || REPLACE(r.name, '_', '\\_') || ' %' ESCAPE '\\') AS members \
               FROM roles r ORDER BY r.name";
    Ok(db_run!(db, |pool| sqlx::query_as::<_, RoleRecord>(sql)
        .fetch_all(pool)
        .await)?)
}

/// Creates a role; [`StoreError::Conflict`] when it exists.
pub async fn add_role(db: &Db, name: &RoleName, now: Timestamp) -> Result<(), StoreError> {
    let sql = "INSERT INTO roles (name, created_at) VALUES ($1, $2)";
    db_run!(db, |pool| sqlx::query(sql)
        .bind(name.as_str())
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The names of every role.
pub async fn role_names(db: &Db) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String,)> = db_run!(db, |pool| sqlx::query_as(
        "SELECT name FROM roles ORDER BY name"
    )
    .fetch_all(pool)
    .await)?;
    Ok(rows.into_iter().map(|(n,)| n).collect())
}

#[cfg(test)]
mod tests {
    use super::prefix_upper_bound;

    #[test]
    fn upper_bounds() {
        assert_eq!(prefix_upper_bound("ab").as_deref(), Some("ac"));
        assert_eq!(
            prefix_upper_bound("a\u{D7FF}").as_deref(),
            Some("a\u{E000}")
        );
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound(""), None);
    }
}
