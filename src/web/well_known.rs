//! `GET /.well-known/jwks.json`, `/.well-known/openid-configuration` and
//! `/.well-known/oauth-authorization-server`: the public keys (RFC 7517) and what the provider
//! supports (OpenID Connect Discovery, RFC 8414). Answered from memory.
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::auth::sessions::Sessions;
use crate::auth::signing_keys::JWKS_MAX_AGE;

pub(crate) const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The public keys tokens are (or will soon be) signed with; never a private part, never the
/// HS256 secret.
pub(crate) async fn jwks(sessions: web::Data<Sessions>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/jwk-set+json")
        .insert_header((header::CACHE_CONTROL, format!("public, max-age={}", JWKS_MAX_AGE.as_secs())))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .json(json!({ "keys": sessions.keys().published() }))
}

/// OpenID Connect Discovery 1.0 §3 and RFC 8414: exactly what the provider supports. One
/// document at both addresses.
pub(crate) async fn metadata(
    sessions: web::Data<Sessions>,
    registration: web::Data<crate::config::DynamicRegistration>,
) -> HttpResponse {
    use super::oauth::shared::{
        AUTHORIZE_PATH, DEVICE_AUTHORIZATION_PATH, INTROSPECT_PATH, LOGOUT_PATH, PAR_PATH, REGISTER_PATH, REVOKE_PATH,
        TOKEN_PATH, USERINFO_PATH,
    };
    let issuer = sessions.keys().issuer();
    let client_auth = ["client_secret_basic", "client_secret_post"];
    let mut document = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}{AUTHORIZE_PATH}"),
        "token_endpoint": format!("{issuer}{TOKEN_PATH}"),
        "userinfo_endpoint": format!("{issuer}{USERINFO_PATH}"),
        "revocation_endpoint": format!("{issuer}{REVOKE_PATH}"),
        "introspection_endpoint": format!("{issuer}{INTROSPECT_PATH}"),
        "end_session_endpoint": format!("{issuer}{LOGOUT_PATH}"),
        // RFC 9126: any app may push; some must (their own setting).
        "pushed_authorization_request_endpoint": format!("{issuer}{PAR_PATH}"),
        "require_pushed_authorization_requests": false,
        // OpenID Connect Back-Channel Logout 1.0 §2.1: every logout token carries `sid`.
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "jwks_uri": format!("{issuer}{JWKS_PATH}"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code"],
        "device_authorization_endpoint": format!("{issuer}{DEVICE_AUTHORIZATION_PATH}"),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "EdDSA", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": client_auth,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": crate::oauth::scopes::KNOWN_SCOPES,
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "sid", "azp", "at_hash",
            "name", "preferred_username", "zoneinfo", "updated_at", "email", "email_verified", "groups"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
        "service_documentation": format!("{issuer}/api/openapi.json"),
        // RFC 8707: a code flow may name the resource its tokens are for (their audience).
        "resource_indicators_supported": true,
    });
    if **registration != crate::config::DynamicRegistration::Off {
        // RFC 7591 / RFC 8414: apps may register themselves here.
        document["registration_endpoint"] = json!(format!("{issuer}{REGISTER_PATH}"));
    }
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, format!("public, max-age={}", JWKS_MAX_AGE.as_secs())))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .json(document)
}
