//! The one token check (`Sessions::authenticate`), fed by the cookies (pages) or the Bearer
//! header (API). Pages also renew an expired access cookie from the refresh cookie, so an
//! active user is never bounced to the login page and never loses a submitted form.
use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::cookie::Cookie;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use anyhow::anyhow;

pub(crate) use crate::auth::sessions::{AuthFailure, Authenticated};
use crate::auth::sessions::{Presenter, RefreshRefusal, Sessions};
use crate::db::DbPool;
use crate::error::{ApiError, PageError};
use crate::web::cookies::CookiePolicy;

pub(crate) fn app_data<T: 'static>(req: &HttpRequest) -> anyhow::Result<web::Data<T>> {
    req.app_data::<web::Data<T>>()
        .cloned()
        .ok_or_else(|| anyhow!("{} is not registered as app data", std::any::type_name::<T>()))
}

/// While a user must choose a new password, these are the only pages they can reach.
const PASSWORD_CHANGE_PATHS: [&str; 2] = ["/password/change", "/logout"];
/// While a user must set up a second factor, these are the only pages they can reach.
const ENROLMENT_PAGE: &str = "/account/security";

fn enrolment_allows(path: &str) -> bool {
    path == "/logout" || path == ENROLMENT_PAGE || path.starts_with("/account/security/")
}

/// The outcome of looking at a browser's cookies, and the cookies to set on the way out
/// (a renewed access token, a rotated refresh token, or removals of dead ones).
struct PageVisitor {
    outcome: Result<Arc<Authenticated>, AuthFailure>,
    cookies: Vec<Cookie<'static>>,
}

/// For public pages that adapt to a signed-in visitor (`/`, `/login`).
#[derive(Clone)]
pub(crate) struct Visitor(pub Option<Arc<Authenticated>>);

async fn resolve_page_visitor(req: &HttpRequest) -> Result<PageVisitor, anyhow::Error> {
    let policy = app_data::<CookiePolicy>(req)?;
    let sessions = app_data::<Sessions>(req)?;
    let access = crate::web::cookies::read(req, policy.session_name());
    let outcome = match access {
        None => Err(AuthFailure::Missing),
        Some(token) => sessions.authenticate(token),
    };
    let renewable = matches!(outcome, Err(AuthFailure::Missing | AuthFailure::Expired | AuthFailure::Invalid));
    let refresh = crate::web::cookies::read(req, policy.refresh_name());
    let refresh = match refresh {
        Some(refresh) if renewable => refresh,
        refresh => {
            let mut cookies = Vec::new();
            if matches!(&outcome, Err(failure) if !matches!(failure, AuthFailure::Unavailable(_))) {
                if access.is_some() {
                    cookies.extend(policy.session_removal());
                }
                if refresh.is_some() {
                    cookies.push(policy.refresh_removal());
                }
            }
            return Ok(PageVisitor { outcome, cookies });
        }
    };

    let pool = app_data::<DbPool>(req)?;
    let renewed = sessions.refresh(&pool, refresh, &crate::web::client::client_info(req), Presenter::Browser).await;
    Ok(match renewed {
        Ok(Ok(tokens)) => {
            tracing::debug!(username = %tokens.authenticated.username, "access cookie renewed");
            let mut cookies = match policy.session(sessions.keys(), &tokens.access, sessions.policy().access_token_ttl)
            {
                Ok(cookies) => cookies,
                Err(error) => {
                    return Ok(PageVisitor { outcome: Err(AuthFailure::Unavailable(error)), cookies: Vec::new() });
                }
            };
            if let Some(refresh) = tokens.refresh {
                cookies.push(policy.refresh(refresh, tokens.refresh_expires_in));
            }
            PageVisitor { outcome: Ok(Arc::new(tokens.authenticated)), cookies }
        }
        Ok(Err(refusal)) => {
            tracing::info!(reason = ?refusal, "refresh cookie refused");
            let failure = if refusal == RefreshRefusal::Reused { AuthFailure::Revoked } else { AuthFailure::Expired };
            PageVisitor { outcome: Err(failure), cookies: policy.signed_out() }
        }
        Err(error) => PageVisitor { outcome: Err(AuthFailure::Unavailable(error)), cookies: Vec::new() },
    })
}

/// Runs the rest of the chain and adds `cookies` to its answer. (Handler errors arrive here as
/// responses too; only a failure inside actix itself would skip the cookies.)
async fn call_with_cookies(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    cookies: Vec<Cookie<'static>>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    with_cookies(next.call(req).await?.map_into_boxed_body(), &cookies)
}

