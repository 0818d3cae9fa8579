//! `GET /login/second-step` and `POST /login/second-step`: the code from an authenticator app
//! (or a recovery code) after a right password. Until it is right there is no session: the
//! browser holds only the pending sign-in's token (see `auth::second_factor`).
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::login_nonce;
use crate::auth::second_factor::{
    self, Code, CodeCheck, MAX_CHALLENGE_FAILURES, Method, SecondStep, SecondStepAttempt,
};
use crate::auth::sign_in::{self, Proven};
use crate::db::second_factors::{Inventory, inventory};
use crate::error::PageError;
use crate::web::client::client_ip;
use crate::web::context::Services;
use crate::web::flash::flash_cookie;
use crate::web::form::StrictForm;
use crate::web::layout::{Layout, render, with_retry_after};
use crate::web::signed_in;
use crate::web::time_words::wait_phrase;

pub(crate) const PATH: &str = "/login/second-step";

const EXPIRED: &str = "This sign-in has expired: the code must follow the password within 5 minutes, and each \
                       sign-in can be completed once. Sign in again.";
const TOO_MANY: &str = "That was the last try for this sign-in: too many wrong codes. Sign in again.";

#[derive(Template)]
#[template(path = "login/second_step.html")]
struct SecondStepPage<'a> {
    layout: Layout,
    csrf_token: String,
    /// `totp` or `recovery_code`.
    method: &'static str,
    issuer: &'a str,
    error: Option<&'a str>,
    /// No pending sign-in: only the way back to the login form is shown.
    expired: bool,
    /// Which second factors the pending sign-in's user has.
    has_app: bool,
    has_passkeys: bool,
}

#[derive(Deserialize)]
pub(crate) struct StepQuery {
    #[serde(default)]
    method: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct StepForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    csrf_token: String,
}

fn method_of(raw: &str) -> Method {
    if raw == Method::RecoveryCode.as_str() { Method::RecoveryCode } else { Method::Totp }
}

/// The second factors of the user of this browser's pending sign-in; `None` when it has none
/// (expired, used, or never was).
/// The pending user's factors, and where the sign-in goes on to.
async fn pending_factors(app: &Services, req: &HttpRequest) -> Result<Option<(Inventory, String)>, PageError> {
    let token = super::pending_step(app, req);
    let Some(pending) = second_factor::pending(&app.pool, token).await? else { return Ok(None) };
    let user_id = pending.user.id;
    let has =
        crate::db::run(&app.pool, move |conn| -> anyhow::Result<Inventory> { Ok(inventory(conn, user_id)?) }).await?;
    Ok(Some((has, pending.next_path)))
}

/// The second-step form; `known` is the pending user's factors when the caller has read them.
async fn page(
    app: &Services,
    req: &HttpRequest,
    known: Option<(Inventory, String)>,
    csrf_token: String,
    method: Method,
    error: Option<&str>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    // Without a pending sign-in (it ended meanwhile) the code form is offered as before.
    let has = match known {
        Some(has) => Some(has),
        None => pending_factors(app, req).await?,
    };
    let (has, next) = has.unwrap_or((Inventory { app: true, passkeys: 0, recovery_codes_left: 0 }, String::new()));
    let response = render(
        status,
        &SecondStepPage {
            layout: Layout::default(),
            csrf_token,
            method: method.as_str(),
            issuer: app.factors.issuer(),
            error,
            expired: false,
            has_app: has.app,
            has_passkeys: has.passkeys > 0 && app.passkeys.available(),
        },
    )?;
    Ok(crate::web::app_return::for_next(app, &next, response).await)
}

/// The way back to the login form, and the pending sign-in's cookie removed.
fn expired(app: &Services, message: &str) -> Result<HttpResponse, PageError> {
    let page = SecondStepPage {
        layout: Layout::default(),
        csrf_token: String::new(),
        method: Method::Totp.as_str(),
        issuer: app.factors.issuer(),
        error: Some(message),
        expired: true,
        has_app: false,
        has_passkeys: false,
    };
    let mut response = render(StatusCode::UNAUTHORIZED, &page)?;
    response.add_cookie(&app.cookies.second_step_removal()).map_err(|error| PageError::Unexpected(error.into()))?;
    Ok(response)
}

