//! Server-rendered pages: they work without JavaScript, every form carries the CSRF token,
//! and a form with errors is shown again with a message at each bad field.

use axum::extract::{FromRequest, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::Deserialize;

use crate::auth::{self, Credentials, LoginInput, NewAccount, SignInError, SignupInput};
use crate::domain::{FieldErrors, NextPath};
use crate::sessions;
use crate::state::AppState;
use crate::web::base::Base;
use crate::web::error::ApiError;
use crate::web::extract::{append_cookies, see_other, Client, MaybeSession, RequireUser};
use crate::web::input::{Input, NoFields};
use crate::web::view::{self, Frame, HtmlError, HtmlResult};

/// The page routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index_get))
        .route("/login", get(login_get).post(login_post))
        .route("/register", get(register_get).post(register_post))
        .route("/logout", post(logout_post))
        .route("/dashboard", get(dashboard_get))
}

type PageResult = HtmlResult;

/// Renders through [`view::render`] (which shows and clears a pending flash message), then
/// sets `set_cookies`.
fn render(
    state: &AppState,
    frame: &Frame,
    template: &str,
    status: StatusCode,
    extra: minijinja::Value,
    set_cookies: &[String],
) -> PageResult {
    let mut response = view::render(state, frame, template, status, None, extra)?;
    append_cookies(&mut response, set_cookies);
    Ok(response)
}

/// What the sign-in page needs for its passkey button: `next`, whether passkeys are on, and
/// where a passkey sign-in goes (the same place the form's would).
fn passkey_context(state: &AppState, base: &Base, next: Option<String>) -> minijinja::Value {
    let after = NextPath::or_dashboard_with(next.as_deref(), base.as_str(), &state.return_domains);
    context! {
        next,
        passkeys_on => state.relying_party.is_ok(),
        after_sign_in => after.as_str(),
    }
}

/// The `next` parameter of a page's query string. Read by hand rather than with `Query`, so
/// that a repeated or malformed parameter is ignored instead of failing the page.
struct NextQuery {
    next: Option<String>,
}

impl NextQuery {
    fn from_raw(RawQuery(raw): RawQuery) -> Self {
        let next = raw.and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "next")
                .map(|(_, v)| v.into_owned())
        });
        NextQuery { next }
    }
}

/// The `next` value to carry through a form: kept only when safe.
fn safe_next(state: &AppState, raw: Option<&str>) -> Option<String> {
    raw.and_then(|r| NextPath::parse_with(r, &state.return_domains))
        .map(|p| p.as_str().to_owned())
}

async fn index_get(
    State(state): State<AppState>,
    base: Base,
    MaybeSession(session): MaybeSession,
    headers: HeaderMap,
) -> PageResult {
    let user = session.as_ref().and_then(|s| s.user());
    let frame = Frame {
        user: user.clone(),
        csrf_token: session.map(|s| s.csrf_token()),
        flash: view::read_flash(&headers),
        base: base.clone(),
    };
    render(
        &state,
        &frame,
        "index.html",
        StatusCode::OK,
        context! {},
        &[],
    )
}

async fn login_get(
    State(state): State<AppState>,
    base: Base,
    MaybeSession(session): MaybeSession,
    Client(client): Client,
    raw_query: RawQuery,
    headers: HeaderMap,
) -> PageResult {
    let query = NextQuery::from_raw(raw_query);
    if session.as_ref().and_then(|s| s.user()).is_some() {
        return Ok(see_other(
            NextPath::or_dashboard_with(
                query.next.as_deref(),
                base.as_str(),
                &state.return_domains,
            )
            .as_str(),
            &[],
        ));
    }
    let (session, cookies) = view::ensure_session(&state, session, &client).await?;
    let frame = Frame {
        user: None,
        csrf_token: Some(session.csrf_token()),
        flash: view::read_flash(&headers),
        base: base.clone(),
    };
    let next = safe_next(&state, query.next.as_deref());
    let extra = context! {
        values => context! {},
        errors => context! {},
        ..passkey_context(&state, &base, next)
    };
    render(
        &state,
        &frame,
        "login.html",
        StatusCode::OK,
        extra,
        &cookies,
    )
}

async fn login_post(
    State(state): State<AppState>,
    base: Base,
    Client(client): Client,
    headers: HeaderMap,
    raw_query: RawQuery,
    input: Input<LoginInput>,
) -> PageResult {
    let Input { data, session } = input;
    // The form's hidden field, else the page's own `?next=` (a form posted to `/login?next=…`).
    let next = safe_next(&state, data.next.as_deref())
        .or_else(|| safe_next(&state, NextQuery::from_raw(raw_query).next.as_deref()));
    let show_again = |status, errors: FieldErrors, form_error: Option<String>| {
        let frame = Frame {
            user: None,
            csrf_token: session.as_ref().map(|s| s.csrf_token()),
            flash: view::read_flash(&headers),
            base: base.clone(),
        };
        let extra = context! {
            values => context! { login => data.login.clone(), remember_me => data.remember_me },
            errors => view::first_messages(&errors),
            form_error => form_error,
            ..passkey_context(&state, &base, next.clone())
        };
        render(&state, &frame, "login.html", status, extra, &[])
    };
    let credentials = match Credentials::try_from(&data) {
        Ok(c) => c,
        Err(errors) => return show_again(StatusCode::UNPROCESSABLE_ENTITY, errors, None),
    };
    match auth::sign_in(&state, &credentials, &client).await {
        Ok(auth::PasswordChecked { user, second_step }) if !second_step.is_empty() => {
            let remember = data.remember_me.unwrap_or(false);
            let pending =
                crate::mfa::begin_sign_in(&state, &user, remember, &client, session.as_ref())
                    .await?;
            Ok(see_other(
                &crate::mfa::pages::second_step_path(&base, next.as_deref()),
                &[pending.set_cookie],
            ))
        }
        Ok(auth::PasswordChecked { user, .. }) => {
            let remember = data.remember_me.unwrap_or(false);
            let new =
                sessions::start(&state, Some(&user), remember, &client, session.as_ref()).await?;
            let target =
                NextPath::or_dashboard_with(next.as_deref(), base.as_str(), &state.return_domains);
            Ok(see_other(
                target.as_str(),
                &[new.set_cookie, view::flash_cookie(&state, "signed_in")],
            ))
        }
        Err(
            e @ (SignInError::InvalidCredentials
            | SignInError::Locked
            | SignInError::EmailUnverified
            | SignInError::Throttled { .. }),
        ) => {
            let error = ApiError::from(e);
            let mut response =
                show_again(error.status(), FieldErrors::new(), Some(error.message()))?;
            error.add_headers(&mut response);
            Ok(response)
        }
        Err(e) => Err(e.into()),
    }
}

