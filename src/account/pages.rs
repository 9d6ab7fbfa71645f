//! The account pages: `/account` (profile, password, email, recent security events),
//! `/account/sessions`, and the pages mailed links open: `/forgot-password`,
//! `/reset-password?token=`, `/verify-email?token=`.
//!
//! Every form POSTs with the CSRF token and is refused without it, the reset form included:
//! its mailed secret proves nothing about who sent the form, and a cross-site POST of an
//! attacker's own reset link would otherwise sign the victim's browser out. The mailed
//! verification link is a GET that changes nothing in the visitor's session (it only marks the
//! token's own address verified), so it needs no form.

use std::time::Instant;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::Deserialize;

use super::api::FORGOT_FLOOR;
use crate::account::{self, AccountError};
use crate::clock::rfc3339;
use crate::domain::{parse_profile_name, FieldErrors};
use crate::sessions;
use crate::state::AppState;
use crate::store::sessions::ClientInfo;
use crate::user::AuthUser;
use crate::web::base::Base;
use crate::web::error::ApiError;
use crate::web::extract::{see_other, with_cookies, Client, MaybeSession, RequireUser};
use crate::web::input::{Input, NoFields};
use crate::web::view::{self, first_messages, Frame, HtmlResult};

/// The account routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(account_get))
        .route("/account/profile", post(profile_post))
        .route("/account/password", post(password_post))
        .route("/account/email", post(email_post))
        .route("/account/verify/resend", post(resend_post))
        .route("/account/sessions", get(sessions_get))
        .route("/account/sessions/revoke-others", post(revoke_others_post))
        .route("/account/sessions/{id}/revoke", post(revoke_post))
        .route("/forgot-password", get(forgot_get).post(forgot_post))
        .route("/reset-password", get(reset_get).post(reset_post))
        .route("/verify-email", get(verify_get))
}

/// The `/account` page with optional form errors and kept values.
async fn account_page(
    state: &AppState,
    frame: &Frame,
    user: &AuthUser,
    status: StatusCode,
    notice: Option<&str>,
    errors: &FieldErrors,
    email_value: Option<&str>,
) -> HtmlResult {
    let events = account::recent_events(state, user, 15).await?;
    let events: Vec<_> = events
        .iter()
        .map(|e| {
            context! {
                at => rfc3339(e.at),
                event => e.event,
                outcome => e.outcome,
                ip => e.ip,
                client => sessions::describe_user_agent(e.user_agent.as_deref()),
            }
        })
        .collect();
    let extra = context! {
        errors => first_messages(errors),
        profile => context! { first_name => user.first_name, last_name => user.last_name },
        email_value => email_value,
        events => events,
    };
    view::render(state, frame, "account.html", status, notice, extra)
}

async fn account_get(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    frame: Frame,
    RawQuery(raw): RawQuery,
) -> HtmlResult {
    let done = view::query_param(raw.as_deref(), "done");
    account_page(
        &state,
        &frame,
        &user,
        StatusCode::OK,
        view::notice(done.as_deref()),
        &FieldErrors::new(),
        None,
    )
    .await
}

#[derive(Debug, Deserialize)]
struct ProfileForm {
    first_name: Option<String>,
    last_name: Option<String>,
}

async fn profile_post(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    frame: Frame,
    input: Input<ProfileForm>,
) -> HtmlResult {
    let mut errors = FieldErrors::new();
    let first = errors.check(
        "first_name",
        parse_profile_name(input.data.first_name.as_deref()),
    );
    let last = errors.check(
        "last_name",
        parse_profile_name(input.data.last_name.as_deref()),
    );
    match (first, last) {
        (Some(first), Some(last)) if errors.is_empty() => {
            account::set_profile(&state, &user, first.as_deref(), last.as_deref()).await?;
            Ok(see_other(
                &frame.base.join("/account?done=profile_saved"),
                &[],
            ))
        }
        _ => {
            account_page(
                &state,
                &frame,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                &errors,
                None,
            )
            .await
        }
    }
}

async fn password_post(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    frame: Frame,
    input: Input<account::PasswordChangeInput>,
) -> HtmlResult {
    let Input { data, session } = input;
    let result = account::change_password(&state, &user, &data.change(), &client).await;
    match result {
        Ok(record) => {
            let new =
                sessions::reissue_after_password_change(&state, &record, session.as_ref(), &client)
                    .await?;
            Ok(see_other(
                &frame.base.join("/account?done=password_changed"),
                &[new.set_cookie],
            ))
        }
        Err(e) => form_error(&state, &frame, &user, e, "current_password", None).await,
    }
}

