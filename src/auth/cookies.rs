//! The cookies we set, and their attributes, in one place.
use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::http::header;

use crate::config::PublicUrl;

/// The value of the first cookie called `name` in the request. Read as sent, without
/// percent-decoding: every cookie Portcullis sets is base64url (with dots for tokens), so
/// there is nothing to decode, and the guard, which reads cookies on every page, skips parsing
/// and copying the whole header.
pub fn read<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers().get_all(header::COOKIE).flat_map(|value| value.as_bytes().split(|&byte| byte == b';')).find_map(
        |pair| {
            let value = pair.trim_ascii().strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
            std::str::from_utf8(value).ok().map(|value| value.trim_matches('"'))
        },
    )
}

#[derive(Clone)]
pub struct CookiePolicy {
    secure: bool,
    /// `PORTCULLIS_COOKIE_DOMAIN`: the access cookie (only it) goes to every host under it.
    domain: Option<String>,
    session_name: &'static str,
    refresh_name: &'static str,
    login_csrf_name: &'static str,
    flash_name: &'static str,
    device_name: &'static str,
    second_step_name: &'static str,
}

impl CookiePolicy {
    /// On https the names carry the `__Host-` prefix: Secure, Path=/, no Domain, so a sibling
    /// subdomain cannot plant or overwrite them. With a cookie domain the access cookie is sent
    /// to the whole domain, so it can only carry `__Secure-` (Secure, but a sibling subdomain
    /// could set one: it would still need our signature to be believed). The refresh cookie,
    /// the CSRF nonce and the others stay `__Host-`: no other site ever receives them.
    pub fn new(public_url: &PublicUrl, domain: Option<&str>) -> Self {
        let domain = domain.map(str::to_owned);
        if public_url.is_https() {
            Self {
                secure: true,
                session_name: if domain.is_some() { "__Secure-portcullis" } else { "__Host-portcullis" },
                domain,
                refresh_name: "__Host-portcullis-refresh",
                login_csrf_name: "__Host-portcullis-login",
                flash_name: "__Host-portcullis-flash",
                device_name: "__Host-portcullis-device",
                second_step_name: "__Host-portcullis-second-step",
            }
        } else {
            Self {
                secure: false,
                domain,
                session_name: "portcullis",
                refresh_name: "portcullis-refresh",
                login_csrf_name: "portcullis-login",
                flash_name: "portcullis-flash",
                device_name: "portcullis-device",
                second_step_name: "portcullis-second-step",
            }
        }
    }

    pub fn session_name(&self) -> &'static str {
        self.session_name
    }

    pub fn login_csrf_name(&self) -> &'static str {
        self.login_csrf_name
    }

    pub fn session(&self, token: String, max_age: std::time::Duration) -> Cookie<'static> {
        let mut cookie = self.build(self.session_name, token, SameSite::Lax, max_age);
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        cookie
    }

    pub fn session_removal(&self) -> Cookie<'static> {
        let mut cookie = self.session(String::new(), std::time::Duration::ZERO);
        cookie.make_removal();
        cookie
    }

    pub fn refresh_name(&self) -> &'static str {
        self.refresh_name
    }

    /// The refresh token: `SameSite=Strict`, so no cross-site request can renew a session.
    /// `Path=/` because the guard renews on whichever private page is asked for (and the
    /// `__Host-` prefix requires it); it is HttpOnly like the access cookie.
    pub fn refresh(&self, token: String, max_age: std::time::Duration) -> Cookie<'static> {
        self.build(self.refresh_name, token, SameSite::Strict, max_age)
    }

    pub fn refresh_removal(&self) -> Cookie<'static> {
        let mut cookie = self.build(self.refresh_name, String::new(), SameSite::Strict, std::time::Duration::ZERO);
        cookie.make_removal();
        cookie
    }

    /// Lives for the few minutes a person spends on the login form.
    pub fn login_csrf(&self, nonce: String) -> Cookie<'static> {
        self.build(self.login_csrf_name, nonce, SameSite::Lax, std::time::Duration::from_secs(60 * 60))
    }

    pub fn login_csrf_removal(&self) -> Cookie<'static> {
        self.removal(self.login_csrf_name)
    }

    pub fn flash_name(&self) -> &'static str {
        self.flash_name
    }

    /// A one-shot message for the next page ("User alice disabled."), base64url-encoded.
    pub fn flash(&self, encoded_message: String) -> Cookie<'static> {
        self.build(self.flash_name, encoded_message, SameSite::Lax, std::time::Duration::from_secs(60))
    }

    pub fn flash_removal(&self) -> Cookie<'static> {
        self.removal(self.flash_name)
    }

    pub fn device_name(&self) -> &'static str {
        self.device_name
    }

    /// The device credentials of the accounts signed in on this browser (see `device.rs`):
    /// `SameSite=Strict` (only our own forms send it), kept for the credentials' lifetime and
    /// not removed on sign-out, which is the point.
    pub fn device(&self, credentials: String) -> Cookie<'static> {
        self.build(self.device_name, credentials, SameSite::Strict, super::device::LIFETIME)
    }

    pub fn second_step_name(&self) -> &'static str {
        self.second_step_name
    }

    /// The token of a sign-in waiting for its second step: this browser's alone (HttpOnly,
    /// `SameSite=Strict`), for the five minutes the step may take. It opens no page.
    pub fn second_step(&self, token: String) -> Cookie<'static> {
        self.build(self.second_step_name, token, SameSite::Strict, super::second_factor::CHALLENGE_TTL)
    }

    pub fn second_step_removal(&self) -> Cookie<'static> {
        self.removal(self.second_step_name)
    }

    fn build(
        &self,
        name: &'static str,
        value: String,
        same_site: SameSite,
        max_age: std::time::Duration,
    ) -> Cookie<'static> {
        Cookie::build(name, value)
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(same_site)
            .max_age(time::Duration::seconds(i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX)))
            .finish()
    }

    fn removal(&self, name: &'static str) -> Cookie<'static> {
        let mut cookie = self.build(name, String::new(), SameSite::Lax, std::time::Duration::ZERO);
        cookie.make_removal();
        cookie
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn reads_the_first_cookie_with_exactly_that_name() {
        let req = TestRequest::default()
            .insert_header((header::COOKIE, "portcullis-refresh=r1; portcullis=a.b.c;portcullis=second"))
            .append_header((header::COOKIE, "other=\"quoted\""))
            .to_http_request();
        assert_eq!(read(&req, "portcullis"), Some("a.b.c"));
        assert_eq!(read(&req, "portcullis-refresh"), Some("r1"));
        assert_eq!(read(&req, "other"), Some("quoted"));
        assert_eq!(read(&req, "portcull"), None);
        assert_eq!(read(&TestRequest::default().to_http_request(), "portcullis"), None);
    }
}
