//! The endpoints apps call from their servers: `/oauth2/token` (RFC 6749 §3.2, with PKCE),
//! `/oauth2/revoke` (RFC 7009), `/oauth2/introspect` (RFC 7662) and `/oauth2/userinfo`
//! (OpenID Connect Core 5.3). Form bodies only; errors are RFC 6749's JSON.
use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::shared::{client_credentials, error_response, form_fields, no_store};
use crate::auth::sessions::{AuthFailure, Sessions};
use crate::oauth::{Client, OAuthError, Scopes};
use crate::web::context::Services;

fn json_answer(value: &impl serde::Serialize) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    no_store(&mut response);
    response.json(value)
}

fn answered(result: Result<HttpResponse, OAuthError>) -> HttpResponse {
    result.unwrap_or_else(|error| error_response(&error))
}

/// `POST /oauth2/register` (RFC 7591 §3): an app registers itself with its metadata (JSON),
/// with an initial access token as `Bearer` when `PORTCULLIS_DYNAMIC_REGISTRATION` asks for one.
pub(crate) async fn register(req: HttpRequest, body: web::Bytes, app: Services) -> HttpResponse {
    use crate::oauth::registration::{self, Registering};
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return registration_error(&OAuthError::new(
            "invalid_client_metadata",
            "Send the metadata as application/json",
        ));
    }
    let Ok(metadata) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return registration_error(&OAuthError::new("invalid_client_metadata", "The metadata is not JSON"));
    };
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .map(|token| token.trim().to_owned());
    let mode = **app.registration;
    let client_ip = crate::web::client::client_ip(&req);
    let max_access_seconds = i64::try_from(app.sessions.policy().access_token_ttl.as_secs()).unwrap_or(i64::MAX);
    let registered = crate::db::run(&app.pool, move |conn| -> anyhow::Result<_> {
        let who = Registering { mode, token: token.as_deref(), client_ip: &client_ip, max_access_seconds };
        Ok(registration::register(conn, &who, &metadata))
    })
    .await
    .map_err(OAuthError::from)
    .and_then(|answer| answer);
    match registered {
        Ok(answer) => {
            let mut response = HttpResponse::Created();
            no_store(&mut response);
            response.json(answer)
        }
        Err(error) => registration_error(&error),
    }
}

/// RFC 7591 §3.2.2 errors (400), RFC 6750's for the token (401), 403 when registration is off.
fn registration_error(error: &OAuthError) -> HttpResponse {
    match error.error {
        "invalid_token" => {
            let mut response = error_response(error);
            *response.status_mut() = actix_web::http::StatusCode::UNAUTHORIZED;
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static(r#"Bearer error="invalid_token""#));
            response
        }
        "access_denied" => {
            let mut response = error_response(error);
            *response.status_mut() = actix_web::http::StatusCode::FORBIDDEN;
            response
        }
        _ => error_response(error),
    }
}

/// RFC 8628 §3.4's grant type.
pub(crate) const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// `POST /oauth2/device_authorization` (RFC 8628 §3.1): a device code and the user code to
/// show, for an app authenticated as at the token endpoint (a public app names itself).
pub(crate) async fn device_authorization(req: HttpRequest, body: web::Bytes, app: Services) -> HttpResponse {
    answered(
        async {
            let fields = form_fields(&req, &body)?;
            let credentials = client_credentials(&req, &fields)?;
            let provider = app.provider();
            let client = provider.authenticate_client(&credentials, &crate::web::client::client_ip(&req)).await?;
            let started = provider.start_device(&client, fields.get("scope").map(String::as_str)).await?;
            Ok(json_answer(&started))
        }
        .await,
    )
}

pub(crate) async fn token(req: HttpRequest, body: web::Bytes, app: Services) -> HttpResponse {
    answered(token_answer(&req, &body, &app).await)
}

async fn token_answer(req: &HttpRequest, body: &[u8], app: &Services) -> Result<HttpResponse, OAuthError> {
    let fields = form_fields(req, body)?;
    let credentials = client_credentials(req, &fields)?;
    let provider = app.provider();
    let client = provider.authenticate_client(&credentials, &crate::web::client::client_ip(req)).await?;
    let field = |name: &str| fields.get(name).map(String::as_str);
    let answer = match field("grant_type") {
        None | Some("") => return Err(OAuthError::new("invalid_request", "grant_type is missing")),
        Some("authorization_code") => {
            let code = field("code").ok_or_else(|| OAuthError::new("invalid_request", "code is missing"))?;
            let redirect_uri =
                field("redirect_uri").ok_or_else(|| OAuthError::new("invalid_request", "redirect_uri is missing"))?;
            provider.exchange_code(&client, code, redirect_uri, field("code_verifier"), field("resource")).await?
        }
        Some("refresh_token") => {
            let token =
                field("refresh_token").ok_or_else(|| OAuthError::new("invalid_request", "refresh_token is missing"))?;
            let scopes = field("scope").map(Scopes::parse);
            provider.refresh(&client, token, scopes.as_ref()).await?
        }
        Some("client_credentials") => provider.client_credentials(&client)?,
        Some(DEVICE_GRANT) => {
            let code =
                field("device_code").ok_or_else(|| OAuthError::new("invalid_request", "device_code is missing"))?;
            provider.exchange_device_code(&client, code).await?
        }
        Some(_) => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                "Supported: authorization_code, refresh_token, client_credentials, device_code (RFC 8628)",
            ));
        }
    };
    Ok(json_answer(&answer))
}