/// Shows the account page again for a form's failure, with the message at `field`.
async fn form_error(
    state: &AppState,
    frame: &Frame,
    user: &AuthUser,
    error: AccountError,
    field: &str,
    email_value: Option<&str>,
) -> HtmlResult {
    let error = ApiError::from(error);
    let errors = match &error {
        ApiError::Validation(fields) => fields.clone(),
        ApiError::InvalidCredentials => {
            FieldErrors::single(field, "This is not your current password.")
        }
        ApiError::EmailTaken => FieldErrors::single("email", error.message()),
        ApiError::TooManyAttempts { .. } => FieldErrors::single(field, error.message()),
        _ => return Err(error.into()),
    };
    account_page(
        state,
        frame,
        user,
        error.status(),
        None,
        &errors,
        email_value,
    )
    .await
}

#[derive(Debug, Deserialize)]
struct EmailForm {
    email: Option<String>,
    password: Option<String>,
}

async fn email_post(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    frame: Frame,
    input: Input<EmailForm>,
) -> HtmlResult {
    let email = input.data.email.as_deref().unwrap_or_default();
    let password = input.data.password.as_deref().unwrap_or_default();
    match account::change_email(&state, &user, password, email, &client).await {
        Ok(()) => Ok(see_other(
            &frame.base.join("/account?done=email_change_sent"),
            &[],
        )),
        Err(e) => form_error(&state, &frame, &user, e, "password", Some(email)).await,
    }
}

async fn resend_post(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    frame: Frame,
    _input: Input<NoFields>,
) -> HtmlResult {
    match account::resend_verification(&state, &user, &client).await {
        Ok(()) => Ok(see_other(
            &frame.base.join("/account?done=verification_sent"),
            &[],
        )),
        Err(e) => form_error(&state, &frame, &user, e, "email", None).await,
    }
}

async fn sessions_get(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    MaybeSession(session): MaybeSession,
    frame: Frame,
    RawQuery(raw): RawQuery,
) -> HtmlResult {
    let current = session.as_ref().map(|s| s.id());
    let list = account::sessions(&state, &user).await?;
    let rows: Vec<_> = list
        .iter()
        .map(|s| {
            context! {
                id => s.id,
                client => sessions::describe_user_agent(s.user_agent.as_deref()),
                ip => s.ip,
                created_at => rfc3339(s.created_at),
                last_seen_at => rfc3339(s.last_seen_at),
                remember => s.remember,
                current => Some(s.id) == current,
                factors => sessions::describe_factors(&s.factors),
            }
        })
        .collect();
    let done = view::query_param(raw.as_deref(), "done");
    view::render(
        &state,
        &frame,
        "account_sessions.html",
        StatusCode::OK,
        view::notice(done.as_deref()),
        context! { sessions => rows },
    )
}

async fn revoke_post(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    Path(id): Path<String>,
    base: Base,
    _input: Input<NoFields>,
) -> HtmlResult {
    let id = view::parse_id(&id)?;
    account::revoke_session(&state, &user, id, &client).await?;
    Ok(see_other(
        &base.join("/account/sessions?done=session_revoked"),
        &[],
    ))
}

async fn revoke_others_post(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    base: Base,
    input: Input<NoFields>,
) -> HtmlResult {
    let keep = input.session.as_ref().map(|s| s.id());
    account::revoke_other_sessions(&state, &user, keep, &client).await?;
    Ok(see_other(
        &base.join("/account/sessions?done=others_revoked"),
        &[],
    ))
}

/// A frame whose session exists (anonymous if need be), for forms shown to visitors.
async fn visitor_frame(
    state: &AppState,
    session: Option<sessions::ActiveSession>,
    client: &ClientInfo,
    base: Base,
) -> Result<(Frame, Vec<String>), ApiError> {
    let (session, cookies) = view::ensure_session(state, session, client).await?;
    let frame = Frame {
        user: session.user(),
        csrf_token: Some(session.csrf_token()),
        flash: None,
        base,
    };
    Ok((frame, cookies))
}

