//! The pages of the second factor: `/login/mfa` (the second step of a sign-in) and
//! `/account/security` (set up, confirm, recovery codes, turn off). Forms only, no script;
//! each carries the CSRF token, and a refused form is shown again with the message at its
//! field.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;

use super::api::{CodeInput, DisableInput, PasswordInput, SecondStepInput};
use crate::domain::{FieldErrors, NextPath};
use crate::mfa::{self, MfaError, Setup};
use crate::sessions::ActiveSession;
use crate::state::AppState;
use crate::user::AuthUser;
use crate::web::base::Base;
use crate::web::error::ApiError;
use crate::web::extract::{append_cookies, see_other, Client, MaybeSession, RequireUser};
use crate::web::input::Input;
use crate::web::view::{self, Frame, HtmlError, HtmlResult};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login/mfa", get(second_step_get).post(second_step_post))
        .route("/account/security", get(security_get))
        .route("/account/security/totp/setup", post(setup_post))
        .route("/account/security/totp/confirm", post(confirm_post))
        .route("/account/security/recovery-codes", post(codes_post))
        .route("/account/security/totp/disable", post(disable_post))
}

/// `/login/mfa`, keeping `next` (already checked by the caller's `safe_next`, which knows
/// the configured `redirect_domains`).
pub fn second_step_path(base: &Base, next: Option<&str>) -> String {
    match next {
        Some(next) => {
            let encoded: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
            base.join(&format!("/login/mfa?next={encoded}"))
        }
        None => base.join("/login/mfa"),
    }
}

/// `/login`, keeping an already checked `next` (where an expired or missing second step starts over).
fn login_path(base: &Base, next: Option<&str>) -> String {
    match next {
        Some(next) => {
            let encoded: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
            base.join(&format!("/login?next={encoded}"))
        }
        None => base.join("/login"),
    }
}

fn safe_next(state: &AppState, raw: Option<&str>) -> Option<String> {
    raw.and_then(|r| NextPath::parse_with(r, &state.return_domains))
        .map(|p| p.as_str().to_owned())
}

/// How a refused form is shown: status, messages at fields, a message above the form, and
/// the error (for its headers, such as `Retry-After`). Server failures become error pages.
struct Refusal {
    status: StatusCode,
    errors: FieldErrors,
    form_error: Option<String>,
    error: ApiError,
}

fn refusal(e: impl Into<ApiError>, code_field: &str) -> Result<Refusal, HtmlError> {
    let error = e.into();
    let (errors, form_error) = match &error {
        ApiError::Validation(fields) => (fields.clone(), None),
        ApiError::InvalidCredentials => (
            FieldErrors::single("current_password", "This is not your current password."),
            None,
        ),
        ApiError::InvalidCode => (FieldErrors::single(code_field, error.message()), None),
        e if e.status().is_client_error() => (FieldErrors::new(), Some(e.message())),
        _ => return Err(HtmlError(error)),
    };
    Ok(Refusal {
        status: error.status(),
        errors,
        form_error,
        error,
    })
}

// ---- /login/mfa ----

/// `next`, and what the waiting user can finish with ([`mfa::Waiting::methods`]): the code
/// field when they have TOTP (`codes`), the passkey button when a passkey can do it
/// (`passkey`), and where a passkey sign-in goes (where the form would). A user whose only
/// second factor is a passkey gets the button alone. `step_up` when a signed-in session adds
/// the factor (the wording differs).
async fn passkey_context(
    state: &AppState,
    base: &Base,
    session: &ActiveSession,
    next: Option<String>,
) -> Result<minijinja::Value, HtmlError> {
    let waiting = mfa::waiting(state, session, state.clock.now());
    let methods = match &waiting {
        Some(w) => match crate::store::users::find_by_id(&state.db, w.user_id).await? {
            Some(user) => w.methods(state, &user),
            None => Vec::new(),
        },
        None => Vec::new(),
    };
    let step_up = waiting.is_some_and(|w| w.step_up);
    let passkey = methods.contains(&"passkey");
    // Without a method the code form stays, as before: posting it says what is wrong.
    let codes = methods.contains(&"totp") || !passkey;
    let after = NextPath::or_dashboard_with(next.as_deref(), base.as_str(), &state.return_domains);
    Ok(context! { next, passkey, codes, step_up, after_sign_in => after.as_str() })
}

