//! Refusing state-changing requests that a browser says come from another site.
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::HeaderMap;
use actix_web::middleware::Next;

use crate::error::{PageError, is_api_path};

/// Refuses state-changing requests that a browser says come from another site, before any
/// handler runs — defence in depth on top of the CSRF token. Browsers send `Sec-Fetch-Site`;
/// older ones send `Origin`, compared with the `Host` the request was sent to (so it works
/// behind a TLS-terminating proxy). Clients that send neither (scripts) are left to the token.
/// `/api/` is exempt: it reads no cookies, so there is nothing for another site to ride on.
pub(crate) async fn refuse_cross_site_writes(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let safe_method = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    // The API takes only Bearer tokens, which a browser never attaches on its own.
    // So are the OpenID Connect endpoints apps call (an app's own page may post to authorize).
    let cookieless = super::oauth::shared::COOKIELESS_PATHS.contains(&req.path());
    if !safe_method && !is_api_path(req.path()) && !cookieless && is_cross_site(req.headers()) {
        tracing::warn!(path = req.path(), "cross-site write refused");
        return Ok(req.error_response(PageError::CsrfRejected));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

fn is_cross_site(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (header("origin"), header("host")) {
        (None, _) => false,
        (Some(origin), Some(host)) => {
            let authority = origin.split_once("://").map_or("", |(_, rest)| rest);
            !authority.eq_ignore_ascii_case(host)
        }
        (Some(_), None) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_cross_site_signals_are_read_strictly() {
        use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
            }
            map
        };
        assert!(!is_cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(is_cross_site(&headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://a.test"),
            ("host", "a.test")
        ])));
        assert!(!is_cross_site(&headers(&[("origin", "https://login.example.com"), ("host", "login.example.com")])));
        assert!(is_cross_site(&headers(&[("origin", "https://evil.test"), ("host", "login.example.com")])));
        assert!(is_cross_site(&headers(&[("origin", "null"), ("host", "login.example.com")])));
        assert!(!is_cross_site(&headers(&[])), "scripts send neither header");
    }
}