async fn forgot_get(
    State(state): State<AppState>,
    MaybeSession(session): MaybeSession,
    Client(client): Client,
    base: Base,
) -> HtmlResult {
    let (frame, cookies) = visitor_frame(&state, session, &client, base).await?;
    let extra = context! { errors => context! {}, sent => false };
    let page = view::render(
        &state,
        &frame,
        "forgot_password.html",
        StatusCode::OK,
        None,
        extra,
    )?;
    Ok(with_cookies(page, &cookies))
}

#[derive(Debug, Deserialize)]
struct ForgotForm {
    email: Option<String>,
}

async fn forgot_post(
    State(state): State<AppState>,
    Client(client): Client,
    frame: Frame,
    input: Input<ForgotForm>,
) -> HtmlResult {
    let started = Instant::now();
    let email = input.data.email.clone().unwrap_or_default();
    let result = account::forgot_password(&state, &email, &client).await;
    tokio::time::sleep(FORGOT_FLOOR.saturating_sub(started.elapsed())).await;
    let (status, extra) = match result {
        Ok(()) => (StatusCode::OK, context! { sent => true }),
        Err(e) => {
            let error = ApiError::from(e);
            let errors = match &error {
                ApiError::Validation(fields) => first_messages(fields),
                ApiError::TooManyAttempts { .. } => {
                    first_messages(&FieldErrors::single("email", error.message()))
                }
                _ => return Err(error.into()),
            };
            (
                error.status(),
                context! { sent => false, errors => errors, email => email },
            )
        }
    };
    view::render(&state, &frame, "forgot_password.html", status, None, extra)
}

async fn reset_get(
    State(state): State<AppState>,
    MaybeSession(session): MaybeSession,
    Client(client): Client,
    base: Base,
    RawQuery(raw): RawQuery,
) -> HtmlResult {
    let (frame, cookies) = visitor_frame(&state, session, &client, base).await?;
    let token = view::query_param(raw.as_deref(), "token");
    let form_error = token.is_none().then(|| ApiError::InvalidToken.message());
    let extra = context! { token => token, errors => context! {}, form_error => form_error };
    let page = view::render(
        &state,
        &frame,
        "reset_password.html",
        StatusCode::OK,
        None,
        extra,
    )?;
    Ok(with_cookies(page, &cookies))
}

#[derive(Debug, Deserialize)]
struct ResetForm {
    token: Option<String>,
    password: Option<String>,
}

async fn reset_post(
    State(state): State<AppState>,
    Client(client): Client,
    frame: Frame,
    Input { data: input, .. }: Input<ResetForm>,
) -> HtmlResult {
    let token = input.token.unwrap_or_default();
    match account::reset_password(
        &state,
        &token,
        input.password.as_deref().unwrap_or_default(),
        &client,
    )
    .await
    {
        Ok(_) => Ok(see_other(
            &frame.base.join("/login"),
            &[
                sessions::removal_cookie(&state),
                view::flash_cookie(&state, "password_reset"),
            ],
        )),
        Err(e) => {
            let error = ApiError::from(e);
            let extra = match &error {
                ApiError::Validation(fields) => {
                    context! { token => token, errors => first_messages(fields) }
                }
                ApiError::InvalidToken => {
                    context! { errors => context! {}, form_error => error.message() }
                }
                _ => return Err(error.into()),
            };
            view::render(
                &state,
                &frame,
                "reset_password.html",
                error.status(),
                None,
                extra,
            )
        }
    }
}

/// Opening the mailed link verifies: the 256-bit token in it is the proof, so this GET is
/// safe to act on (an attacker cannot forge it), and mail clients need a plain link.
async fn verify_get(
    State(state): State<AppState>,
    Client(client): Client,
    frame: Frame,
    RawQuery(raw): RawQuery,
) -> HtmlResult {
    let token = view::query_param(raw.as_deref(), "token").unwrap_or_default();
    match account::verify_email(&state, &token, &client).await {
        Ok(user) => {
            let extra = context! { verified => true, email => user.email };
            view::render(
                &state,
                &frame,
                "verify_email.html",
                StatusCode::OK,
                None,
                extra,
            )
        }
        Err(e) => {
            let error = ApiError::from(e);
            if !matches!(error, ApiError::InvalidToken | ApiError::EmailTaken) {
                return Err(error.into());
            }
            let extra = context! { verified => false, message => error.message() };
            view::render(
                &state,
                &frame,
                "verify_email.html",
                error.status(),
                None,
                extra,
            )
        }
    }
}
