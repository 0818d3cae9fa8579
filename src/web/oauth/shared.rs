//! What the provider's pages and endpoints share: their addresses and RFC 6749's JSON errors.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use askama::Template;
use serde_json::json;

use crate::auth::Authenticated;
use crate::error::PageError;
use crate::web::context::Services;
use crate::web::layout::{Layout, render};

use crate::oauth::OAuthError;

pub(crate) const AUTHORIZE_PATH: &str = "/oauth2/authorize";
pub(crate) const CONSENT_PATH: &str = "/oauth2/authorize/consent";
pub(crate) const TOKEN_PATH: &str = "/oauth2/token";
pub(crate) const REVOKE_PATH: &str = "/oauth2/revoke";
pub(crate) const INTROSPECT_PATH: &str = "/oauth2/introspect";
pub(crate) const USERINFO_PATH: &str = "/oauth2/userinfo";
pub(crate) const LOGOUT_PATH: &str = "/oauth2/logout";
pub(crate) const LOGOUT_CONFIRM_PATH: &str = "/oauth2/logout/confirm";

/// The endpoints apps call from their servers (or scripts) with no cookie of ours: nothing a
/// browser attaches on its own, so a cross-site request has nothing to ride on.
pub(crate) const COOKIELESS_PATHS: [&str; 5] =
    [AUTHORIZE_PATH, TOKEN_PATH, REVOKE_PATH, INTROSPECT_PATH, USERINFO_PATH];

/// RFC 6749 §5.2: a JSON error, never cached; `invalid_client` is a 401 that asks for Basic.
pub(crate) fn error_response(error: &OAuthError) -> HttpResponse {
    let status = match error.error {
        "invalid_client" => StatusCode::UNAUTHORIZED,
        "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
        "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = HttpResponse::build(status);
    no_store(&mut response);
    if error.is_client_error() {
        response.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="portcullis", charset="UTF-8""#));
    }
    if let Some(wait) = error.retry_after {
        response.insert_header((header::RETRY_AFTER, wait.as_secs().max(1).to_string()));
    }
    response.json(json!({"error": error.error, "error_description": error.description}))
}

/// RFC 6749 §5.1: token answers are never cached; any origin may call (no cookies are read).
pub(crate) fn no_store(response: &mut actix_web::HttpResponseBuilder) {
    response
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")));
}

#[derive(Template)]
#[template(path = "oauth/error.html")]
struct ErrorPage {
    layout: Layout,
    message: String,
}

/// The page for a request of an app that cannot be trusted with a redirect (an unknown app,
/// an address not registered for it): 400, with the navigation when someone is signed in.
pub(crate) fn request_refused(
    app: &Services,
    visitor: Option<&Authenticated>,
    message: String,
) -> Result<HttpResponse, PageError> {
    let layout = visitor.map_or_else(Layout::default, |user| Layout::for_user(user, &app.csrf));
    render(StatusCode::BAD_REQUEST, &ErrorPage { layout, message })
}

/// A request's parameters as the hidden fields of a form that carries it on.
pub(crate) fn hidden_fields(params: &impl serde::Serialize) -> Vec<(String, String)> {
    serde_urlencoded::to_string(params)
        .ok()
        .and_then(|query| serde_urlencoded::from_str::<Vec<(String, String)>>(&query).ok())
        .unwrap_or_default()
}
