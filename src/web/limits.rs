//! Request limits that hold before any handler runs.
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;

use crate::error::{ApiError, PageError, TooLarge, is_api_path};

/// Longer addresses than any page here produces (a `next` path included) are refused (414).
pub(crate) const MAX_URI_BYTES: usize = 4096;
/// The whole request head's headers: browsers send a few KiB; room for a 16 KiB junk token
/// to get its proper 401 (431 beyond).
pub(crate) const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses oversized addresses and headers before anything parses them further.
pub(crate) async fn refuse_oversized_heads(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let uri_bytes = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    let header_bytes: usize = req.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    let refusal = if uri_bytes > MAX_URI_BYTES {
        Some((TooLarge::Uri, format!("The address is longer than {MAX_URI_BYTES} bytes.")))
    } else if header_bytes > MAX_HEADER_BYTES {
        Some((TooLarge::Headers, format!("The request headers are larger than {} KiB.", MAX_HEADER_BYTES / 1024)))
    } else {
        None
    };
    match refusal {
        Some((status, message)) => {
            let refusal: actix_web::Error = if is_api_path(req.path()) {
                ApiError::HeadTooLarge(status, message).into()
            } else {
                PageError::HeadTooLarge(status, message).into()
            };
            Ok(req.error_response(refusal))
        }
        None => Ok(next.call(req).await?.map_into_boxed_body()),
    }
}

/// Compressed request bodies are refused (415): nothing here needs them, and a small gzip
/// body can expand past every size limit. (The server is built without decompression, so such
/// a body would otherwise reach a parser as garbage.)
pub(crate) async fn refuse_encoded_bodies(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let encoded = req
        .headers()
        .get_all(header::CONTENT_ENCODING)
        .any(|value| !value.to_str().is_ok_and(|value| value.trim().eq_ignore_ascii_case("identity")));
    if encoded {
        let message = "Compressed request bodies (Content-Encoding) are not accepted.";
        let refusal: actix_web::Error = if is_api_path(req.path()) {
            ApiError::UnsupportedEncoding(message.to_owned()).into()
        } else {
            PageError::UnsupportedEncoding(message.to_owned()).into()
        };
        return Ok(req.error_response(refusal));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}