pub(crate) async fn form(
    req: HttpRequest,
    query: web::Query<StepQuery>,
    app: Services,
) -> Result<HttpResponse, PageError> {
    let Some(has) = pending_factors(&app, &req).await? else { return expired(&app, EXPIRED) };
    let (nonce, new_nonce) = login_nonce(&req, &app.cookies);
    let method = method_of(query.method.as_deref().unwrap_or_default());
    let mut response = page(&app, &req, Some(has), app.csrf.for_login(&nonce), method, None, StatusCode::OK).await?;
    if new_nonce {
        response.add_cookie(&app.cookies.login_csrf(nonce)).map_err(|error| PageError::Unexpected(error.into()))?;
    }
    Ok(response)
}

pub(crate) async fn submit(
    req: HttpRequest,
    form: StrictForm<StepForm>,
    app: Services,
) -> Result<HttpResponse, PageError> {
    let StepForm { code, method, csrf_token } = form.0;
    let nonce = crate::web::cookies::read(&req, app.cookies.login_csrf_name()).unwrap_or_default();
    if !app.csrf.verify_login(nonce, &csrf_token) {
        tracing::warn!(client_ip = %client_ip(&req), "second step refused: CSRF token missing or wrong");
        return Err(PageError::CsrfRejected);
    }
    let method = method_of(&method);
    let code = match Code::parse(&code, method) {
        Ok(code) => code,
        Err(message) => {
            return page(&app, &req, None, csrf_token, method, Some(message), StatusCode::BAD_REQUEST).await;
        }
    };
    let token = super::pending_step(&app, &req);
    let ip = client_ip(&req);
    let device = crate::web::cookies::read(&req, app.cookies.device_name()).unwrap_or_default().to_owned();
    let attempt = SecondStepAttempt { token, client_ip: &ip, device: Some(&device) };
    let outcome = second_factor::complete_challenge(&app.pool, &app.throttle, &app.factors, attempt, code).await?;
    match outcome {
        SecondStep::Passed { user, method, recovery_codes_left, next_path, device_credential } => {
            let method = sign_in::Method::after_password(method);
            let proven = Proven { user: *user, method, device_credential: Some(device_credential) };
            let signed = signed_in::start(&app, &req, proven).await?;
            let mut response = signed_in::redirect(&app, signed, &app.landing(&next_path))?;
            response.cookie(app.cookies.second_step_removal());
            if let Some(left) = recovery_codes_left {
                let message = format!(
                    "You signed in with a recovery code; it no longer works. {left} recovery code{} left — \
                     make a new set on your Security page if you are running low.",
                    if left == 1 { " is" } else { "s are" }
                );
                response.cookie(flash_cookie(&app.cookies, &message));
            }
            Ok(response.finish())
        }
        SecondStep::Refused { starts_over: true, .. } => expired(&app, TOO_MANY),
        SecondStep::Refused { check, .. } => {
            let message = match (check, method) {
                (CodeCheck::Replayed, _) => {
                    "That code was already used. Wait for your app to show the next code, then enter it.".to_owned()
                }
                (_, Method::RecoveryCode) => format!(
                    "That recovery code is not right, or it was used before. (A sign-in allows {MAX_CHALLENGE_FAILURES} tries.)"
                ),
                _ => format!(
                    "That code is not right. Enter the code your app shows now; if it keeps failing, check that your \
                     phone's clock is set automatically. (A sign-in allows {MAX_CHALLENGE_FAILURES} tries.)"
                ),
            };
            page(&app, &req, None, csrf_token, method, Some(&message), StatusCode::UNAUTHORIZED).await
        }
        SecondStep::Expired => expired(&app, EXPIRED),
        SecondStep::Throttled { retry_after } => {
            tracing::debug!(event = "login_throttled", step = "second", client_ip = %ip, "second step throttled");
            let message = format!("Too many sign-in attempts. Wait {} and try again.", wait_phrase(retry_after));
            let answer =
                page(&app, &req, None, csrf_token, method, Some(&message), StatusCode::TOO_MANY_REQUESTS).await?;
            Ok(with_retry_after(answer, retry_after))
        }
    }
}
