//! `/account/security/passkeys/…`: add a passkey (two JSON calls from `static/passkeys.js`:
//! options, then the browser's answer), rename and remove one (forms). Adding works for any
//! signed-in user, whatever the policy, including one who must still set up a second factor.
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::{PATH, PasswordOnly, confirm_password};
use crate::accounts::{AccountError, MAX_PASSKEYS_PER_USER};
use crate::auth::passkeys::PasskeyError;
use crate::db::users;
use crate::error::{ApiError, PageError};
use crate::web::account::shared::load_account;
use crate::web::context::{Page, Services};
use crate::web::errors::ApiErrorBody;
use crate::web::extractors::CurrentUser;
use crate::web::form::CsrfForm;
use crate::web::json::{CarriesCsrfToken, CsrfJson};
use crate::web::params::PasskeyId;
use crate::web::passkey_shapes::{OptionsRequest, OptionsResponse};

impl CarriesCsrfToken for RegisterRequest {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

/// A new passkey: the options' `token`, the name the user chose, the browser's credential.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterRequest {
    #[serde(default)]
    #[schema(max_length = 256, pattern = "^[^\\x00]*$")]
    csrf_token: String,
    #[serde(default)]
    #[schema(max_length = 8192, pattern = "^[^\\x00]*$")]
    token: String,
    /// 1 to 64 characters, no control characters.
    #[serde(default)]
    #[schema(
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: String,
    /// The `PublicKeyCredential` from `navigator.credentials.create`.
    #[schema(value_type = AttestationCredential)]
    credential: Option<RegisterPublicKeyCredential>,
}

/// What `navigator.credentials.create` answered (binary fields base64url), as the page sends it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "the OpenAPI document's schema of the credential, which webauthn-rs parses itself")]
pub(crate) struct AttestationCredential {
    #[schema(max_length = 1024, pattern = "^[^\\x00]*$")]
    id: String,
    #[serde(rename = "rawId")]
    #[schema(
        max_length = 1024,
        pattern = "^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
    )]
    raw_id: String,
    #[serde(rename = "type")]
    #[schema(max_length = 64, pattern = "^[^\\x00]*$")]
    type_: String,
    response: AttestationResponse,
    #[serde(default)]
    extensions: crate::web::passkey_shapes::NoExtensions,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "the OpenAPI document's schema of the credential, which webauthn-rs parses itself")]
pub(crate) struct AttestationResponse {
    #[serde(rename = "attestationObject")]
    #[schema(
        max_length = 8192,
        pattern = "^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
    )]
    attestation_object: String,
    #[serde(rename = "clientDataJSON")]
    #[schema(
        max_length = 4096,
        pattern = "^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
    )]
    client_data_json: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Added {
    message: String,
    /// When this passkey is the account's first second factor: its 10 recovery codes, shown
    /// once (the page lists them with a download).
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery_codes: Option<Vec<String>>,
}

#[derive(Deserialize)]
pub(crate) struct NameForm {
    #[serde(default)]
    name: String,
}

/// A new passkey signs in as this user: it needs a recent proof that this is them.
fn proved_recently(app: &Services, user: &CurrentUser) -> Result<(), ApiError> {
    if app.sessions.proved_recently(user) { Ok(()) } else { Err(ApiError::ProofRequired) }
}

