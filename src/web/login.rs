//! `GET /login` and `POST /login`: the sign-in form, protected against login CSRF. A user
//! with a second factor continues at `/login/second-step` (`second_step`).
pub(crate) mod forgot;
pub(crate) mod passkey;
pub(crate) mod second_step;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use super::layout::{Layout, render, see_other, with_retry_after};
use super::time_words::wait_phrase;
use crate::auth::credentials::{LoginOutcome, SignInAttempt, verify_credentials};
use crate::auth::second_factor;
use crate::auth::sign_in::{self, Channel, Method, Proven, Refusal};
use crate::domain::MAX_PASSWORD_BYTES;
use crate::domain::{ReturnTo, SiteHosts};
use crate::error::PageError;
use crate::random;
use crate::web::client::client_ip;
use crate::web::context::Services;
use crate::web::cookies::CookiePolicy;
use crate::web::extractors::MaybeUser;
use crate::web::form::StrictForm;
use crate::web::signed_in;

/// One message for unknown user, wrong password and disabled account.
const LOGIN_FAILED: &str = "The username, email or password is not right, or the account is disabled.";
const MAX_NONCE_CHARS: usize = 64;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    layout: Layout,
    csrf_token: String,
    username: &'a str,
    next: &'a str,
    error: Option<&'a str>,
    /// Offer "Sign in with a passkey" (when passkeys work here).
    passkeys: bool,
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    /// Where to go after signing in: a path here, or (`rd`, from a reverse proxy) an address on
    /// one of our sites. Checked by `ReturnTo` where used; a bad one means the dashboard.
    #[serde(default)]
    next: String,
    #[serde(default)]
    rd: String,
    /// A name to fill in (an OpenID Connect app's `login_hint`).
    #[serde(default)]
    login_hint: String,
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    next: String,
}

/// `raw` if it is somewhere a sign-in may go (kept in the form), else nothing.
fn checked(raw: &str, sites: &SiteHosts) -> String {
    ReturnTo::parse(raw, sites).map(|to| to.as_str().to_owned()).unwrap_or_default()
}

/// The nonce the login CSRF tokens are bound to: the browser's, or a new one to set.
/// The second-step cookie's value: the pending sign-in's token, bound to this browser's
/// login nonce (see [`pending_step`]).
fn pending_step_cookie(app: &Services, nonce: &str, token: &str) -> actix_web::cookie::Cookie<'static> {
    app.cookies.second_step(format!("{token}.{}", app.csrf.for_pending_step(nonce, token)))
}

/// The token of this browser's pending sign-in: empty when there is none, or when the cookie
/// was made for another browser (its login nonce differs) — a copied cookie completes nothing.
pub(crate) fn pending_step<'r>(app: &Services, req: &'r HttpRequest) -> &'r str {
    let cookie = crate::web::cookies::read(req, app.cookies.second_step_name()).unwrap_or_default();
    let nonce = crate::web::cookies::read(req, app.cookies.login_csrf_name()).unwrap_or_default();
    match cookie.rsplit_once('.') {
        Some((token, tag)) if app.csrf.verify_pending_step(nonce, token, tag) => token,
        _ => "",
    }
}

fn login_nonce(req: &HttpRequest, cookies: &CookiePolicy) -> (String, bool) {
    let existing = req
        .cookie(cookies.login_csrf_name())
        .map(|cookie| cookie.value().to_owned())
        .filter(|nonce| !nonce.is_empty() && nonce.len() <= MAX_NONCE_CHARS);
    match existing {
        Some(nonce) => (nonce, false),
        None => (random::token_base64(32), true),
    }
}

pub(crate) async fn form(
    req: HttpRequest,
    query: web::Query<LoginQuery>,
    visitor: MaybeUser,
    flash: super::flash::Flash,
    app: Services,
) -> Result<HttpResponse, PageError> {
    let Services { csrf, cookies, passkeys, sites, .. } = &app;
    let query = query.into_inner();
    let next = checked(if query.rd.is_empty() { &query.next } else { &query.rd }, sites);
    if visitor.0.is_some() {
        // Signed in already (or just renewed from the refresh cookie): straight on.
        return Ok(see_other(&app.landing(&next)).finish());
    }
    let (nonce, new_nonce) = login_nonce(&req, cookies);
    let page = LoginPage {
        layout: Layout::default().with_flash(&flash),
        csrf_token: csrf.for_login(&nonce),
        username: if query.login_hint.chars().count() <= 254 { query.login_hint.trim() } else { "" },
        next: &next,
        error: None,
        passkeys: passkeys.available(),
    };
    let mut response = flash.finish(render(StatusCode::OK, &page)?);
    if new_nonce {
        response.add_cookie(&cookies.login_csrf(nonce)).map_err(|error| PageError::Unexpected(error.into()))?;
    }
    Ok(crate::web::app_return::for_next(&app, &next, response).await)
}

