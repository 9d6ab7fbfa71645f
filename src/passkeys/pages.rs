//! The passkey forms of `/account/security`: rename and remove, which work without script.
//! Adding a passkey and signing in with one need the browser's WebAuthn API, so the pages
//! offer them through `/static/pages.js` (the buttons stay hidden without it).

use axum::extract::{Path, State};
use axum::routing::post;
use axum::Router;

use super::api::RenameInput;
use crate::passkeys;
use crate::state::AppState;
use crate::web::error::ApiError;
use crate::web::extract::{see_other, Client, RequireUser};
use crate::web::input::{Input, NoFields};
use crate::web::view::{parse_id, Frame, HtmlError, HtmlResult};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account/security/passkeys/{id}/rename", post(rename_post))
        .route("/account/security/passkeys/{id}/delete", post(delete_post))
}

async fn rename_post(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    frame: Frame,
    Path(id): Path<String>,
    input: Input<RenameInput>,
) -> HtmlResult {
    let id = parse_id(&id).map_err(HtmlError)?;
    match passkeys::rename(&state, &user, id, input.data.name.as_deref(), &client).await {
        Ok(_) => Ok(see_other(
            &frame.base.join("/account/security?done=passkey_renamed"),
            &[],
        )),
        Err(e) => {
            let error = ApiError::from(e);
            if matches!(error, ApiError::Validation(_)) {
                crate::mfa::pages::passkey_form_refused(&state, &frame, &user, id, error).await
            } else {
                Err(HtmlError(error))
            }
        }
    }
}

async fn delete_post(
    State(state): State<AppState>,
    RequireUser(user): RequireUser,
    Client(client): Client,
    frame: Frame,
    Path(id): Path<String>,
    _input: Input<NoFields>,
) -> HtmlResult {
    let id = parse_id(&id).map_err(HtmlError)?;
    passkeys::remove(&state, &user, id, &client)
        .await
        .map_err(|e| HtmlError(e.into()))?;
    Ok(see_other(
        &frame.base.join("/account/security?done=passkey_removed"),
        &[],
    ))
}