/// `POST /account/security/passkeys/options`: registration options for the signed-in user.
#[utoipa::path(
    post,
    path = "/account/security/passkeys/options",
    tag = "passkeys",
    request_body = OptionsRequest,
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "Options for `navigator.credentials.create`", body = OptionsResponse),
        (status = 401, description = "Not signed in, or the session ended (`signed_out`)", body = ApiErrorBody),
        (status = 400, description = "Malformed body", body = ApiErrorBody),
        (status = 403, description = "A CSRF token not bound to this session; passkeys are off here; or no recent proof of identity (`confirm_identity`: confirm at /account/security/confirm first)", body = ApiErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ApiErrorBody),
        (status = 415, description = "Not JSON", body = ApiErrorBody),
    )
)]
pub(crate) async fn options(
    user: CurrentUser,
    _body: CsrfJson<OptionsRequest>,
    app: Services,
) -> Result<HttpResponse, ApiError> {
    proved_recently(&app, &user)?;
    let user_id = user.user_id;
    let account = crate::db::run(&app.pool, move |conn| -> anyhow::Result<_> { Ok(users::find_by_id(conn, user_id)?) })
        .await?
        .ok_or(ApiError::NotFound)?;
    if app.accounts().passkeys_of(user_id).await?.len() >= usize::try_from(MAX_PASSKEYS_PER_USER).unwrap_or(usize::MAX)
    {
        return Err(ApiError::BadRequest(format!(
            "An account can have at most {MAX_PASSKEYS_PER_USER} passkeys: remove one you no longer use first."
        )));
    }
    let (token, options) = app.passkeys.start_registration(&app.pool, &account, &user.session_id).await?;
    Ok(HttpResponse::Ok().json(OptionsResponse { token, options }))
}

/// `POST /account/security/passkeys`: the browser's new credential, verified and stored.
#[utoipa::path(
    post,
    path = "/account/security/passkeys",
    tag = "passkeys",
    request_body = RegisterRequest,
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "Added", body = Added),
        (status = 401, description = "Not signed in, or the session ended (`signed_out`)", body = ApiErrorBody),
        (status = 400, description = "Missing fields, a bad name, or a credential not accepted (expired or used options, wrong origin or site, no user verification, registered already)", body = ApiErrorBody),
        (status = 403, description = "A CSRF token not bound to this session; passkeys are off here; or no recent proof of identity (`confirm_identity`: confirm at /account/security/confirm first)", body = ApiErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ApiErrorBody),
        (status = 415, description = "Not JSON", body = ApiErrorBody),
    )
)]
pub(crate) async fn register(
    req: HttpRequest,
    user: CurrentUser,
    body: CsrfJson<RegisterRequest>,
    app: Services,
) -> Result<HttpResponse, ApiError> {
    let RegisterRequest { token, name, credential, .. } = body.body;
    proved_recently(&app, &user)?;
    let credential = credential.ok_or_else(|| ApiError::BadRequest("missing field: \"credential\"".into()))?;
    let verified =
        app.passkeys.finish_registration(&app.pool, &token, user.user_id, &user.session_id, &credential).await;
    let new = verified.map_err(|error| match error {
        PasskeyError::Unexpected(_) | PasskeyError::Unavailable(_) => ApiError::from(error),
        other => ApiError::BadRequest(other.to_string()),
    })?;
    let actor = user.actor(crate::web::client::client_ip(&req));
    app.accounts().add_passkey(actor.clone(), user.user_id, &name, new, &user.session_id).await?;
    tracing::info!(event = "passkey_added", username = %user.username, "passkey added");
    // A first second factor comes with recovery codes, so losing the device is not the end.
    let recovery_codes = if app.accounts().recovery_codes_left(user.user_id).await? == 0 {
        Some(app.accounts().regenerate_recovery_codes(actor, user.user_id).await?)
    } else {
        None
    };
    let mut response = HttpResponse::Ok();
    // A user who had to set up a second factor now has one: the token must say so at once.
    if let Some(access) = app.sessions.reissue(&app.pool, &user.session_id).await? {
        for cookie in app.session_cookies(&access)? {
            response.cookie(cookie);
        }
    }
    Ok(response.json(Added { message: format!("Passkey “{}” added.", name.trim()), recovery_codes }))
}

/// `POST …/{passkey}/rename`.
pub(crate) async fn rename(page: Page, id: PasskeyId, form: CsrfForm<NameForm>) -> Result<HttpResponse, PageError> {
    match page.accounts().rename_passkey(page.actor(), page.user.user_id, id.0, &form.0.name).await {
        Ok(()) => Ok(page.redirect(PATH, "The passkey was renamed.")),
        Err(AccountError::Field((_, message)) | AccountError::Refused(message)) => Ok(page.redirect(PATH, &message)),
        Err(error) => Err(error.into()),
    }
}

/// `POST …/{passkey}/remove`, with the current password: the passkey stops working at once.
pub(crate) async fn remove(
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
