//! What the provider's pages and endpoints share: their addresses and RFC 6749's JSON errors.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::auth::Authenticated;
use crate::error::PageError;
use crate::web::context::Services;
use crate::web::layout::{Layout, render};

use crate::oauth::OAuthError;
use crate::oauth::flow::ClientCredentials;

pub(crate) const AUTHORIZE_PATH: &str = "/oauth2/authorize";
pub(crate) const CONSENT_PATH: &str = "/oauth2/authorize/consent";
pub(crate) const TOKEN_PATH: &str = "/oauth2/token";
pub(crate) const REVOKE_PATH: &str = "/oauth2/revoke";
pub(crate) const INTROSPECT_PATH: &str = "/oauth2/introspect";
pub(crate) const USERINFO_PATH: &str = "/oauth2/userinfo";
pub(crate) const LOGOUT_PATH: &str = "/oauth2/logout";
pub(crate) const LOGOUT_CONFIRM_PATH: &str = "/oauth2/logout/confirm";
pub(crate) const PAR_PATH: &str = "/oauth2/par";
pub(crate) const REGISTER_PATH: &str = "/oauth2/register";
pub(crate) const DEVICE_AUTHORIZATION_PATH: &str = "/oauth2/device_authorization";

/// The endpoints apps call from their servers (or scripts) with no cookie of ours: nothing a
/// browser attaches on its own, so a cross-site request has nothing to ride on.
pub(crate) const COOKIELESS_PATHS: [&str; 8] = [
    AUTHORIZE_PATH,
    TOKEN_PATH,
    REVOKE_PATH,
    INTROSPECT_PATH,
    USERINFO_PATH,
    PAR_PATH,
    DEVICE_AUTHORIZATION_PATH,
    REGISTER_PATH,
];

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

/// The form body as name → value, refusing a parameter given twice (RFC 6749 §3.1) and
/// anything that is not a well-formed form.
pub(crate) fn form_fields(req: &HttpRequest, body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let content_type =
        req.headers().get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or_default();
    if !content_type
        .split(';')
        .next()
        .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    {
        return Err(OAuthError::new("invalid_request", "Send the parameters as application/x-www-form-urlencoded"));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| OAuthError::new("invalid_request", "The form body could not be read"))?;
    let mut fields = HashMap::new();
    for (name, value) in pairs {
        if fields.insert(name.clone(), value).is_some() {
            return Err(OAuthError::new("invalid_request", format!("{name} is given more than once")));
        }
    }
    Ok(fields)
}

/// RFC 6749 §2.3.1: HTTP Basic (the id and secret form-encoded first) or the body's
/// `client_id` and `client_secret`, never both.
pub(crate) fn client_credentials(
    req: &HttpRequest,
    fields: &HashMap<String, String>,
) -> Result<ClientCredentials, OAuthError> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic ")));
    let in_body = fields.get("client_secret").cloned();
    match basic {
        Some(encoded) => {
            if in_body.is_some() {
                return Err(OAuthError::new("invalid_request", "Use one way to authenticate the client, not two"));
            }
            let decoded = STANDARD.decode(encoded.trim()).ok().and_then(|bytes| String::from_utf8(bytes).ok());
            let Some((id, secret)) = decoded.as_deref().and_then(|pair| pair.split_once(':')) else {
                return Err(OAuthError::new("invalid_client", "The Basic credentials could not be read"));
            };
            let decode = |part: &str| {
                percent_encoding::percent_decode_str(&part.replace('+', " "))
                    .decode_utf8()
                    .map(|text| text.into_owned())
            };
            let (Ok(client_id), Ok(secret)) = (decode(id), decode(secret)) else {
                return Err(OAuthError::new("invalid_client", "The Basic credentials could not be read"));
            };
            if fields.get("client_id").is_some_and(|body_id| *body_id != client_id) {
                return Err(OAuthError::new("invalid_request", "client_id differs from the authenticated client"));
            }
            Ok(ClientCredentials { client_id, secret: Some(secret) })
        }
        None => {
            let client_id = fields.get("client_id").cloned().unwrap_or_default();
            Ok(ClientCredentials { client_id, secret: in_body })
        }
    }
}
