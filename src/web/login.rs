//! `GET /login` and `POST /login`: the sign-in form, protected against login CSRF.
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use super::layout::{Layout, render};
use crate::auth::cookies::CookiePolicy;
use crate::auth::credentials::{LoginOutcome, new_session_id, record_outcome, verify_credentials};
use crate::auth::csrf::CsrfKey;
use crate::auth::password::PasswordHasher;
use crate::auth::tokens::JwtKeys;
use crate::auth::{MaybeUser, random};
use crate::db::DbPool;
use crate::domain::SafeNextPath;
use crate::error::PageError;
use crate::web::form::StrictForm;

const DEFAULT_LANDING: &str = "/dashboard";
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
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    next: String,
}

fn landing(next: &str) -> String {
    SafeNextPath::parse(next).map_or_else(|| DEFAULT_LANDING.to_owned(), |path| path.as_str().to_owned())
}

fn see_other(location: &str) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::SeeOther();
    response.insert_header((header::LOCATION, location));
    response
}

pub async fn form(
    req: HttpRequest,
    query: web::Query<LoginQuery>,
    visitor: MaybeUser,
    csrf: web::Data<CsrfKey>,
    cookies: web::Data<CookiePolicy>,
) -> Result<HttpResponse, PageError> {
    let next = query.next.as_deref().unwrap_or_default();
    if visitor.0.is_some() {
        return Ok(see_other(&landing(next)).finish());
    }
    let existing = req
        .cookie(cookies.login_csrf_name())
        .map(|cookie| cookie.value().to_owned())
        .filter(|nonce| !nonce.is_empty() && nonce.len() <= MAX_NONCE_CHARS);
    let nonce = existing.clone().unwrap_or_else(|| random::token_base64(32));
    let next = SafeNextPath::parse(next).map(|path| path.as_str().to_owned()).unwrap_or_default();
    let page = LoginPage {
        layout: Layout::default(),
        csrf_token: csrf.for_login(&nonce),
        username: "",
        next: &next,
        error: None,
    };
    let mut response = render(StatusCode::OK, &page)?;
    if existing.is_none() {
        response.add_cookie(&cookies.login_csrf(nonce)).map_err(|error| PageError::Unexpected(error.into()))?;
    }
    Ok(response)
}

#[allow(clippy::too_many_arguments)]
pub async fn submit(
    req: HttpRequest,
    form: StrictForm<LoginForm>,
    csrf: web::Data<CsrfKey>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
    hasher: web::Data<PasswordHasher>,
    keys: web::Data<JwtKeys>,
) -> Result<HttpResponse, PageError> {
    let LoginForm { username, password, csrf_token, next } = form.0;
    let nonce = req.cookie(cookies.login_csrf_name()).map(|cookie| cookie.value().to_owned()).unwrap_or_default();
    if !csrf.verify_login(&nonce, &csrf_token) {
        tracing::warn!(client_ip = %client_ip(&req), "login form refused: CSRF token missing or wrong");
        return Err(PageError::CsrfRejected);
    }
    let next = SafeNextPath::parse(&next).map(|path| path.as_str().to_owned()).unwrap_or_default();
    let failed = |status: StatusCode, message: &str| {
        let page = LoginPage {
            layout: Layout::default(),
            csrf_token: csrf_token.clone(),
            username: &username,
            next: &next,
            error: Some(message),
        };
        render(status, &page)
    };
    if username.trim().is_empty() || password.is_empty() {
        return failed(StatusCode::BAD_REQUEST, "Enter your username or email and your password.");
    }

    let outcome = verify_credentials(&pool, &hasher, &username, SecretString::from(password)).await?;
    record_outcome(&pool, &outcome, &username, client_ip(&req), "form").await?;
    let LoginOutcome::Success(user) = outcome else {
        tracing::info!(event = "login_failed", username = %username.escape_debug(), client_ip = %client_ip(&req), "login failed");
        return failed(StatusCode::UNAUTHORIZED, LOGIN_FAILED);
    };
    let issued = keys.issue(&user, &new_session_id())?;
    tracing::info!(event = "login_ok", username = %user.username, client_ip = %client_ip(&req), "login succeeded");
    Ok(see_other(&landing(&next))
        .cookie(cookies.session(issued.token, keys.ttl()))
        .cookie(cookies.login_csrf_removal())
        .finish())
}

/// The socket peer. (Proxy headers are not trusted: anyone can send them.)
pub fn client_ip(req: &HttpRequest) -> String {
    req.peer_addr().map_or_else(|| "unknown".to_owned(), |addr| addr.ip().to_string())
}
