//! A request id for every request: on every log line of the request (the `request` span),
//! in the `X-Request-Id` answer header, and on the 5xx page and JSON error so a user can
//! quote it to whoever reads the log.
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

tokio::task_local! {
    static REQUEST_ID: RequestId;
}

/// 64 random bits in hex: short enough to read out, unique enough across instances.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestId(u64);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The id of the request being answered, if any (error pages read it).
pub(crate) fn current() -> Option<RequestId> {
    REQUEST_ID.try_with(|id| *id).ok()
}

/// The outermost middleware: the request runs in its span, with its id at hand.
pub(crate) async fn tag_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = RequestId(u64::from_le_bytes(crate::random::bytes::<8>()));
    let span = tracing::info_span!("request", id = %id);
    let answered = REQUEST_ID.scope(id, next.call(req).instrument(span)).await;
    let mut response = answered?.map_into_boxed_body();
    if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
        response.headers_mut().insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(response)
}
