//! The one token check, fed by the cookie (pages) or the Bearer header (API).
use std::rc::Rc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use anyhow::{Context, anyhow};

use super::cookies::CookiePolicy;
use super::tokens::{Claims, JwtKeys, TokenError};
use crate::db::DbPool;
use crate::db::users::{self, User};
use crate::error::{ApiError, PageError};

/// A verified caller: the token's claims and the user row as it is now.
pub struct Authenticated {
    pub user: User,
    pub claims: Claims,
}

#[derive(Debug)]
pub enum AuthFailure {
    Missing,
    Expired,
    Invalid,
    /// The database could not be asked; callers fail closed.
    Unavailable(anyhow::Error),
}

/// Verifies the token, then loads the user: a deleted or disabled user, or one whose role
/// changed since the token was issued, is refused at once. Costs one primary-key lookup.
pub async fn authenticate(req: &HttpRequest, token: &str) -> Result<Authenticated, AuthFailure> {
    let keys = app_data::<JwtKeys>(req).map_err(AuthFailure::Unavailable)?;
    let claims = keys.verify(token).map_err(|error| match error {
        TokenError::Expired => AuthFailure::Expired,
        TokenError::Invalid => AuthFailure::Invalid,
    })?;
    let user_id = claims.user_id().ok_or(AuthFailure::Invalid)?;
    let pool = app_data::<DbPool>(req).map_err(AuthFailure::Unavailable)?;
    let user = web::block(move || -> anyhow::Result<Option<User>> {
        let mut conn = pool.get().context("no database connection available")?;
        users::find_by_id(&mut conn, user_id).context("could not load the signed-in user")
    })
    .await
    .map_err(|error| AuthFailure::Unavailable(anyhow!(error)))?
    .map_err(AuthFailure::Unavailable)?;
    match user {
        Some(user) if user.is_active && user.role().as_str() == claims.role => Ok(Authenticated { user, claims }),
        _ => Err(AuthFailure::Invalid),
    }
}

pub fn app_data<T: 'static>(req: &HttpRequest) -> anyhow::Result<web::Data<T>> {
    req.app_data::<web::Data<T>>()
        .cloned()
        .ok_or_else(|| anyhow!("{} is not registered as app data", std::any::type_name::<T>()))
}

/// While a user must choose a new password, these are the only pages they can reach.
const PASSWORD_CHANGE_PATHS: [&str; 2] = ["/password/change", "/logout"];

/// Guards private pages. Anonymous or stale visitors get a 303 to `/login?next=…` and the
/// stale cookie is removed.
pub async fn require_page_session(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let policy = app_data::<CookiePolicy>(req.request()).map_err(PageError::Unexpected)?;
    let cookie = req.cookie(policy.session_name());
    let outcome = match &cookie {
        None => Err(AuthFailure::Missing),
        Some(cookie) => authenticate(req.request(), cookie.value()).await,
    };
    match outcome {
        Ok(authenticated)
            if authenticated.user.must_change_password && !PASSWORD_CHANGE_PATHS.contains(&req.path()) =>
        {
            let response =
                HttpResponse::SeeOther().insert_header((header::LOCATION, PASSWORD_CHANGE_PATHS[0])).finish();
            Ok(req.into_response(response))
        }
        Ok(authenticated) => {
            req.extensions_mut().insert(Rc::new(authenticated));
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        Err(AuthFailure::Unavailable(error)) => Err(PageError::Unavailable(error).into()),
        Err(failure) => {
            if cookie.is_some() {
                tracing::info!(reason = ?failure, path = req.path(), "session cookie refused");
            }
            let mut response = HttpResponse::SeeOther();
            response.insert_header((header::LOCATION, login_location(&req)));
            if cookie.is_some() {
                response.cookie(policy.session_removal());
            }
            Ok(req.into_response(response.finish()))
        }
    }
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

/// Guards the JSON API: a Bearer token only (the cookie is ignored), JSON 401 otherwise.
pub async fn require_bearer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let outcome = match bearer_token(req.request()) {
        None => Err(AuthFailure::Missing),
        Some(token) => authenticate(req.request(), &token).await,
    };
    match outcome {
        Ok(authenticated) if authenticated.user.must_change_password => Err(ApiError::PasswordChangeRequired.into()),
        Ok(authenticated) => {
            req.extensions_mut().insert(Rc::new(authenticated));
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        Err(AuthFailure::Missing) => Err(ApiError::MissingToken.into()),
        Err(AuthFailure::Unavailable(error)) => Err(ApiError::Unavailable(error).into()),
        Err(failure) => {
            tracing::info!(reason = ?failure, path = req.path(), "bearer token refused");
            Err(ApiError::InvalidToken.into())
        }
    }
}

fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}
