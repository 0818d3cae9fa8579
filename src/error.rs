//! One error type per edge: `PageError` renders an HTML page, `ApiError` a JSON body.
//! Expected cases carry a message for the user; everything else is `Unexpected`, logged with
//! its whole cause chain and shown as a generic message.
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    BadRequest(String),
    #[error("the form's CSRF token is missing or wrong")]
    CsrfRejected,
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedEncoding(String),
    /// 414 or 431.
    #[error("{1}")]
    HeadTooLarge(StatusCode, String),
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: crate::web::layout::Layout,
    status: u16,
    title: &'a str,
    message: &'a str,
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
            Self::HeadTooLarge(status, _) => *status,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(error) if is_temporary(error) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (title, message) = match self {
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
            Self::Unavailable(error) => {
                tracing::error!(error = ?error, "service unavailable");
                ("Service unavailable", "Portcullis cannot reach its database right now. Try again shortly.")
            }
            Self::Unexpected(error) if is_temporary(error) => {
                tracing::warn!(error = ?error, "database busy");
                ("Busy right now", "Portcullis is busy right now and nothing was changed. Try again in a few seconds.")
            }
            Self::Unexpected(error) => {
                tracing::error!(error = ?error, "unexpected error");
                ("Something went wrong", "The error has been logged. Try again, or contact your administrator.")
            }
        };
        let status = self.status_code();
        let page = ErrorPage { layout: Default::default(), status: status.as_u16(), title, message };
        let mut response = match page.render() {
            Ok(html) => html_response(status, html),
            Err(error) => {
                tracing::error!(error = ?error, "could not render the error page");
                HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(title.to_owned())
            }
        };
        add_retry_after(&mut response);
        response
    }
}

pub fn html_response(status: StatusCode, html: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(html)
}

impl From<crate::accounts::AccountError> for PageError {
    fn from(error: crate::accounts::AccountError) -> Self {
        use crate::accounts::AccountError;
        match error {
            AccountError::NotFound => Self::NotFound,
            AccountError::Refused(message) | AccountError::Field((_, message)) => Self::BadRequest(message),
            AccountError::Database(error) => Self::Unexpected(error.into()),
            AccountError::Unexpected(error) => Self::Unexpected(error),
        }
    }
}

impl From<askama::Error> for PageError {
    fn from(error: askama::Error) -> Self {
        Self::Unexpected(anyhow::Error::new(error).context("could not render a template"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("the username, email or password is wrong")]
    InvalidCredentials,
    #[error("this request needs a Bearer token in the Authorization header")]
    MissingToken,
    #[error("the access token is invalid or has expired")]
    InvalidToken,
    #[error("too many sign-in attempts; try again in {} seconds", .0.as_secs())]
    Throttled(std::time::Duration),
    #[error("the refresh token is not valid: it has expired, was revoked or was already used; sign in again")]
    InvalidRefreshToken,
    #[error("{0}")]
    Forbidden(String),
    #[error("this account must choose a new password before using the API; sign in on the web to choose one")]
    PasswordChangeRequired,
    #[error("not found")]
    NotFound,
    #[error("this address does not accept that method")]
    MethodNotAllowed,
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("{0}")]
    UnsupportedEncoding(String),
    /// 414 or 431.
    #[error("{1}")]
    HeadTooLarge(StatusCode, String),
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Every API error: a stable machine-readable code and a sentence for people.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ApiErrorBody {
    /// `invalid_request`, `invalid_credentials`, `missing_token`, `invalid_token`,
    /// `invalid_refresh_token`, `too_many_attempts`, `forbidden`, `password_change_required`,
    /// `not_found`, `payload_too_large`, `unsupported_media_type`, `request_too_large`,
    /// `unavailable` or `internal_error`.
    #[schema(example = "invalid_token")]
    error: &'static str,
    message: String,
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
            Self::InvalidCredentials | Self::MissingToken | Self::InvalidToken | Self::InvalidRefreshToken => {
                StatusCode::UNAUTHORIZED
            }
            Self::Forbidden(_) | Self::PasswordChangeRequired => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType | Self::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::HeadTooLarge(status, _) => *status,
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
        let mut response = response.json(ApiErrorBody { error: self.code(), message });
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

/// Whether an unexpected error is the database being busy for now, not broken: a SQLite file
/// locked past its busy timeout, a PostgreSQL lock wait past `lock_timeout`, no free pooled
/// connection, a dropped connection. Those are 503 with `Retry-After`, not 500: the request
/// changed nothing (its transaction rolled back) and the same request will work shortly.
pub fn is_temporary(error: &anyhow::Error) -> bool {
    use diesel::result::Error as Diesel;
    error.chain().any(|cause| {
        if let Some(diesel) = cause.downcast_ref::<Diesel>() {
            return match diesel {
                Diesel::DatabaseError(kind, info) => {
                    matches!(
                        kind,
                        diesel::result::DatabaseErrorKind::ClosedConnection
                            | diesel::result::DatabaseErrorKind::SerializationFailure
                    ) || ["database is locked", "database table is locked", "database is busy", "lock timeout"]
                        .iter()
                        .any(|busy| info.message().contains(busy))
                }
                Diesel::BrokenTransactionManager => true,
                _ => false,
            };
        }
        cause.downcast_ref::<r2d2::Error>().is_some()
    })
}

/// Requests under `/api/` get JSON errors; everything else gets pages.
pub fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}
