//! The token endpoints: `POST /api/token` (password → access + refresh token, or a second
//! step), `POST /api/token/mfa` (the second step), `POST /api/token/refresh` (rotate) and
//! `POST /api/logout` (end the session).
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::auth::credentials::{LoginOutcome, SignInAttempt, verify_credentials};
use crate::auth::second_factor::{self, Code, CodeCheck, SecondStep, SecondStepAttempt};
use crate::auth::sessions::{Presenter, SessionTokens, Sessions};
use crate::auth::sign_in::{self, Arrival, Channel, Method, Proven, Refusal};
use crate::db::DbPool;
use crate::db::audit::Action;
use crate::db::sessions::Ending;
use crate::db::users::User;
use crate::domain::MAX_PASSWORD_BYTES;
use crate::error::ApiError;
use crate::web::client::client_ip;
use crate::web::context::Services;
use crate::web::errors::ApiErrorBody;
use crate::web::extractors::CurrentUser;
use crate::web::json::StrictJson;

/// Give `username` or `email` (not both) and `password`. (Parsed leniently so that each
/// mistake gets its own message; the contract is `SignIn`.)
#[derive(Deserialize)]
pub(crate) struct TokenRequest {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
    device_token: Option<String>,
}

/// The contract of `POST /api/token`: a username or an email, and the password.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[expect(dead_code, reason = "the OpenAPI document's schema: the handler reads the body into its own types")]
pub(crate) enum SignIn {
    ByUsername(SignInByUsername),
    ByEmail(SignInByEmail),
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "the OpenAPI document's schema: the handler reads the body into its own types")]
pub(crate) struct SignInByUsername {
    #[schema(min_length = 1, max_length = 64, pattern = "^[^\\x00]+$")]
    username: String,
    #[schema(min_length = 1, max_length = 1024, pattern = "^[^\\x00]+$")]
    password: String,
    /// The `device_token` of an earlier sign-in from this client: with it, sign-in keeps
    /// working while strangers' guesses have paused the account for unknown clients.
    #[schema(max_length = 1024, pattern = "^[^\\x00]*$")]
    device_token: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "the OpenAPI document's schema: the handler reads the body into its own types")]
pub(crate) struct SignInByEmail {
    #[schema(min_length = 1, max_length = 254, pattern = "^[^\\x00]+$")]
    email: String,
    #[schema(min_length = 1, max_length = 1024, pattern = "^[^\\x00]+$")]
    password: String,
    /// The `device_token` of an earlier sign-in from this client: with it, sign-in keeps
    /// working while strangers' guesses have paused the account for unknown clients.
    #[schema(max_length = 1024, pattern = "^[^\\x00]*$")]
    device_token: Option<String>,
}

/// The second step of a sign-in: the `mfa_token` of the `mfa_required` answer and a code.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecondStepRequest {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 64, pattern = "^[^\\x00]+$")]
    mfa_token: Option<String>,
    /// A 6-digit code from the authenticator app, or a recovery code (`xxxx-xxxx-xxxx-xxxx`).
    /// (Spaces inside either, and upper case, are accepted too.)
    #[schema(
        required = true,
        value_type = String,
        min_length = 6,
        max_length = 19,
        pattern = "^([0-9]{6}|[0-9a-hjkmnp-tv-zA-HJKMNP-TV-Z]{4}-?[0-9a-hjkmnp-tv-zA-HJKMNP-TV-Z]{4}-?[0-9a-hjkmnp-tv-zA-HJKMNP-TV-Z]{4}-?[0-9a-hjkmnp-tv-zA-HJKMNP-TV-Z]{4})$"
    )]
    code: Option<String>,
    /// As for `POST /api/token`.
    #[schema(max_length = 1024, pattern = "^[^\\x00]*$")]
    device_token: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshRequest {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 128, pattern = "^[^\\x00]+$")]
    refresh_token: Option<String>,
}

/// An access token (a JWT for `Authorization: Bearer`) and the refresh token that renews it.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TokenResponse {
    token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
    refresh_expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<TokenUser>,
    /// After a sign-in: keep it and send it as `device_token` on later sign-ins.
    #[serde(skip_serializing_if = "Option::is_none")]
    device_token: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TokenUser {
    id: i64,
    username: String,
    email: String,
    role: &'static str,
}

impl TokenUser {
    fn of(user: &User) -> Self {
        Self {
            id: user.id,
            username: user.username.to_string(),
            email: user.email.to_string(),
            role: user.role.as_str(),
        }
    }
}

fn token_response(
    tokens: SessionTokens,
    user: Option<TokenUser>,
    device_token: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let refresh_token = tokens.refresh.ok_or_else(|| anyhow::anyhow!("an API refresh must rotate the token"))?;
    let now = chrono::Utc::now().timestamp();
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(TokenResponse {
        expires_in: u64::try_from(tokens.access.claims.exp - now).unwrap_or(0),
        token: tokens.access.token,
        token_type: "Bearer",
        refresh_token,
        refresh_expires_in: tokens.refresh_expires_in.as_secs(),
        user,
        device_token,
    }))
}

