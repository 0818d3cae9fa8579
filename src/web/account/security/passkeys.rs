//! `/account/security/passkeys/…`: add a passkey (two JSON calls from `static/passkeys.js`:
//! options, then the browser's answer), rename and remove one (forms). Adding works for any
//! signed-in user, whatever the policy, including one who must still set up a second factor.
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::{PATH, PasswordOnly, confirm_password};
use crate::accounts::AccountError;
use crate::auth::passkeys::PasskeyError;
use crate::db::users;
use crate::error::{ApiError, PageError};
use crate::web::account::page::load_account;
use crate::web::api::json::StrictJson;
use crate::web::context::{Page, Services};
use crate::web::extractors::CurrentUser;
use crate::web::form::CsrfForm;
use crate::web::login::passkey::OptionsResponse;
use crate::web::params::PasskeyId;

#[derive(Deserialize)]
pub struct OptionsRequest {
    #[serde(default)]
    csrf_token: String,
}

#[derive(Deserialize)]
pub struct RegisterRequest {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: String,
    credential: Option<RegisterPublicKeyCredential>,
}

#[derive(Serialize)]
struct Added {
    message: String,
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

fn verify_csrf(app: &Services, user: &CurrentUser, token: &str) -> Result<(), ApiError> {
    if app.csrf.verify_session(&user.session_id, token) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("this page has expired: reload it and try again".into()))
    }
}

/// `POST …/options`: registration options for the signed-in user.
pub async fn options(
    user: CurrentUser,
    body: StrictJson<OptionsRequest>,
    app: Services,
) -> Result<HttpResponse, ApiError> {
    verify_csrf(&app, &user, &body.0.csrf_token)?;
    let user_id = user.user_id;
    let account = crate::db::run(&app.pool, move |conn| -> anyhow::Result<_> { Ok(users::find_by_id(conn, user_id)?) })
        .await?
        .ok_or(ApiError::NotFound)?;
    let (token, options) = app.passkeys.start_registration(&app.pool, &account, &user.session_id).await?;
    Ok(HttpResponse::Ok().json(OptionsResponse { token, options }))
}

/// `POST /account/security/passkeys`: the browser's new credential, verified and stored.
pub async fn register(
    req: HttpRequest,
    user: CurrentUser,
    body: StrictJson<RegisterRequest>,
    app: Services,
) -> Result<HttpResponse, ApiError> {
    let RegisterRequest { csrf_token, token, name, credential } = body.0;
    verify_csrf(&app, &user, &csrf_token)?;
    let credential = credential.ok_or_else(|| ApiError::BadRequest("missing field: \"credential\"".into()))?;
    let verified =
        app.passkeys.finish_registration(&app.pool, &token, user.user_id, &user.session_id, &credential).await;
    let new = verified.map_err(|error| match error {
        PasskeyError::Unexpected(_) | PasskeyError::Unavailable(_) => ApiError::from(error),
        other => ApiError::BadRequest(other.to_string()),
    })?;
    let actor = user.actor(crate::auth::client::client_ip(&req));
    app.accounts().add_passkey(actor, user.user_id, &name, new).await?;
    tracing::info!(event = "passkey_added", username = %user.username, "passkey added");
    let mut response = HttpResponse::Ok();
    // A user who had to set up a second factor now has one: the token must say so at once.
    if let Some(access) = app.sessions.reissue(&app.pool, &user.session_id).await? {
        response.cookie(app.cookies.session(access.token, app.sessions.policy().access_token_ttl));
    }
    Ok(response.json(Added { message: format!("Passkey “{}” added.", name.trim()) }))
}

/// `POST …/{passkey}/rename`.
pub async fn rename(page: Page, id: PasskeyId, form: CsrfForm<NameForm>) -> Result<HttpResponse, PageError> {
    match page.accounts().rename_passkey(page.actor(), page.user.user_id, id.0, &form.0.name).await {
        Ok(()) => Ok(page.redirect(PATH, "The passkey was renamed.")),
        Err(AccountError::Field((_, message)) | AccountError::Refused(message)) => Ok(page.redirect(PATH, &message)),
        Err(error) => Err(error.into()),
    }
}

/// `POST …/{passkey}/remove`, with the current password: the passkey stops working at once.
pub async fn remove(
    req: HttpRequest,
    page: Page,
    id: PasskeyId,
    form: CsrfForm<PasswordOnly>,
) -> Result<HttpResponse, PageError> {
    let account = load_account(&page).await?;
    let field = "remove_passkey_password";
    if let Some(refusal) = confirm_password(&req, &page, &account, &form.0.current_password, field).await? {
        return Ok(refusal);
    }
    match page.accounts().remove_passkey(page.actor(), &account, id.0).await {
        Ok(name) => Ok(page.redirect(PATH, &format!("Passkey “{name}” removed; it no longer signs you in."))),
        Err(AccountError::Refused(message)) => Ok(page.redirect(PATH, &message)),
        Err(error) => Err(error.into()),
    }
}
