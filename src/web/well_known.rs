//! `GET /.well-known/jwks.json` and `GET /.well-known/oauth-authorization-server`: what another
//! service needs to check our access tokens itself — the public keys (RFC 7517) and where to
//! find them (RFC 8414). Answered from memory.
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

/// RFC 8414 metadata: the issuer tokens name in `iss`, and the JWKS address. (The token API
/// is Portcullis's own JSON, described by its OpenAPI document, not an OAuth endpoint, so none
/// is listed.)
pub(crate) async fn metadata(sessions: web::Data<Sessions>) -> HttpResponse {
    let issuer = sessions.keys().issuer();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, format!("public, max-age={}", JWKS_MAX_AGE.as_secs())))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .json(json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}{JWKS_PATH}"),
            "response_types_supported": [],
            "service_documentation": format!("{issuer}/api/openapi.json"),
        }))
}
