//! `StrictJson<T>`: every JSON request body. Like actix's `Json`, plus: a NUL character
//! anywhere (`\u0000`) is refused, and every refusal is an `ApiError` (JSON). `CsrfJson<T>`:
//! a JSON body from one of our pages, its `csrf_token` checked on extraction (beside
//! `CsrfForm<T>` in `form.rs`): bound to the session, or to the login form's nonce.
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpMessage, HttpRequest, mime};
use serde::de::DeserializeOwned;

use crate::auth::csrf::CsrfKey;
use crate::error::ApiError;
use crate::web::cookies::CookiePolicy;

pub(crate) struct StrictJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for StrictJson<T> {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let mime = req.mime_type().ok().flatten();
        let is_json = mime.is_some_and(|mime| mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON));
        let body = Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::UnsupportedMediaType.into());
            }
            let body = body.await.map_err(|error| match error.as_error::<PayloadError>() {
                Some(PayloadError::Overflow) => ApiError::PayloadTooLarge,
                _ => ApiError::BadRequest("the request body could not be read".into()),
            })?;
            if contains_nul_escape(&body) {
                return Err(ApiError::BadRequest("text in the request must not contain NUL characters".into()).into());
            }
            let value = serde_json::from_slice(&body)
                .map_err(|error| ApiError::BadRequest(format!("the request body is not valid: {error}")))?;
            Ok(StrictJson(value))
        })
    }
}

/// A JSON body that carries its page's CSRF token.
pub(crate) trait CarriesCsrfToken {
    fn csrf_token(&self) -> &str;
}

/// What a [`CsrfJson`] body's token is bound to, checked on extraction.
pub(crate) trait CsrfBinding: Sized {
    fn check(req: &HttpRequest, token: &str) -> Result<Self, ApiError>;
}

/// The signed-in session of the page (the guard put it on the request).
pub(crate) struct SessionBound;

impl CsrfBinding for SessionBound {
    fn check(req: &HttpRequest, token: &str) -> Result<Self, ApiError> {
        let session_id = req
            .extensions()
            .get::<std::sync::Arc<crate::auth::Authenticated>>()
            .map(|auth| auth.session_id.clone())
            .ok_or_else(|| anyhow::anyhow!("route {} takes a CsrfJson but has no session guard", req.path()))?;
        let key = super::guard::app_data::<CsrfKey>(req)?;
        if key.verify_session(&session_id, token) {
            Ok(Self)
        } else {
            tracing::warn!(path = req.path(), "CSRF token refused");
            Err(ApiError::Forbidden("this page has expired: reload it and try again".into()))
        }
    }
}

/// The login form's nonce cookie (pages before a session exists); holds the nonce.
pub(crate) struct LoginNonce(pub String);

impl CsrfBinding for LoginNonce {
    fn check(req: &HttpRequest, token: &str) -> Result<Self, ApiError> {
        let cookies = super::guard::app_data::<CookiePolicy>(req)?;
        let key = super::guard::app_data::<CsrfKey>(req)?;
        let nonce = crate::web::cookies::read(req, cookies.login_csrf_name()).unwrap_or_default();
        if nonce.is_empty() || !key.verify_login(nonce, token) {
            return Err(ApiError::Forbidden("this page has expired: reload it and try again".into()));
        }
        Ok(Self(nonce.to_owned()))
    }
}

/// A JSON body whose `csrf_token` is bound as `B` says; a handler that takes one cannot
/// forget the check.
pub(crate) struct CsrfJson<T, B = SessionBound> {
    pub body: T,
    pub bound: B,
}

impl<T, B> FromRequest for CsrfJson<T, B>
where
    T: DeserializeOwned + CarriesCsrfToken + 'static,
    B: CsrfBinding + 'static,
{
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = StrictJson::<T>::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let body = json.await?.0;
            let bound = B::check(&req, body.csrf_token())?;
            Ok(CsrfJson { body, bound })
        })
    }
}

/// `\u0000` in a JSON string (a raw NUL byte is not valid JSON and fails to parse anyway).
fn contains_nul_escape(body: &[u8]) -> bool {
    body.windows(6).enumerate().any(|(at, window)| {
        window.eq_ignore_ascii_case(b"\\u0000")
            && body[..at].iter().rev().take_while(|byte| **byte == b'\\').count() % 2 == 0
    })
}

#[cfg(test)]
mod tests {
    use super::contains_nul_escape;

    #[test]
    fn an_escaped_nul_is_found_but_an_escaped_backslash_before_u0000_is_not() {
        assert!(contains_nul_escape(br#"{"username":"a\u0000b"}"#));
        assert!(contains_nul_escape(br#"{"username":"\\\u0000"}"#));
        assert!(!contains_nul_escape(br#"{"username":"a\\u0000b"}"#), "a backslash, then the text u0000");
        assert!(!contains_nul_escape(br#"{"username":"alice"}"#));
    }
}
