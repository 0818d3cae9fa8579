//! How errors are answered: `PageError` as an HTML page in the layout, `ApiError` as a JSON
//! body (with the RFC 6750 challenge on 401s, `Retry-After` on 429 and 503), and actix's
//! plain-text answers to malformed requests turned into those.
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::http::header::HeaderValue;
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;
use serde::Serialize;

use super::layout::Layout;
use crate::auth::Authenticated;
use crate::auth::csrf::CsrfKey;
use crate::error::{ApiError, PageError, is_api_path, is_temporary};

/// The fallback for every unknown path. (The error travels with the answer, so a signed-in
/// area's error page keeps its navigation: `keep_navigation`.)
pub(crate) async fn not_found(req: HttpRequest) -> HttpResponse {
    if is_api_path(req.path()) {
        ApiError::NotFound.error_response()
    } else {
        HttpResponse::from_error(PageError::NotFound)
    }
}

/// An address requested with the wrong method (e.g. `GET /logout`, `PUT /api/me`): 405, as a
/// page or as JSON.
pub(crate) async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    if is_api_path(req.path()) {
        ApiError::MethodNotAllowed.error_response()
    } else {
        HttpResponse::from_error(PageError::MethodNotAllowed)
    }
}

/// In the signed-in areas: an error page keeps the navigation of the signed-in user (the
/// session guard, which runs first, has put them in the request), with the same status,
/// headers and cookies.
pub(crate) async fn keep_navigation(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    use actix_web::HttpMessage;
    let caller = req.extensions().get::<std::sync::Arc<Authenticated>>().cloned();
    let csrf = super::guard::app_data::<CsrfKey>(req.request()).ok();
    let path = req.path().to_owned();
    let response = next.call(req).await?.map_into_boxed_body();
    let (Some(caller), Some(csrf)) = (caller, csrf) else { return Ok(response) };
    let page = response
        .response()
        .error()
        .and_then(|error| error.as_error::<PageError>())
        .and_then(|error| error.page(Layout::for_user(&caller, &csrf).at(&path)).ok());
    Ok(match page {
        Some(html) => response.map_body(|_, _| BoxBody::new(html)),
        None => response,
    })
}

pub(crate) fn json_error(error: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    match error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => ApiError::PayloadTooLarge,
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Deserialize(error) => ApiError::BadRequest(format!("the request body is not valid: {error}")),
        other => ApiError::BadRequest(format!("the request body could not be read: {other}")),
    }
    .into()
}

pub(crate) fn query_error(error: QueryPayloadError, req: &HttpRequest) -> actix_web::Error {
    let message = format!("The address has a malformed query: {error}");
    if is_api_path(req.path()) { ApiError::BadRequest(message).into() } else { PageError::BadRequest(message).into() }
}

/// actix-files answers a bad file address (`/static/`, `/static/.env`, `/static/..%2f…`) in
/// plain text; this gives such answers our error page instead (and no public caching).
pub(crate) async fn static_file_errors(
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

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    status: u16,
    title: &'a str,
    message: &'a str,
    /// On a 5xx: the request's id, for the person to quote.
    reference: Option<String>,
}

/// The id of the request being answered, for a 5xx answer.
fn reference(status: StatusCode) -> Option<String> {
    status.is_server_error().then(super::request_id::current).flatten().map(|id| id.to_string())
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::CsrfRejected | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::HeadTooLarge(part, _) => too_large_status(*part),
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(error) if is_temporary(error) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        let status = self.status_code();
        let mut response = match self.page(Layout::default()) {
            Ok(html) => super::layout::html_response(status, html),
            Err(error) => {
                tracing::error!(error = ?error, "could not render the error page");
                HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(self.words().0.to_owned())
            }
        };
        add_retry_after(&mut response);
        response
    }
}

impl PageError {
    /// What went wrong, for the log (once per error answer).
    fn log(&self) {
        match self {
            Self::Unavailable(error) => tracing::error!(error = ?error, "service unavailable"),
            Self::Unexpected(error) if is_temporary(error) => tracing::warn!(error = ?error, "database busy"),
            Self::Unexpected(error) => tracing::error!(error = ?error, "unexpected error"),
            _ => {}
        }
    }

    /// The error page in `layout` (with or without the navigation).
    fn page(&self, layout: Layout) -> askama::Result<String> {
        let (title, message) = self.words();
        let status = self.status_code();
        ErrorPage { layout, status: status.as_u16(), title, message, reference: reference(status) }.render()
    }

    /// The page's title and what it says.
    fn words(&self) -> (&str, &str) {
        match self {
            Self::UnsupportedEncoding(message) => ("Not accepted", message.as_str()),
            Self::HeadTooLarge(_, message) => ("Request too large", message.as_str()),
            Self::BadRequest(message) => ("Bad request", message.as_str()),
            Self::CsrfRejected => (
                "This form has expired",
                "The form was missing its security token or came from another page. \
                 Go back, reload the page and try again.",
            ),
            Self::Forbidden(message) => ("You do not have access to this page", message.as_str()),
            Self::NotFound => ("Page not found", "There is no page at this address."),
            Self::MethodNotAllowed => {
                ("Not possible here", "This address does not accept that kind of request. Use the buttons on the page.")
            }
            Self::PayloadTooLarge => ("Too much data", "The form sent more data than this page accepts."),
            Self::Unavailable(_) => {
                ("Service unavailable", "Portcullis cannot reach its database right now. Try again shortly.")
            }
            Self::Unexpected(error) if is_temporary(error) => {
                ("Busy right now", "Portcullis is busy right now and nothing was changed. Try again in a few seconds.")
            }
            Self::Unexpected(_) => {
                ("Something went wrong", "The error has been logged. Try again, or contact your administrator.")
            }
        }
    }
}

