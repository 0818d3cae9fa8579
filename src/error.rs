//! One error type per edge: `PageError` for pages, `ApiError` for the JSON API. Expected
//! cases carry a message for the user; everything else is `Unexpected`. These types render
//! nothing: `web::errors` turns them into an HTML page or a JSON body.

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
    #[error("{1}")]
    HeadTooLarge(TooLarge, String),
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
impl From<crate::accounts::AccountError> for PageError {
    fn from(error: crate::accounts::AccountError) -> Self {
        use crate::accounts::AccountError;
        match error {
            AccountError::NotFound => Self::NotFound,
            AccountError::Refused(message) | AccountError::Field((_, message)) => Self::BadRequest(message),
            AccountError::Throttled(_) | AccountError::Link(_) => Self::BadRequest(error.to_string()),
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
    /// The password was right; the sign-in continues at `POST /api/token/mfa` with this token.
    #[error(
        "this account signs in with a second factor: send a code from the authenticator app (or a recovery \
             code) with this mfa_token to POST /api/token/mfa within 5 minutes"
    )]
    MfaRequired { mfa_token: String, methods: Vec<&'static str> },
    #[error("this account must set up two-step sign-in before using the API; sign in on the web to set it up")]
    MfaEnrolmentRequired,
    /// A wrong or already used second-factor code; the message says which.
    #[error("{0}")]
    InvalidCode(String),
    #[error(
        "the mfa_token is not valid: it expired (5 minutes), was used, or took too many wrong codes; sign in again"
    )]
    InvalidMfaToken,
    /// A change that controls sign-in, without a recent proof of identity: the page's script
    /// sends the person to confirm it is them (`/account/security/confirm`) first.
    #[error("confirm it is you first: enter your password again, then try once more")]
    ProofRequired,
    /// A page's script called a JSON endpoint without a live session.
    #[error("you are not signed in, or your session has ended: reload the page and sign in")]
    SignedOut,
    /// A passkey's answer that was not accepted; the message says why.
    #[error("{0}")]
    InvalidPasskey(String),
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
    #[error("{1}")]
    HeadTooLarge(TooLarge, String),
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
impl From<crate::accounts::AccountError> for ApiError {
    fn from(error: crate::accounts::AccountError) -> Self {
        use crate::accounts::AccountError;
        match error {
            AccountError::NotFound => Self::NotFound,
            AccountError::Refused(message) | AccountError::Field((_, message)) => Self::BadRequest(message),
            AccountError::Throttled(wait) => Self::Throttled(wait),
            AccountError::Link(_) => Self::BadRequest(error.to_string()),
            AccountError::Database(error) => Self::Unexpected(error.into()),
            AccountError::Unexpected(error) => Self::Unexpected(error),
        }
    }
}

impl From<crate::auth::passkeys::PasskeyError> for ApiError {
    fn from(error: crate::auth::passkeys::PasskeyError) -> Self {
        use crate::auth::passkeys::PasskeyError;
        match error {
            PasskeyError::Unexpected(error) => Self::Unexpected(error),
            PasskeyError::Unavailable(message) => Self::Forbidden(message.to_owned()),
            other => Self::InvalidPasskey(other.to_string()),
        }
    }
}

pub use crate::db::is_temporary;

/// Requests under `/api/` get JSON errors; everything else gets pages.
pub fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// Which part of a request's head was over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooLarge {
    /// The address (414).
    Uri,
    /// The headers (431).
    Headers,
}