/// Sign in: exchange a username (or email) and password for tokens, starting a session.
#[utoipa::path(
    post,
    path = "/api/token",
    tag = "tokens",
    request_body = SignIn,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "Missing or malformed fields", body = ApiErrorBody),
        (status = 401, description = "Wrong name or password, or a disabled account (`invalid_credentials`); or the \
                                      password was right and the account has a second factor (`mfa_required`, with \
                                      `mfa_token` and `methods`: continue at POST /api/token/mfa)", body = ApiErrorBody),
        (status = 403, description = "The account must choose a new password (`password_change_required`) or set up \
                                      two-step sign-in (`mfa_enrolment_required`) on the web first", body = ApiErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ApiErrorBody),
        (status = 415, description = "Not JSON, or compressed", body = ApiErrorBody),
        (status = 429, description = "Too many attempts; see Retry-After", body = ApiErrorBody),
    )
)]
pub(crate) async fn issue(
    req: HttpRequest,
    body: StrictJson<TokenRequest>,
    app: Services,
) -> Result<HttpResponse, ApiError> {
    let Services { pool, throttle, hasher, factors, .. } = &app;
    let TokenRequest { username, email, password, device_token } = body.0;
    let login = match (username, email) {
        (Some(username), None) => username,
        (None, Some(email)) => email,
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest("give either \"username\" or \"email\", not both".into()));
        }
        (None, None) => {
            return Err(ApiError::BadRequest("missing field: \"username\" or \"email\"".into()));
        }
    };
    let password = password.ok_or_else(|| ApiError::BadRequest("missing field: \"password\"".into()))?;
    if login.is_empty() || password.is_empty() {
        return Err(ApiError::BadRequest("\"username\"/\"email\" and \"password\" must not be empty".into()));
    }

    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::BadRequest(format!("\"password\" is longer than {MAX_PASSWORD_BYTES} bytes")));
    }

    let presented_device = device_token.unwrap_or_default();
    let ip = client_ip(&req);
    let attempt = SignInAttempt { login: &login, client_ip: &ip, device: Some(&presented_device) };
    let outcome = verify_credentials(pool, hasher, throttle, attempt, SecretString::from(password)).await?;
    let (user, device_credential) = match outcome {
        LoginOutcome::Throttled { retry_after } => {
            // Every refusal at debug only: a flood must not fill the logs (the pause itself is a warning).
            tracing::debug!(event = "login_throttled", via = "api", username = %login.escape_debug(), client_ip = %ip, "login throttled");
            return Err(ApiError::Throttled(retry_after));
        }
        LoginOutcome::Success { user, .. } if user.must_change_password => {
            let known_user = Some((user.id, user.username.to_string()));
            let why = Some("must choose a new password first");
            let refusal = Refusal::Password { known_user, login: &login, channel: Channel::Api, why };
            sign_in::refused(pool, client_ip(&req), refusal).await?;
            return Err(ApiError::PasswordChangeRequired);
        }
        LoginOutcome::SecondFactorNeeded { user } => {
            let mfa_token = second_factor::begin_challenge(pool, user.id, "api", "", None).await?;
            tracing::info!(event = "login_second_step", via = "api", username = %user.username, client_ip = %ip, "password right; second step pending");
            let methods = second_factor::api_methods(pool, user.id).await?;
            return Err(ApiError::MfaRequired { mfa_token, methods });
        }
        LoginOutcome::Success { user, .. } if factors.must_enrol(&user) => {
            let known_user = Some((user.id, user.username.to_string()));
            let why = Some("must set up two-step sign-in first");
            let refusal = Refusal::Password { known_user, login: &login, channel: Channel::Api, why };
            sign_in::refused(pool, client_ip(&req), refusal).await?;
            return Err(ApiError::MfaEnrolmentRequired);
        }
        LoginOutcome::Success { user, device_credential } => (*user, device_credential),
        LoginOutcome::Failure { known_user } => {
            let refusal = Refusal::Password { known_user, login: &login, channel: Channel::Api, why: None };
            sign_in::refused(pool, client_ip(&req), refusal).await?;
            tracing::info!(event = "login_failed", via = "api", username = %login.escape_debug(), client_ip = %client_ip(&req), "login failed");
            return Err(ApiError::InvalidCredentials);
        }
    };
    let proven = Proven { user, method: Method::Password, device_credential: Some(device_credential) };
    signed_in(&app, &req, proven, &presented_device).await
}

/// The tokens of a finished sign-in through the API (`device_token`: what the client presented).
async fn signed_in(
    app: &Services,
    req: &HttpRequest,
    proven: Proven,
    device_token: &str,
) -> Result<HttpResponse, ApiError> {
    let token_user = TokenUser::of(&proven.user);
    let client = crate::web::client::client_info(req);
    let arrival = Arrival { channel: Channel::Api, client: &client, presented_device: device_token };
    let signed = sign_in::finish(app.sign_in(), proven, arrival).await?;
    token_response(signed.tokens, Some(token_user), Some(signed.device_credentials))
}