/// Every API error: a stable machine-readable code and a sentence for people.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ApiErrorBody {
    /// `invalid_request`, `invalid_credentials`, `missing_token`, `invalid_token`,
    /// `invalid_refresh_token`, `too_many_attempts`, `forbidden`, `password_change_required`,
    /// `not_found`, `payload_too_large`, `unsupported_media_type`, `request_too_large`,
    /// `mfa_required`, `mfa_enrolment_required`, `invalid_code`, `invalid_mfa_token`, `invalid_passkey`, `signed_out`,
    /// `unavailable` or `internal_error`.
    #[schema(example = "invalid_token")]
    error: &'static str,
    message: String,
    /// With a 5xx: the request's id, to quote when reporting it (also in `X-Request-Id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    /// With `mfa_required`: send it with a code to `POST /api/token/mfa`.
    #[serde(skip_serializing_if = "Option::is_none")]
    mfa_token: Option<String>,
    /// With `mfa_required`: the kinds of code accepted (`totp`, `recovery_code`).
    #[serde(skip_serializing_if = "Option::is_none")]
    methods: Option<Vec<&'static str>>,
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "invalid_request",
            Self::InvalidCredentials => "invalid_credentials",
            Self::MissingToken => "missing_token",
            Self::InvalidToken => "invalid_token",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::Throttled(_) => "too_many_attempts",
            Self::HeadTooLarge(..) => "request_too_large",
            Self::Forbidden(_) => "forbidden",
            Self::PasswordChangeRequired => "password_change_required",
            Self::MfaRequired { .. } => "mfa_required",
            Self::MfaEnrolmentRequired => "mfa_enrolment_required",
            Self::InvalidCode(_) => "invalid_code",
            Self::InvalidPasskey(_) => "invalid_passkey",
            Self::SignedOut => "signed_out",
            Self::ProofRequired => "confirm_identity",
            Self::InvalidMfaToken => "invalid_mfa_token",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType | Self::UnsupportedEncoding(_) => "unsupported_media_type",
            Self::Unavailable(_) => "unavailable",
            Self::Unexpected(error) if is_temporary(error) => "unavailable",
            Self::Unexpected(_) => "internal_error",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::InvalidCredentials
            | Self::MissingToken
            | Self::InvalidToken
            | Self::InvalidRefreshToken
            | Self::MfaRequired { .. }
            | Self::InvalidCode(_)
            | Self::InvalidPasskey(_)
            | Self::SignedOut
            | Self::InvalidMfaToken => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::PasswordChangeRequired | Self::MfaEnrolmentRequired | Self::ProofRequired => {
                StatusCode::FORBIDDEN
            }
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType | Self::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::HeadTooLarge(part, _) => too_large_status(*part),
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(error) if is_temporary(error) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            Self::Unavailable(error) => {
                tracing::error!(error = ?error, "service unavailable");
                "the database is unreachable; try again shortly".to_owned()
            }
            Self::Unexpected(error) if is_temporary(error) => {
                tracing::warn!(error = ?error, "database busy");
                "the service is busy and nothing was changed; try again in a few seconds".to_owned()
            }
            Self::Unexpected(error) => {
                tracing::error!(error = ?error, "unexpected error");
                "an unexpected error occurred; it has been logged".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        // RFC 6750 §3: a challenge on every 401; an error code only when a token was sent.
        match self {
            Self::MissingToken => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"portcullis\""));
            }
            Self::InvalidToken => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    "Bearer realm=\"portcullis\", error=\"invalid_token\", \
                     error_description=\"The access token is invalid or has expired\"",
                ));
            }
            Self::Throttled(wait) => {
                response.insert_header((header::RETRY_AFTER, wait.as_secs().to_string()));
            }
            _ => {}
        }
        let (mfa_token, methods) = match self {
            Self::MfaRequired { mfa_token, methods } => (Some(mfa_token.clone()), Some(methods.clone())),
            _ => (None, None),
        };
        let request_id = reference(self.status_code());
        let mut response = response.json(ApiErrorBody { error: self.code(), message, request_id, mfa_token, methods });
        add_retry_after(&mut response);
        response
    }
}

/// Seconds a client should wait before retrying a 503.
const RETRY_UNAVAILABLE_AFTER: &str = "5";

fn add_retry_after(response: &mut HttpResponse) {
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_UNAVAILABLE_AFTER));
    }
}

fn too_large_status(part: crate::error::TooLarge) -> StatusCode {
    match part {
        crate::error::TooLarge::Uri => StatusCode::URI_TOO_LONG,
        crate::error::TooLarge::Headers => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    }
}