/// The form of a request an app authenticated, and the app.
async fn from_an_app(
    req: &HttpRequest,
    body: &[u8],
    app: &Services,
) -> Result<(HashMap<String, String>, Client), OAuthError> {
    let fields = form_fields(req, body)?;
    let client = app
        .provider()
        .authenticate_client(&client_credentials(req, &fields)?, &crate::web::client::client_ip(req))
        .await?;
    Ok((fields, client))
}

fn token_field(fields: &HashMap<String, String>) -> Result<&str, OAuthError> {
    fields.get("token").map(String::as_str).ok_or_else(|| OAuthError::new("invalid_request", "token is missing"))
}

/// RFC 7009: always 200 for a client that authenticated, whatever the token was.
pub(crate) async fn revoke(req: HttpRequest, body: web::Bytes, app: Services) -> HttpResponse {
    answered(
        async {
            let (fields, client) = from_an_app(&req, &body, &app).await?;
            app.provider().revoke(&client, token_field(&fields)?).await?;
            let mut response = HttpResponse::Ok();
            no_store(&mut response);
            Ok(response.finish())
        }
        .await,
    )
}

/// RFC 7662, for confidential clients: what one of their own tokens says.
pub(crate) async fn introspect(req: HttpRequest, body: web::Bytes, app: Services) -> HttpResponse {
    answered(
        async {
            let (fields, client) = from_an_app(&req, &body, &app).await?;
            if !client.is_confidential() {
                return Err(OAuthError::new("unauthorized_client", "Only a confidential client may introspect tokens"));
            }
            Ok(json_answer(&app.provider().introspect(&client, token_field(&fields)?).await?))
        }
        .await,
    )
}

/// OpenID Connect Core 5.3, by GET or POST, the token in the header (RFC 6750 §2.1) or a form
/// body's `access_token` (§2.2). Answered from the token alone: no database.
pub(crate) async fn userinfo(req: HttpRequest, body: web::Bytes, sessions: web::Data<Sessions>) -> HttpResponse {
    let from_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .map(str::trim)
        .map(str::to_owned);
    let from_body = if body.is_empty() {
        None
    } else {
        form_fields(&req, &body).ok().and_then(|fields| fields.get("access_token").cloned())
    };
    let token = match (from_header, from_body) {
        (Some(_), Some(_)) => return bearer_error("invalid_request", "Send the token one way, not two"),
        (Some(token), None) | (None, Some(token)) => token,
        (None, None) => {
            let mut response = HttpResponse::Unauthorized();
            no_store(&mut response);
            return response.insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="portcullis""#)).finish();
        }
    };
    match sessions.authenticate_app(&token) {
        Ok(claims) => match claims.userinfo() {
            Some(answer) => json_answer(&answer),
            None => bearer_error("invalid_token", "The access token is not valid, has expired or was revoked"),
        },
        Err(AuthFailure::Unavailable(_)) => {
            let mut response = HttpResponse::ServiceUnavailable();
            no_store(&mut response);
            response
                .insert_header((header::RETRY_AFTER, "1"))
                .json(serde_json::json!({"error": "temporarily_unavailable"}))
        }
        Err(_) => bearer_error("invalid_token", "The access token is not valid, has expired or was revoked"),
    }
}

fn bearer_error(error: &str, description: &str) -> HttpResponse {
    let status = if error == "invalid_request" {
        actix_web::http::StatusCode::BAD_REQUEST
    } else {
        actix_web::http::StatusCode::UNAUTHORIZED
    };
    let mut response = HttpResponse::build(status);
    no_store(&mut response);
    response
        .insert_header((
            header::WWW_AUTHENTICATE,
            format!(r#"Bearer realm="portcullis", error="{error}", error_description="{description}""#),
        ))
        .json(serde_json::json!({"error": error, "error_description": description}))
}
