//! Turning malformed requests into our error pages and JSON errors instead of actix's
//! plain-text defaults.
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use crate::error::{ApiError, PageError, is_api_path};

/// The fallback for every unknown path.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    if is_api_path(req.path()) { ApiError::NotFound.error_response() } else { PageError::NotFound.error_response() }
}

/// An address requested with the wrong method (e.g. `GET /logout`, `PUT /api/me`): 405, as a
/// page or as JSON.
pub async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    if is_api_path(req.path()) {
        ApiError::MethodNotAllowed.error_response()
    } else {
        PageError::MethodNotAllowed.error_response()
    }
}

pub fn json_error(error: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    match error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => ApiError::PayloadTooLarge,
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Deserialize(error) => ApiError::BadRequest(format!("the request body is not valid: {error}")),
        other => ApiError::BadRequest(format!("the request body could not be read: {other}")),
    }
    .into()
}

pub fn query_error(error: QueryPayloadError, req: &HttpRequest) -> actix_web::Error {
    let message = format!("The address has a malformed query: {error}");
    if is_api_path(req.path()) { ApiError::BadRequest(message).into() } else { PageError::BadRequest(message).into() }
}

/// actix-files answers a bad file address (`/static/`, `/static/.env`, `/static/..%2f…`) in
/// plain text; this gives such answers our error page instead (and no public caching).
pub async fn static_file_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let response = next.call(req).await?;
    let page = match response.status() {
        StatusCode::BAD_REQUEST => PageError::BadRequest("That is not a valid file address.".to_owned()),
        StatusCode::NOT_FOUND => PageError::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => PageError::MethodNotAllowed,
        _ => return Ok(response.map_into_boxed_body()),
    };
    let (req, _) = response.into_parts();
    let mut answer = page.error_response();
    if answer.status() == StatusCode::METHOD_NOT_ALLOWED {
        answer.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
    }
    Ok(ServiceResponse::new(req, answer))
}
