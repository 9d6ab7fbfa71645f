//! Security events (sign-in, sign-out, password and email changes, locks, revocations,
//! throttling) written to the `audit_events` table: time, user, IP, user agent, outcome,
//! never a password, token or session id.

use crate::state::AppState;
use crate::store::audit::{self, NewAuditEvent};
use crate::store::sessions::ClientInfo;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A sign-in attempt.
    SignIn,
    /// A sign-out.
    SignOut,
    /// An account was created.
    SignUp,
    /// The password was changed by its owner (or an administrator).
    PasswordChange,
    /// A password reset was requested.
    PasswordResetRequest,
    /// The password was reset through a mailed link.
    PasswordReset,
    /// A change of email address was requested or completed.
    EmailChange,
    /// An address was verified.
    EmailVerified,
    /// An administrator locked the account.
    Lock,
    /// An administrator unlocked the account.
    Unlock,
    /// One or more sessions were revoked.
    SessionRevoke,
    /// A request was refused by the throttle.
    Throttled,
    /// A role was granted.
    RoleGrant,
    /// A role was removed.
    RoleRevoke,
    /// The account was deleted.
    UserDelete,
    /// A TOTP secret was set up (not on yet).
    MfaSetup,
    /// The second factor was turned on.
    MfaEnable,
    /// The second factor was turned off by its owner.
    MfaDisable,
    /// The recovery codes were replaced.
    MfaRecoveryCodes,
    /// An administrator removed every second factor.
    MfaReset,
    /// A second-factor code was checked (sign-in, turning it off); failures are audited.
    MfaVerify,
    /// A passkey added to an account.
    PasskeyAdd,
    /// A passkey renamed.
    PasskeyRename,
    /// A passkey removed.
    PasskeyRemove,
}

impl Event {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::SignIn => "sign_in",
            Event::SignOut => "sign_out",
            Event::SignUp => "sign_up",
            Event::PasswordChange => "password_change",
            Event::PasswordResetRequest => "password_reset_request",
            Event::PasswordReset => "password_reset",
            Event::EmailChange => "email_change",
            Event::EmailVerified => "email_verified",
            Event::Lock => "lock",
            Event::Unlock => "unlock",
            Event::SessionRevoke => "session_revoke",
            Event::Throttled => "throttled",
            Event::RoleGrant => "role_grant",
            Event::RoleRevoke => "role_revoke",
            Event::UserDelete => "user_delete",
            Event::MfaSetup => "mfa_setup",
            Event::MfaEnable => "mfa_enable",
            Event::MfaDisable => "mfa_disable",
            Event::MfaRecoveryCodes => "mfa_recovery_codes",
            Event::MfaReset => "mfa_reset",
            Event::MfaVerify => "mfa_verify",
            Event::PasskeyAdd => "passkey_add",
            Event::PasskeyRename => "passkey_rename",
            Event::PasskeyRemove => "passkey_remove",
        }
    }
}

/// Who the event concerns.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    /// Account id.
    pub id: Option<i64>,
    /// Username at the time.
    pub username: Option<&'a str>,
}

impl<'a> Subject<'a> {
    /// A known account.
    pub fn user(id: i64, username: &'a str) -> Self {
        Self {
            id: Some(id),
            username: Some(username),
        }
    }
}

/// Records an event. A failure to write is logged and does not fail the user's action.
pub async fn record(
    state: &AppState,
    event: Event,
    subject: Subject<'_>,
    client: &ClientInfo,
    outcome: &str,
    detail: Option<&str>,
) {
    let row = NewAuditEvent {
        at: state.clock.now(),
        user_id: subject.id,
        username: subject.username,
        event: event.as_str(),
        outcome,
        ip: client.ip.as_deref(),
        user_agent: client.user_agent.as_deref(),
        detail,
    };
    if let Err(e) = audit::insert(&state.db, &row).await {
        tracing::warn!(error = %e, event = event.as_str(), "could not write the audit log");
    }
}
