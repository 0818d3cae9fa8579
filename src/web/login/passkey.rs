//! The JSON endpoints behind `static/passkeys.js` on the login pages: signing in with a passkey
//! instead of a password (`/login/passkey/…`), and a passkey as the second step
//! (`/login/second-step/passkey/…`). Both are bound to the login form's nonce cookie (login
//! CSRF); the second step also to the pending sign-in's cookie. Answers and errors are JSON.
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::PublicKeyCredential;

use crate::auth::credentials;
use crate::auth::passkeys::{PasskeyError, Purpose};
use crate::auth::second_factor::{self, SecondStep, SecondStepAttempt};
use crate::auth::sign_in::{self, KeyKind, Method, Proven, Refusal};
use crate::error::ApiError;
use crate::web::client::client_ip;
use crate::web::context::Services;
use crate::web::errors::ApiErrorBody;
use crate::web::json::{CarriesCsrfToken, CsrfJson, LoginNonce};
use crate::web::passkey_shapes::{NoExtensions, OptionsRequest, OptionsResponse};

/// What `navigator.credentials.get` answered (binary fields base64url), as the page sends it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "the OpenAPI document's schema of the credential, which webauthn-rs parses itself")]
pub(crate) struct AssertionCredential {
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
    response: AssertionResponse,
    #[serde(default)]
    extensions: NoExtensions,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "the OpenAPI document's schema of the credential, which webauthn-rs parses itself")]
pub(crate) struct AssertionResponse {
    #[serde(rename = "authenticatorData")]
    #[schema(
        max_length = 2048,
        pattern = "^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
    )]
    authenticator_data: String,
    #[serde(rename = "clientDataJSON")]
    #[schema(
        max_length = 4096,
        pattern = "^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
    )]
    client_data_json: String,
    #[schema(
        max_length = 1024,
        pattern = "^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
    )]
    signature: String,
    #[serde(rename = "userHandle")]
    #[schema(
        max_length = 256,
        pattern = "^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
    )]
    user_handle: Option<String>,
}