async fn register_get(
    State(state): State<AppState>,
    base: Base,
    MaybeSession(session): MaybeSession,
    Client(client): Client,
    raw_query: RawQuery,
    headers: HeaderMap,
) -> PageResult {
    let query = NextQuery::from_raw(raw_query);
    if session.as_ref().and_then(|s| s.user()).is_some() {
        return Ok(see_other(&base.join("/dashboard"), &[]));
    }
    let (session, cookies) = view::ensure_session(&state, session, &client).await?;
    let frame = Frame {
        user: None,
        csrf_token: Some(session.csrf_token()),
        flash: view::read_flash(&headers),
        base: base.clone(),
    };
    let extra = context! { next => safe_next(&state, query.next.as_deref()), values => context! {}, errors => context! {} };
    render(
        &state,
        &frame,
        "register.html",
        StatusCode::OK,
        extra,
        &cookies,
    )
}

/// The register form: the sign-up fields plus where to go afterwards.
#[derive(Debug, Deserialize)]
struct RegisterForm {
    #[serde(flatten)]
    fields: SignupInput,
    next: Option<String>,
}

async fn register_post(
    State(state): State<AppState>,
    base: Base,
    Client(client): Client,
    headers: HeaderMap,
    raw_query: RawQuery,
    input: Input<RegisterForm>,
) -> PageResult {
    let Input { data, session } = input;
    // The form's hidden field, else the page's own `?next=` (a form posted to `/login?next=…`).
    let next = safe_next(&state, data.next.as_deref())
        .or_else(|| safe_next(&state, NextQuery::from_raw(raw_query).next.as_deref()));
    let values = context! {
        username => data.fields.username.clone(),
        email => data.fields.email.clone(),
        first_name => data.fields.first_name.clone(),
        last_name => data.fields.last_name.clone(),
    };
    let show_again = |status, errors: FieldErrors| {
        let frame = Frame {
            user: None,
            csrf_token: session.as_ref().map(|s| s.csrf_token()),
            flash: view::read_flash(&headers),
            base: base.clone(),
        };
        let extra = context! { next => next.clone(), values => values.clone(), errors => view::first_messages(&errors) };
        render(&state, &frame, "register.html", status, extra, &[])
    };
    let account = match NewAccount::try_from(data.fields) {
        Ok(account) => account,
        Err(errors) => return show_again(StatusCode::UNPROCESSABLE_ENTITY, errors),
    };
    match auth::register(&state, &account, &client).await {
        Ok(user) => {
            let new =
                sessions::start(&state, Some(&user), false, &client, session.as_ref()).await?;
            let target =
                NextPath::or_dashboard_with(next.as_deref(), base.as_str(), &state.return_domains);
            Ok(see_other(
                target.as_str(),
                &[new.set_cookie, view::flash_cookie(&state, "welcome")],
            ))
        }
        Err(e) => {
            let error = ApiError::from(e);
            match error.fields() {
                Some(fields) => show_again(error.status(), fields),
                None => Err(HtmlError(error)),
            }
        }
    }
}

async fn logout_post(
    State(state): State<AppState>,
    base: Base,
    MaybeSession(session): MaybeSession,
    Client(client): Client,
    request: Request,
) -> PageResult {
    let Some(session) = session else {
        return Ok(see_other(
            &base.join("/"),
            &[sessions::removal_cookie(&state)],
        ));
    };
    if let Err(rejection) = Input::<NoFields>::from_request(request, &state).await {
        return Ok(rejection.into_response());
    }
    let clear = sessions::end(&state, &session, &client).await?;
    Ok(see_other(
        &base.join("/"),
        &[clear, view::flash_cookie(&state, "signed_out")],
    ))
}

async fn dashboard_get(
    State(state): State<AppState>,
    base: Base,
    RequireUser(user): RequireUser,
    MaybeSession(session): MaybeSession,
    headers: HeaderMap,
) -> PageResult {
    let frame = Frame {
        user: Some(user),
        csrf_token: session.map(|s| s.csrf_token()),
        flash: view::read_flash(&headers),
        base: base.clone(),
    };
    render(
        &state,
        &frame,
        "dashboard.html",
        StatusCode::OK,
        context! {},
        &[],
    )
}
