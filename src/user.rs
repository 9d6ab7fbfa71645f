//! The signed-in user as every capability sees it, from a session or an API token.

use serde::Serialize;

use crate::clock::{rfc3339, Timestamp};
use crate::store::sessions::SessionRecord;
use crate::store::users::{split_roles, UserRecord};

/// The signed-in user as handlers see it: no password hash, no secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    /// Primary key.
    pub id: i64,
    /// Display name.
    pub username: String,
    /// Normalised address.
    pub email: String,
    /// Whether the address was confirmed.
    pub email_verified: bool,
    /// Explicit roles (`user` is implicit).
    pub roles: Vec<String>,
    /// Profile field.
    pub first_name: Option<String>,
    /// Profile field.
    pub last_name: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// The credential generation this identity was proven under (a session's or an API
    /// token's); anything it creates on the user's behalf carries it, so a revocation that
    /// commits meanwhile kills that too.
    pub credential_gen: i64,
    /// Whether a second factor is on.
    pub mfa_enabled: bool,
    /// How many passkeys they have, as of the session lookup (what the `require_mfa_roles`
    /// hold reads, without a query per request).
    pub passkey_count: i64,
}

impl AuthUser {
    /// Whether the user holds `role` (`user` is held by everyone signed in).
    pub fn has_role(&self, role: &str) -> bool {
        role == "user" || self.roles.iter().any(|r| r == role)
    }

    pub(crate) fn from_session(record: &SessionRecord) -> Option<Self> {
        Some(Self {
            id: record.user_id?,
            username: record.username.clone()?,
            email: record.email.clone()?,
            email_verified: record.email_verified?,
            roles: split_roles(record.roles.as_deref()?),
            first_name: record.first_name.clone(),
            last_name: record.last_name.clone(),
            created_at: record.user_created_at?,
            credential_gen: record.credential_gen,
            mfa_enabled: record.mfa_enabled?,
            passkey_count: record.passkey_count?,
        })
    }

    /// `{"user": …}`, the API's answer about the signed-in user, serialized straight from
    /// this (no `serde_json::Value` built on the way).
    pub fn envelope(&self) -> UserBody<'_> {
        UserBody {
            user: self.to_json(),
        }
    }

    /// The JSON `User` object of the API.
    pub fn to_json(&self) -> UserJson<'_> {
        UserJson {
            id: self.id,
            username: &self.username,
            email: &self.email,
            email_verified: self.email_verified,
            roles: &self.roles,
            created_at: rfc3339(self.created_at),
            first_name: self.first_name.as_deref(),
            last_name: self.last_name.as_deref(),
            mfa_enabled: self.mfa_enabled,
        }
    }
}

impl From<&UserRecord> for AuthUser {
    fn from(u: &UserRecord) -> Self {
        Self {
            id: u.id,
            username: u.username.clone(),
            email: u.email.clone(),
            email_verified: u.email_verified,
            roles: u.role_list(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            created_at: u.created_at,
            credential_gen: u.credential_gen,
            mfa_enabled: u.mfa_enabled,
            passkey_count: u.passkey_count,
        }
    }
}

/// `{"user": …}` (see [`AuthUser::envelope`]).
#[derive(Debug, Serialize)]
pub struct UserBody<'a> {
    user: UserJson<'a>,
}

/// docs/http-api.md's `User` object.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub struct UserJson<'a> {
    id: i64,
    username: &'a str,
    email: &'a str,
    email_verified: bool,
    roles: &'a [String],
    created_at: String,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    mfa_enabled: bool,
}
