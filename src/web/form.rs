//! `StrictForm<T>`: an HTML form body, refused unless it is well-formed. actix's `Form` decodes
//! invalid UTF-8 lossily ("\xFF" becomes "�" and is saved); here it is a 400 instead, so a
//! user's input is either kept exactly or refused with a reason.
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use serde::de::DeserializeOwned;

use crate::auth::csrf::CsrfKey;
use crate::error::PageError;

pub(crate) struct StrictForm<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for StrictForm<T> {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_form = req.content_type() == "application/x-www-form-urlencoded";
        let body = Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_form {
                return Err(PageError::BadRequest("This page only accepts HTML form posts.".into()).into());
            }
            let body = body.await.map_err(|error| match error.as_error::<PayloadError>() {
                Some(PayloadError::Overflow) => PageError::PayloadTooLarge,
                _ => PageError::BadRequest("The form data could not be read. Reload the page and try again.".into()),
            })?;
            if !decodes_to_clean_text(&body) {
                return Err(PageError::BadRequest(
                    "The form contains bytes that are not valid text (UTF-8) or a NUL character. Check what you \
                     pasted and try again."
                        .into(),
                )
                .into());
            }
            let fields = serde_urlencoded::from_bytes(&body).map_err(|_| {
                PageError::BadRequest("The form data could not be read. Reload the page and try again.".into())
            })?;
            Ok(StrictForm(fields))
        })
    }
}

/// Whether every percent-decoded key and value of `application/x-www-form-urlencoded` bytes
/// is valid UTF-8 without NUL characters.
fn decodes_to_clean_text(body: &[u8]) -> bool {
    body.split(|byte| *byte == b'&').flat_map(|pair| pair.splitn(2, |byte| *byte == b'=')).all(|part| {
        let mut decoded = Vec::with_capacity(part.len());
        let mut bytes = part.iter().copied();
        while let Some(byte) = bytes.next() {
            match byte {
                b'%' => {
                    let hex: Vec<u8> = bytes.clone().take(2).collect();
                    match std::str::from_utf8(&hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(value) if hex.len() == 2 => {
                            decoded.push(value);
                            bytes.nth(1);
                        }
                        _ => decoded.push(b'%'),
                    }
                }
                b'+' => decoded.push(b' '),
                other => decoded.push(other),
            }
        }
        !decoded.contains(&0) && std::str::from_utf8(&decoded).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::decodes_to_clean_text;

    #[test]
    fn only_bodies_that_decode_to_text_pass() {
        assert!(decodes_to_clean_text(b"name=Gr%C3%BC%C3%9Fe+aus&x=%F0%9D%84%9E&empty=&100%25=ok"));
        assert!(!decodes_to_clean_text(b"name=%FF%FE"));
        assert!(!decodes_to_clean_text(b"a=1&b=%C3"), "a truncated sequence");
        assert!(!decodes_to_clean_text(b"%FF=key"));
        assert!(!decodes_to_clean_text(b"raw=\xff"));
        assert!(!decodes_to_clean_text(b"name=a%00b"), "a NUL character");
        assert!(!decodes_to_clean_text(b"name=a\x00b"));
    }
}

/// A form posted by a signed-in user. Extracting it verifies the form's `csrf_token` field
/// against the session, so a handler that takes a `CsrfForm<T>` cannot forget the check and
/// `T` declares only its own fields. A missing token reads as empty and is refused.
pub(crate) struct CsrfForm<T>(pub T);

#[derive(serde::Deserialize)]
struct CsrfEnvelope<T> {
    #[serde(default)]
    csrf_token: String,
    #[serde(flatten)]
    fields: T,
}

/// For buttons whose form carries nothing but the CSRF token.
#[derive(serde::Deserialize)]
pub(crate) struct NoFields {}

impl<T> actix_web::FromRequest for CsrfForm<T>
where
    T: serde::de::DeserializeOwned + 'static,
{
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &actix_web::HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        use actix_web::HttpMessage;
        let form = StrictForm::<CsrfEnvelope<T>>::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let session_id = req
                .extensions()
                .get::<std::sync::Arc<crate::auth::Authenticated>>()
                .map(|auth| auth.session_id.clone())
                .ok_or_else(|| {
                    PageError::Unexpected(anyhow::anyhow!(
                        "route {} takes a CsrfForm but has no session guard",
                        req.path()
                    ))
                })?;
            let key = super::guard::app_data::<CsrfKey>(&req).map_err(PageError::Unexpected)?;
            let envelope = form.await?.0;
            if !key.verify_session(&session_id, &envelope.csrf_token) {
                tracing::warn!(path = req.path(), "CSRF token refused");
                return Err(PageError::CsrfRejected.into());
            }
            Ok(CsrfForm(envelope.fields))
        })
    }
}
