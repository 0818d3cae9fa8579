//! `StrictJson<T>`: every JSON request body of the API. Like actix's `Json`, plus: a NUL
//! character anywhere (`\u0000`) is refused, and every refusal is an `ApiError` (JSON).
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpMessage, HttpRequest, mime};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct StrictJson<T>(pub T);

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