/// The second step's form, for a pending sign-in or a step-up ([`mfa::waiting`]). A session
/// with nothing to add goes on to `next` when signed in, to `/login` when not.
async fn second_step_get(
    State(state): State<AppState>,
    base: Base,
    MaybeSession(session): MaybeSession,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> HtmlResult {
    let next = safe_next(&state, view::query_param(raw.as_deref(), "next").as_deref());
    let now = state.clock.now();
    let session = match session {
        Some(s) if mfa::waiting(&state, &s, now).is_some() => s,
        other => {
            let to = elsewhere(&state, &base, other.as_ref(), next.as_deref());
            return Ok(see_other(&to, &[]));
        }
    };
    let frame = Frame {
        user: session.user(),
        csrf_token: Some(session.csrf_token()),
        flash: view::read_flash(&headers),
        base: base.clone(),
    };
    let extra =
        context! { errors => context! {}, ..passkey_context(&state, &base, &session, next).await? };
    view::render(
        &state,
        &frame,
        "login_mfa.html",
        StatusCode::OK,
        None,
        extra,
    )
}

/// Where a session that has no second step to take goes instead: on to `next` (or the
/// dashboard) when signed in, to `/login` keeping `next` when not.
fn elsewhere(
    state: &AppState,
    base: &Base,
    session: Option<&ActiveSession>,
    next: Option<&str>,
) -> String {
    if session.is_some_and(ActiveSession::is_signed_in) {
        NextPath::or_dashboard_with(next, base.as_str(), &state.return_domains)
            .as_str()
            .to_owned()
    } else {
        login_path(base, next)
    }
}

async fn second_step_post(
    State(state): State<AppState>,
    base: Base,
    Client(client): Client,
    RawQuery(raw): RawQuery,
    input: Input<SecondStepInput>,
) -> HtmlResult {
    let Input { data, session } = input;
    let next = safe_next(&state, data.next.as_deref())
        .or_else(|| safe_next(&state, view::query_param(raw.as_deref(), "next").as_deref()));
    let outcome = mfa::complete_sign_in(
        &state,
        session.as_ref(),
        data.code.as_deref(),
        data.recovery_code.as_deref(),
        &client,
    )
    .await;
    let flash = if session.as_ref().is_some_and(ActiveSession::is_signed_in) {
        "step_up"
    } else {
        "signed_in"
    };
    match outcome {
        Ok((_, new)) => Ok(see_other(
            NextPath::or_dashboard_with(next.as_deref(), base.as_str(), &state.return_domains)
                .as_str(),
            &[new.set_cookie, view::flash_cookie(&state, flash)],
        )),
        Err(MfaError::NotPending) => Ok(see_other(
            &elsewhere(&state, &base, session.as_ref(), next.as_deref()),
            &[],
        )),
        Err(e) => {
            let shown = refusal(e, "code")?;
            let frame = Frame {
                user: session.as_ref().and_then(|s| s.user()),
                csrf_token: session.as_ref().map(|s| s.csrf_token()),
                flash: None,
                base: base.clone(),
            };
            let offer = match &session {
                Some(s) => passkey_context(&state, &base, s, next).await?,
                None => context! { next, codes => true },
            };
            let extra = context! {
                errors => view::first_messages(&shown.errors),
                form_error => shown.form_error,
                ..offer
            };
            let mut response =
                view::render(&state, &frame, "login_mfa.html", shown.status, None, extra)?;
            shown.error.add_headers(&mut response);
            Ok(response)
        }
    }
}

// ---- /account/security ----

/// What the security page shows besides the state.
#[derive(Default)]
struct Shown {
    setup: Option<Setup>,
    recovery_codes: Vec<String>,
    /// Which form the field errors belong to (`disable`, `codes`, or the setup forms).
    form: &'static str,
    refusal: Option<Refusal>,
    notice: Option<&'static str>,
    /// The passkey whose rename form the field errors belong to.
    passkey: Option<i64>,
}

/// The security page again after a refused passkey form (`id`'s rename), with the error at
/// its field; server failures become error pages.
pub(crate) async fn passkey_form_refused(
    state: &AppState,
    frame: &Frame,
    user: &AuthUser,
    id: i64,
    error: ApiError,
) -> HtmlResult {
    let shown = Shown {
        passkey: Some(id),
        refusal: Some(refusal(error, "name")?),
        ..Shown::default()
    };
    security_page(state, frame, user, shown, &[]).await
}

async fn security_page(
    state: &AppState,
    frame: &Frame,
    user: &AuthUser,
    shown: Shown,
    set_cookies: &[String],
) -> HtmlResult {
    let status = mfa::status(state, user).await?;
    let passkeys: Vec<_> = crate::store::passkeys::list(&state.db, user.id)
        .await?
        .into_iter()
        .map(|p| {
            context! {
                id => p.id,
                name => p.name,
                created_at => crate::clock::rfc3339(p.created_at),
                last_used_at => p.last_used_at.map(crate::clock::rfc3339),
            }
        })
        .collect();
    let setup = shown.setup.as_ref().map(|s| {
        context! { secret => s.secret.clone(), qr => mfa::qr::svg(&s.otpauth_url) }
    });
    let (code, errors, form_error) = match &shown.refusal {
        Some(r) => (
            r.status,
            view::first_messages(&r.errors),
            r.form_error.clone(),
        ),
        None => (StatusCode::OK, Default::default(), None),
    };
    let extra = context! {
        status => context! { totp => status.totp, recovery_codes_left => status.recovery_codes_left },
        setup,
        recovery_codes => shown.recovery_codes,
        required => mfa::enrollment_required(state, user),
        form => shown.form,
        passkeys,
        passkeys_off => state.relying_party.as_ref().err().map(|reason| reason.to_string()),
        passkey_form => shown.passkey,
        errors,
        form_error,
    };
    let mut response = view::render(
        state,
        frame,
        "account_security.html",
        code,
        shown.notice,
        extra,
    )?;
    if let Some(r) = &shown.refusal {
        r.error.add_headers(&mut response);
    }
    append_cookies(&mut response, set_cookies);
    Ok(response)
}

async fn security_get(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    frame: Frame,
    RawQuery(raw): RawQuery,
) -> HtmlResult {
    let done = view::query_param(raw.as_deref(), "done");
    let shown = Shown {
        notice: view::notice(done.as_deref()),
        ..Shown::default()
    };
    security_page(&state, &frame, &user, shown, &[]).await
}

async fn setup_post(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    frame: Frame,
    input: Input<PasswordInput>,
) -> HtmlResult {
    let password = input.data.current_password.as_deref();
    let shown = match mfa::set_up(&state, &user, password, &client).await {
        Ok(setup) => Shown {
            setup: Some(setup),
            ..Shown::default()
        },
        Err(e) => Shown {
            refusal: Some(refusal(e, "current_password")?),
            ..Shown::default()
        },
    };
    security_page(&state, &frame, &user, shown, &[]).await
}

/// The confirm form: the code, and the secret it was shown with (so a mistyped code can show
/// the same secret again, to the one who already has it).
#[derive(Debug, Default, serde::Deserialize)]
struct ConfirmForm {
    #[serde(flatten)]
    code: CodeInput,
    secret: Option<String>,
}

async fn confirm_post(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    frame: Frame,
    input: Input<ConfirmForm>,
) -> HtmlResult {
    let Input { data, session } = input;
    let code = data.code.code.as_deref();
    match mfa::confirm(&state, &user, session.as_ref(), code, &client).await {
        Ok(enabled) => {
            let (frame, cookies) = match enabled.session {
                Some(new) => (
                    Frame {
                        user: new.session.user(),
                        csrf_token: Some(new.session.csrf_token()),
                        flash: None,
                        base: frame.base.clone(),
                    },
                    vec![new.set_cookie],
                ),
                None => (frame, Vec::new()),
            };
            let shown_user = frame.user.clone().unwrap_or(user);
            let shown = Shown {
                recovery_codes: enabled.recovery_codes,
                ..Shown::default()
            };
            security_page(&state, &frame, &shown_user, shown, &cookies).await
        }
        Err(e) => {
            let setup = match data.secret.as_deref() {
                Some(secret) => mfa::unconfirmed_secret(&state, &user, secret).await?,
                None => None,
            };
            let shown = Shown {
                setup,
                refusal: Some(refusal(e, "code")?),
                ..Shown::default()
            };
            security_page(&state, &frame, &user, shown, &[]).await
        }
    }
}

async fn codes_post(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    frame: Frame,
    input: Input<PasswordInput>,
) -> HtmlResult {
    let password = input.data.current_password.as_deref();
    let shown = match mfa::regenerate_codes(&state, &user, password, &client).await {
        Ok(codes) => Shown {
            recovery_codes: codes,
            ..Shown::default()
        },
        Err(e) => Shown {
            form: "codes",
            refusal: Some(refusal(e, "current_password")?),
            ..Shown::default()
        },
    };
    security_page(&state, &frame, &user, shown, &[]).await
}

async fn disable_post(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    frame: Frame,
    input: Input<DisableInput>,
) -> HtmlResult {
    let data = &input.data;
    let outcome = mfa::disable(
        &state,
        &user,
        data.current_password.as_deref(),
        data.code.as_deref(),
        &client,
    )
    .await;
    match outcome {
        Ok(()) => Ok(see_other(
            &frame.base.join("/account/security?done=mfa_disabled"),
            &[],
        )),
        Err(e) => {
            let shown = Shown {
                form: "disable",
                refusal: Some(refusal(e, "code")?),
                ..Shown::default()
            };
            security_page(&state, &frame, &user, shown, &[]).await
        }
    }
}