pub(crate) async fn submit(
    req: HttpRequest,
    form: StrictForm<LoginForm>,
    app: Services,
) -> Result<HttpResponse, PageError> {
    let Services { pool, cookies, csrf, throttle, hasher, .. } = &app;
    let LoginForm { username, password, csrf_token, next } = form.0;
    let next = checked(&next, &app.sites);
    let nonce = crate::web::cookies::read(&req, cookies.login_csrf_name()).unwrap_or_default();
    if !csrf.verify_login(nonce, &csrf_token) {
        tracing::warn!(client_ip = %client_ip(&req), "login form refused: CSRF token missing or wrong");
        return Err(PageError::CsrfRejected);
    }
    // A new password attempt starts over: a second step this browser had pending is dropped.
    let pending_step = Some(pending_step(&app, &req)).filter(|token| !token.is_empty());
    if let Some(token) = pending_step {
        second_factor::abandon_challenge(pool, token).await?;
    }
    // The form shown again may still post its way to the app `next` returns to.
    let app_origin = crate::web::app_return::origin_of_request(&app, &next).await;
    let failed = |status: StatusCode, message: &str| {
        let page = LoginPage {
            layout: Layout::default(),
            csrf_token: csrf_token.clone(),
            username: &username,
            next: &next,
            error: Some(message),
            passkeys: app.passkeys.available(),
        };
        let mut response = render(status, &page)?;
        if pending_step.is_some() {
            response.add_cookie(&cookies.second_step_removal()).map_err(|error| PageError::Unexpected(error.into()))?;
        }
        if let Some(origin) = &app_origin {
            response = crate::web::app_return::allow_posting_to(response, &app, origin);
        }
        Ok::<_, PageError>(response)
    };
    if username.trim().is_empty() || password.is_empty() {
        return failed(StatusCode::BAD_REQUEST, "Enter your username or email and your password.");
    }

    if password.len() > MAX_PASSWORD_BYTES {
        return failed(StatusCode::BAD_REQUEST, &format!("Passwords are at most {MAX_PASSWORD_BYTES} bytes long."));
    }

    let ip = client_ip(&req);
    let presented_device = crate::web::cookies::read(&req, cookies.device_name()).unwrap_or_default().to_owned();
    let attempt = SignInAttempt { login: &username, client_ip: &ip, device: Some(&presented_device) };
    let outcome = verify_credentials(pool, hasher, throttle, attempt, SecretString::from(password)).await?;
    let (user, device_credential) = match outcome {
        LoginOutcome::Success { user, device_credential } => (*user, device_credential),
        LoginOutcome::SecondFactorNeeded { user } => {
            let token = second_factor::begin_challenge(pool, user.id, "form", &next, None).await?;
            tracing::info!(event = "login_second_step", username = %user.username, client_ip = %ip, "password right; second step pending");
            return Ok(see_other(second_step::PATH).cookie(pending_step_cookie(&app, nonce, &token)).finish());
        }
        LoginOutcome::Throttled { retry_after } => {
            // Every refusal at debug only: a flood must not fill the logs (the pause itself is a warning).
            tracing::debug!(event = "login_throttled", username = %username.escape_debug(), client_ip = %ip, "login throttled");
            let message = format!("Too many sign-in attempts. Wait {} and try again.", wait_phrase(retry_after));
            return Ok(with_retry_after(failed(StatusCode::TOO_MANY_REQUESTS, &message)?, retry_after));
        }
        LoginOutcome::Failure { known_user } => {
            let refusal = Refusal::Password { known_user, login: &username, channel: Channel::Browser, why: None };
            sign_in::refused(pool, client_ip(&req), refusal).await?;
            tracing::info!(event = "login_failed", username = %username.escape_debug(), client_ip = %client_ip(&req), "login failed");
            return failed(StatusCode::UNAUTHORIZED, LOGIN_FAILED);
        }
    };
    let proven = Proven { user, method: Method::Password, device_credential: Some(device_credential) };
    let signed = signed_in::start(&app, &req, proven).await?;
    let mut response = signed_in::redirect(&app, signed, &app.landing(&next))?;
    if pending_step.is_some() {
        response.cookie(cookies.second_step_removal());
    }
    Ok(response.finish())
}
