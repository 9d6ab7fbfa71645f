//! How many mails latch sends: per client IP and per address, so the forms that mail
//! (forgot password, resend verification) cannot be used to flood an inbox.

use super::AccountError;
use crate::audit::{self, Event, Subject};
use crate::state::AppState;
use crate::store::sessions::ClientInfo;
use crate::store::StoreError;
use crate::throttle::{self, Decision, Limit};

pub(super) fn mail_limits(state: &AppState) -> (Limit, Limit) {
    let c = &state.config;
    (
        Limit {
            max: c.throttle_ip_mail_requests_per_hour,
            window: 3600,
        },
        Limit {
            max: c.throttle_address_mails_per_hour,
            window: 3600,
        },
    )
}

/// Checks the per-IP limit on mail requests (429 past it) and counts this request.
pub(super) async fn count_mail_request(
    state: &AppState,
    client: &ClientInfo,
) -> Result<(), AccountError> {
    let (per_ip, _) = mail_limits(state);
    if let Some(ip) = client.ip.as_deref() {
        let key = format!("mail-ip:{ip}");
        if let Decision::Wait(retry_after) = throttle::take(state, &[(&key, per_ip)]).await? {
            audit::record(
                state,
                Event::Throttled,
                Subject::default(),
                client,
                "refused",
                Some("mail requests per IP"),
            )
            .await;
            return Err(AccountError::Throttled { retry_after });
        }
    }
    Ok(())
}

/// Whether another mail may go to `address` this hour (silently not sent otherwise, so the
/// answer does not change).
pub(super) async fn address_may_receive(
    state: &AppState,
    address: &str,
) -> Result<bool, StoreError> {
    let (_, per_address) = mail_limits(state);
    let key = format!("mail-to:{address}");
    match throttle::take(state, &[(&key, per_address)]).await? {
        Decision::Allowed(taken) => {
            taken.keep();
            Ok(true)
        }
        Decision::Wait(_) => Ok(false),
    }
}