impl CarriesCsrfToken for AssertionRequest {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

/// The browser's answer to a sign-in challenge.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssertionRequest {
    #[serde(default)]
    #[schema(max_length = 256, pattern = "^[^\\x00]*$")]
    csrf_token: String,
    /// The `token` of the options answered.
    #[serde(default)]
    #[schema(max_length = 8192, pattern = "^[^\\x00]*$")]
    token: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get`.
    #[schema(value_type = AssertionCredential)]
    credential: Option<PublicKeyCredential>,
    /// Where to go afterwards (a same-site path).
    #[serde(default)]
    #[schema(max_length = 2048, pattern = "^[^\\x00]*$")]
    next: String,
}

/// Where the browser goes now that it is signed in.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SignedIn {
    redirect: String,
}

fn refusal(error: PasskeyError) -> ApiError {
    ApiError::from(error)
}

/// `POST /login/passkey/options`: a challenge any of this site's passkeys can answer.
#[utoipa::path(
    post,
    path = "/login/passkey/options",
    tag = "passkeys",
    request_body = OptionsRequest,
    responses(
        (status = 200, description = "Options for `navigator.credentials.get`", body = OptionsResponse),
        (status = 400, description = "Malformed body", body = ApiErrorBody),
        (status = 403, description = "No login form nonce cookie, or a CSRF token not bound to it; or passkeys are off here", body = ApiErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ApiErrorBody),
        (status = 415, description = "Not JSON", body = ApiErrorBody),
    )
)]
pub(crate) async fn sign_in_options(
    body: CsrfJson<OptionsRequest, LoginNonce>,
    app: Services,
) -> Result<HttpResponse, ApiError> {
    let (token, options) = app.passkeys.start_sign_in(&body.bound.0)?;
    Ok(HttpResponse::Ok().json(OptionsResponse { token, options }))
}

/// `POST /login/passkey`: the browser's answer; a session when it verifies. Counted on the
/// client address's sign-in budget, failures audited.
#[utoipa::path(
    post,
    path = "/login/passkey",
    tag = "passkeys",
    request_body = AssertionRequest,
    responses(
        (status = 200, description = "Signed in: the session cookies are set; go to `redirect`", body = SignedIn),
        (status = 400, description = "Missing or malformed fields", body = ApiErrorBody),
        (status = 401, description = "Not accepted (`invalid_passkey`): expired or used challenge, unknown or removed passkey, wrong origin or site, no user verification, a counter that went back", body = ApiErrorBody),
        (status = 403, description = "No login form nonce cookie, or a CSRF token not bound to it; or passkeys are off here", body = ApiErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ApiErrorBody),
        (status = 415, description = "Not JSON", body = ApiErrorBody),
        (status = 429, description = "Too many attempts from this address; see Retry-After", body = ApiErrorBody),
    )
)]
pub(crate) async fn sign_in(
    req: HttpRequest,
    body: CsrfJson<AssertionRequest, LoginNonce>,
    app: Services,
) -> Result<HttpResponse, ApiError> {
    let CsrfJson { body: AssertionRequest { token, credential, next, .. }, bound: LoginNonce(nonce) } = body;
    let credential = credential.ok_or_else(|| ApiError::BadRequest("missing field: \"credential\"".into()))?;
    let ip = client_ip(&req);
    let counters = app.throttle.address_counters(&ip);
    if let Err(retry_after) = credentials::begin(&app.pool, &app.throttle, &counters).await? {
        return Err(ApiError::Throttled(retry_after));
    }
    let verified =
        app.passkeys.finish_authentication(&app.pool, &token, Purpose::SignIn, &nonce, &credential, &ip).await;
    credentials::settle(&app.pool, &app.throttle, counters, verified.is_ok()).await?;
    let used = match verified {
        Ok(used) => used,
        Err(error) => {
            sign_in::refused(&app.pool, ip.clone(), Refusal::Passkey { error: error.to_string() }).await?;
            tracing::info!(event = "login_failed", method = "passkey", client_ip = %ip, reason = %error, "passkey sign-in refused");
            return Err(refusal(error));
        }
    };
    let method = Method::Passkey(KeyKind::of(used.key_kind));
    signed_in(&req, &app, Proven { user: used.user, method, device_credential: None }, &next).await
}

/// A session for `proven`, answered as JSON: its cookies, and where the page goes next (a
/// pending second step, if any, is over).
async fn signed_in(req: &HttpRequest, app: &Services, proven: Proven, next: &str) -> Result<HttpResponse, ApiError> {
    let signed = crate::web::signed_in::start(app, req, proven).await?;
    let mut response = crate::web::signed_in::answer(app, signed)?;
    response.cookie(app.cookies.second_step_removal());
    Ok(response.json(SignedIn { redirect: app.landing(next) }))
}

/// `POST /login/second-step/passkey/options`: a challenge for the pending sign-in's passkeys.
#[utoipa::path(
    post,
    path = "/login/second-step/passkey/options",
    tag = "passkeys",
    request_body = OptionsRequest,
    responses(
        (status = 200, description = "Options for `navigator.credentials.get`", body = OptionsResponse),
        (status = 400, description = "Malformed body", body = ApiErrorBody),
        (status = 401, description = "No pending sign-in (`invalid_mfa_token`), or the user has no passkey (`invalid_passkey`)", body = ApiErrorBody),
        (status = 403, description = "No login form nonce cookie, or a CSRF token not bound to it; or passkeys are off here", body = ApiErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ApiErrorBody),
        (status = 415, description = "Not JSON", body = ApiErrorBody),
    )
)]
pub(crate) async fn second_step_options(
    req: HttpRequest,
    _body: CsrfJson<OptionsRequest, LoginNonce>,
    app: Services,
) -> Result<HttpResponse, ApiError> {
    let pending_token = super::pending_step(&app, &req);
    let pending = second_factor::pending(&app.pool, pending_token).await?.ok_or(ApiError::InvalidMfaToken)?;
    let (token, options) =
        app.passkeys.start_second_step(&app.pool, &pending.user, pending_token).await.map_err(refusal)?;
    Ok(HttpResponse::Ok().json(OptionsResponse { token, options }))
}

/// `POST /login/second-step/passkey`: the pending sign-in completed with a passkey.
#[utoipa::path(
    post,
    path = "/login/second-step/passkey",
    tag = "passkeys",
    request_body = AssertionRequest,
    responses(
        (status = 200, description = "Signed in: the session cookies are set; go to `redirect`", body = SignedIn),
        (status = 400, description = "Missing or malformed fields", body = ApiErrorBody),
        (status = 401, description = "Not accepted (`invalid_passkey`: another user's passkey, expired challenge …), or no pending sign-in (`invalid_mfa_token`)", body = ApiErrorBody),
        (status = 403, description = "No login form nonce cookie, or a CSRF token not bound to it; or passkeys are off here", body = ApiErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ApiErrorBody),
        (status = 415, description = "Not JSON", body = ApiErrorBody),
        (status = 429, description = "Too many attempts; see Retry-After", body = ApiErrorBody),
    )
)]
pub(crate) async fn second_step(
    req: HttpRequest,
    body: CsrfJson<AssertionRequest, LoginNonce>,
    app: Services,
) -> Result<HttpResponse, ApiError> {
    let AssertionRequest { token, credential, .. } = body.body;
    let credential = credential.ok_or_else(|| ApiError::BadRequest("missing field: \"credential\"".into()))?;
    let pending_token = super::pending_step(&app, &req);
    let ip = client_ip(&req);
    let device = crate::web::cookies::read(&req, app.cookies.device_name()).unwrap_or_default().to_owned();
    let attempt = SecondStepAttempt { token: pending_token, client_ip: &ip, device: Some(&device) };
    let (outcome, error) =
        second_factor::complete_with_passkey(&app.pool, &app.throttle, &app.passkeys, attempt, &token, &credential)
            .await?;
    match outcome {
        SecondStep::Passed { user, method, next_path, device_credential, .. } => {
            let proven = Proven {
                user: *user,
                method: Method::after_password(method),
                device_credential: Some(device_credential),
            };
            signed_in(&req, &app, proven, &next_path).await
        }
        SecondStep::Refused { starts_over: true, .. } | SecondStep::Expired => Err(ApiError::InvalidMfaToken),
        SecondStep::Refused { .. } => Err(refusal(error.unwrap_or(PasskeyError::Unknown))),
        SecondStep::Throttled { retry_after } => Err(ApiError::Throttled(retry_after)),
    }
}