fn with_cookies(
    mut response: ServiceResponse<BoxBody>,
    cookies: &[Cookie<'static>],
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    for cookie in cookies {
        response.response_mut().add_cookie(cookie)?;
    }
    Ok(response)
}

/// Guards private pages. Anonymous visitors, and those whose session cannot be renewed, get
/// a 303 to `/login?next=…` and their dead cookies removed.
pub(crate) async fn require_page_session(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let PageVisitor { outcome, cookies } = match resolve_page_visitor(req.request()).await {
        Ok(visitor) => visitor,
        Err(error) => return Ok(req.error_response(PageError::Unexpected(error))),
    };
    match outcome {
        Ok(authenticated) if authenticated.must_change_password && !PASSWORD_CHANGE_PATHS.contains(&req.path()) => {
            Ok(req.into_response(see_other(PASSWORD_CHANGE_PATHS[0], cookies)))
        }
        Ok(authenticated)
            if authenticated.must_enrol && !authenticated.must_change_password && !enrolment_allows(req.path()) =>
        {
            Ok(req.into_response(see_other(ENROLMENT_PAGE, cookies)))
        }
        Ok(authenticated) => {
            req.extensions_mut().insert(Visitor(Some(Arc::clone(&authenticated))));
            req.extensions_mut().insert(authenticated);
            call_with_cookies(req, next, cookies).await
        }
        Err(AuthFailure::Unavailable(error)) => Ok(req.error_response(PageError::Unavailable(error))),
        Err(failure) => {
            if !matches!(failure, AuthFailure::Missing) {
                tracing::info!(reason = ?failure, path = req.path(), "session refused");
            }
            // A page's script calling a JSON endpoint gets JSON it can act on, not a login page.
            if is_json(&req) {
                return with_cookies(req.error_response(ApiError::SignedOut), &cookies);
            }
            let location = login_location(&req);
            Ok(req.into_response(see_other(&location, cookies)))
        }
    }
}

/// Not a page's form or a navigation: a script's JSON call (a write that is not a form post).
fn is_json(req: &ServiceRequest) -> bool {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim_start().to_ascii_lowercase())
        .unwrap_or_default();
    let reads = req.method() == Method::GET || req.method() == Method::HEAD;
    content_type.starts_with("application/json")
        || (!reads && !content_type.starts_with("application/x-www-form-urlencoded"))
}

fn see_other(location: &str, cookies: Vec<Cookie<'static>>) -> HttpResponse {
    let mut response = HttpResponse::SeeOther();
    response.insert_header((header::LOCATION, location));
    for cookie in cookies {
        response.cookie(cookie);
    }
    response.finish()
}

/// For public pages: learns who is visiting (renewing like the guard) but lets everyone in.
pub(crate) async fn identify_page_visitor(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let PageVisitor { outcome, cookies } = match resolve_page_visitor(req.request()).await {
        Ok(visitor) => visitor,
        Err(error) => return Ok(req.error_response(PageError::Unexpected(error))),
    };
    req.extensions_mut().insert(Visitor(outcome.ok()));
    call_with_cookies(req, next, cookies).await
}

/// `next` only for reads: after login the browser repeats it as a GET.
fn login_location(req: &ServiceRequest) -> String {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return "/login".to_owned();
    }
    let path_and_query = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let query = serde_urlencoded::to_string([("next", path_and_query)]).unwrap_or_default();
    format!("/login?{query}")
}

/// Guards the JSON API: a Bearer token only (cookies are ignored), JSON 401 otherwise.
pub(crate) async fn require_bearer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let sessions = match app_data::<Sessions>(req.request()) {
        Ok(sessions) => sessions,
        Err(error) => return Ok(req.error_response(ApiError::Unexpected(error))),
    };
    let outcome = match bearer_token(req.request()) {
        None => Err(AuthFailure::Missing),
        Some(token) => sessions.authenticate(token),
    };
    // Refusals are answered here (not returned as errors) so that the security headers,
    // which only see answers, are added to them too.
    let refusal = match outcome {
        Ok(authenticated) if authenticated.must_change_password => ApiError::PasswordChangeRequired,
        Ok(authenticated) if authenticated.must_enrol => ApiError::MfaEnrolmentRequired,
        Ok(authenticated) => {
            req.extensions_mut().insert(authenticated);
            return Ok(next.call(req).await?.map_into_boxed_body());
        }
        Err(AuthFailure::Missing) => ApiError::MissingToken,
        Err(AuthFailure::Unavailable(error)) => ApiError::Unavailable(error),
        Err(failure) => {
            tracing::info!(reason = ?failure, path = req.path(), "bearer token refused");
            ApiError::InvalidToken
        }
    };
    Ok(req.error_response(refusal))
}

fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
