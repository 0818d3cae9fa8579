//! Sign-in forms that lead back to an app. A form's `form-action` (our CSP) also covers the
//! redirects after it is posted, so a sign-in form whose `next` is an authorization request
//! may post its way to the app's registered redirect address: its origin, and only its,
//! is added to the page's `form-action` (the app and the address checked as the authorization
//! endpoint checks them).
use actix_web::HttpResponse;
use actix_web::http::header::{CONTENT_SECURITY_POLICY, HeaderValue};

use super::context::Services;
use super::oauth::shared::AUTHORIZE_PATH;

/// The origin of the registered redirect address an authorization request in `next` names.
pub(crate) async fn origin_of_request(app: &Services, next: &str) -> Option<String> {
    let query = next.strip_prefix(AUTHORIZE_PATH)?.strip_prefix('?')?;
    let params: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    let param = |name: &str| params.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
    let (client_id, redirect_uri) = (param("client_id")?, param("redirect_uri")?);
    let client = app.provider().find_client(client_id).await.ok()??;
    let registered = client.redirect_uri(redirect_uri)?;
    let url = url::Url::parse(registered).ok()?;
    Some(url.origin().ascii_serialization()).filter(|origin| origin != "null")
}

/// `response` with `origin` added to its `form-action`.
pub(crate) fn allow_posting_to(mut response: HttpResponse, app: &Services, origin: &str) -> HttpResponse {
    let Some(csp) = app.csp.as_ref() else { return response };
    // An origin is scheme, host and port: nothing that could end the directive.
    if origin.chars().any(|c| c.is_whitespace() || c == ';' || c == ',') {
        return response;
    }
    if let Ok(value) = HeaderValue::from_str(&format!("{} {origin}", csp.0)) {
        response.headers_mut().insert(CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// `response` (a page with a sign-in form going on to `next`) allowed to post its way to the
/// app `next` returns to, if it does.
pub(crate) async fn for_next(app: &Services, next: &str, response: HttpResponse) -> HttpResponse {
    match origin_of_request(app, next).await {
        Some(origin) => allow_posting_to(response, app, &origin),
        None => response,
    }
}