/// The second step: the `mfa_token` from `POST /api/token` and a code, for the usual tokens.
/// Wrong codes count on the same throttle as wrong passwords; five wrong codes void the
/// `mfa_token`.
#[utoipa::path(
    post,
    path = "/api/token/mfa",
    tag = "tokens",
    request_body = SecondStepRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "Missing or malformed fields (a code is 6 digits, or a 16-character recovery code)", body = ApiErrorBody),
        (status = 401, description = "A wrong or already used code (`invalid_code`), or an expired, used or unknown \
                                      `mfa_token` (`invalid_mfa_token`)", body = ApiErrorBody),
        (status = 403, description = "The account must choose a new password on the web first", body = ApiErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ApiErrorBody),
        (status = 415, description = "Not JSON, or compressed", body = ApiErrorBody),
        (status = 429, description = "Too many attempts; see Retry-After", body = ApiErrorBody),
    )
)]
pub(crate) async fn second_step(
    req: HttpRequest,
    body: StrictJson<SecondStepRequest>,
    app: Services,
) -> Result<HttpResponse, ApiError> {
    let SecondStepRequest { mfa_token, code, device_token } = body.0;
    let mfa_token = mfa_token.ok_or_else(|| ApiError::BadRequest("missing field: \"mfa_token\"".into()))?;
    let code = code.ok_or_else(|| ApiError::BadRequest("missing field: \"code\"".into()))?;
    let code = Code::parse_any(&code).map_err(|message| ApiError::BadRequest(message.to_owned()))?;
    let ip = client_ip(&req);
    let device = device_token.unwrap_or_default();
    let attempt = SecondStepAttempt { token: &mfa_token, client_ip: &ip, device: Some(&device) };
    let method = code.method();
    match second_factor::complete_challenge(&app.pool, &app.throttle, &app.factors, attempt, code).await? {
        SecondStep::Passed { user, device_credential, .. } => {
            if user.must_change_password {
                return Err(ApiError::PasswordChangeRequired);
            }
            let method = Method::after_password(method);
            let proven = Proven { user: *user, method, device_credential: Some(device_credential) };
            signed_in(&app, &req, proven, &device).await
        }
        SecondStep::Refused { starts_over: true, .. } | SecondStep::Expired => Err(ApiError::InvalidMfaToken),
        SecondStep::Refused { check: CodeCheck::Replayed, .. } => Err(ApiError::InvalidCode(
            "that code was already used; wait for the authenticator app's next code".to_owned(),
        )),
        SecondStep::Refused { .. } => Err(ApiError::InvalidCode(format!(
            "the code is wrong (a sign-in allows {} tries)",
            second_factor::MAX_CHALLENGE_FAILURES
        ))),
        SecondStep::Throttled { retry_after } => Err(ApiError::Throttled(retry_after)),
    }
}

/// Rotate: a refresh token for new tokens. The old refresh token is retired; presenting it
/// again ends the session.
#[utoipa::path(
    post,
    path = "/api/token/refresh",
    tag = "tokens",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New access and refresh tokens", body = TokenResponse),
        (status = 400, description = "Missing or malformed fields", body = ApiErrorBody),
        (status = 401, description = "Expired, revoked or already used", body = ApiErrorBody),
        (status = 415, description = "Not JSON, or compressed", body = ApiErrorBody),
    )
)]
pub(crate) async fn refresh(
    req: HttpRequest,
    body: StrictJson<RefreshRequest>,
    pool: web::Data<DbPool>,
    sessions: web::Data<Sessions>,
) -> Result<HttpResponse, ApiError> {
    let presented =
        body.0.refresh_token.ok_or_else(|| ApiError::BadRequest("missing field: \"refresh_token\"".into()))?;
    match sessions.refresh(&pool, &presented, &crate::web::client::client_info(&req), Presenter::ApiClient).await? {
        Ok(tokens) => token_response(tokens, None, None),
        Err(refusal) => {
            tracing::info!(reason = ?refusal, client_ip = %client_ip(&req), "refresh token refused");
            Err(ApiError::InvalidRefreshToken)
        }
    }
}

/// Ends the session of the Bearer token: its access and refresh tokens stop working.
#[utoipa::path(
    post,
    path = "/api/logout",
    tag = "tokens",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "No valid Bearer token", body = ApiErrorBody),
    )
)]
pub(crate) async fn logout(req: HttpRequest, caller: CurrentUser, app: Services) -> Result<HttpResponse, ApiError> {
    let ending = Ending::BySid(caller.session_id.clone());
    let target = (caller.user_id, caller.username.to_string());
    app.accounts().end_sessions(caller.actor(client_ip(&req)), ending, target, Action::Logout).await?;
    tracing::info!(event = "logout", via = "api", username = %caller.username, client_ip = %client_ip(&req), "logged out");
    Ok(HttpResponse::NoContent().finish())
}
