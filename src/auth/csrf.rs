//! CSRF tokens: an HMAC over something the attacker's page cannot read or set.
//! Signed-in forms bind to the login's session id (`sid`); the login form binds to a random
//! nonce in its own cookie (login CSRF). Both are verified in constant time.
use super::keys::DerivedKey;
use crate::config::JwtSecret;

/// Signs with the key derived from the current secret; during a secret rotation, tokens from
/// the previous secret (forms rendered before the restart) still verify.
pub struct CsrfKey(DerivedKey);

impl CsrfKey {
    /// Derived from the signing secret with a separate label, so one secret serves both uses.
    pub fn derive(secret: &JwtSecret, previous: Option<&JwtSecret>) -> Self {
        Self(DerivedKey::derive(secret, previous, b"portcullis csrf key v1"))
    }

    pub fn for_session(&self, session_id: &str) -> String {
        self.sign("session", session_id)
    }

    pub fn verify_session(&self, session_id: &str, presented: &str) -> bool {
        self.verify("session", session_id, presented)
    }

    pub fn for_login(&self, nonce: &str) -> String {
        self.sign("login", nonce)
    }

    pub fn verify_login(&self, nonce: &str, presented: &str) -> bool {
        self.verify("login", nonce, presented)
    }

    fn sign(&self, purpose: &str, value: &str) -> String {
        self.0.sign_base64(format!("{purpose}\0{value}").as_bytes())
    }

    fn verify(&self, purpose: &str, value: &str, presented: &str) -> bool {
        !value.is_empty() && self.0.verify_base64(format!("{purpose}\0{value}").as_bytes(), presented)
    }
}

/// A form posted by a signed-in user. Extracting it verifies the form's `csrf_token` field
/// against the session, so a handler that takes a `CsrfForm<T>` cannot forget the check and
/// `T` declares only its own fields. A missing token reads as empty and is refused.
pub struct CsrfForm<T>(pub T);

#[derive(serde::Deserialize)]
struct CsrfEnvelope<T> {
    #[serde(default)]
    csrf_token: String,
    #[serde(flatten)]
    fields: T,
}

/// For buttons whose form carries nothing but the CSRF token.
#[derive(serde::Deserialize)]
pub struct NoFields {}

impl<T> actix_web::FromRequest for CsrfForm<T>
where
    T: serde::de::DeserializeOwned + 'static,
{
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &actix_web::HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        use actix_web::HttpMessage;
        let form = crate::web::form::StrictForm::<CsrfEnvelope<T>>::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let session_id = req
                .extensions()
                .get::<std::sync::Arc<crate::auth::Authenticated>>()
                .map(|auth| auth.session_id.clone())
                .ok_or_else(|| {
                    crate::error::PageError::Unexpected(anyhow::anyhow!(
                        "route {} takes a CsrfForm but has no session guard",
                        req.path()
                    ))
                })?;
            let key = crate::auth::guard::app_data::<CsrfKey>(&req).map_err(crate::error::PageError::Unexpected)?;
            let envelope = form.await?.0;
            if !key.verify_session(&session_id, &envelope.csrf_token) {
                tracing::warn!(path = req.path(), "CSRF token refused");
                return Err(crate::error::PageError::CsrfRejected.into());
            }
            Ok(CsrfForm(envelope.fields))
        })
    }
}

/// Refuses state-changing requests that a browser says come from another site, before any
/// handler runs — defence in depth on top of the CSRF token. Browsers send `Sec-Fetch-Site`;
/// older ones send `Origin`, compared with the `Host` the request was sent to (so it works
/// behind a TLS-terminating proxy). Clients that send neither (scripts) are left to the token.
/// `/api/` is exempt: it reads no cookies, so there is nothing for another site to ride on.
pub async fn refuse_cross_site_writes(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use actix_web::http::Method;
    let safe_method = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    // The API takes only Bearer tokens, which a browser never attaches on its own.
    if !safe_method && !crate::error::is_api_path(req.path()) && is_cross_site(req.headers()) {
        tracing::warn!(path = req.path(), "cross-site write refused");
        return Ok(req.error_response(crate::error::PageError::CsrfRejected));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

fn is_cross_site(headers: &actix_web::http::header::HeaderMap) -> bool {
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

    fn key(seed: &str) -> CsrfKey {
        CsrfKey::derive(&JwtSecret::parse(&format!("{seed}-Vq3xL9TzK2mWp8RbN4cYh7JdF6sGa1Ue"), "t").unwrap(), None)
    }

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

    #[test]
    fn a_token_verifies_only_for_its_own_session_purpose_and_key() {
        let k = key("a");
        let token = k.for_session("sid-1");
        assert!(k.verify_session("sid-1", &token));
        assert!(!k.verify_session("sid-2", &token));
        assert!(!k.verify_login("sid-1", &token));
        assert!(!key("b").verify_session("sid-1", &token));
        assert!(!k.verify_session("", &k.for_session("")));
        assert!(!k.verify_session("sid-1", ""));
    }
}
