//! The cookies we set, and their attributes, in one place.
use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::http::header;

use crate::auth::tokens::{IssuedToken, JwtKeys};
use crate::config::PublicUrl;

/// The values of the cookies called `name` in the request, in the order sent. Read as sent,
/// without percent-decoding: every cookie Portcullis sets is base64url (with dots for tokens),
/// so there is nothing to decode, and the guard, which reads cookies on every page, skips
/// parsing and copying the whole header.
fn values<'r>(req: &'r HttpRequest, name: &str) -> impl Iterator<Item = &'r str> {
    req.headers().get_all(header::COOKIE).flat_map(|value| value.as_bytes().split(|&byte| byte == b';')).filter_map(
        move |pair| {
            let value = pair.trim_ascii().strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
            std::str::from_utf8(value).ok().map(|value| value.trim_matches('"'))
        },
    )
}

/// The value of the first cookie called `name` in the request.
pub(crate) fn read<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    values(req, name).next()
}

/// Two different values arrived for a cookie that is set once: one was planted (by a sibling
/// site under the cookie domain, say), and neither may be believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ambiguous;

/// The one value of the cookies called `name`: `Ok(None)` when there is none, [`Ambiguous`]
/// when the request carries two different ones.
pub(crate) fn read_unique<'r>(req: &'r HttpRequest, name: &str) -> Result<Option<&'r str>, Ambiguous> {
    let mut found: Option<&str> = None;
    for value in values(req, name).filter(|value| !value.is_empty()) {
        match found {
            Some(earlier) if earlier != value => return Err(Ambiguous),
            _ => found = Some(value),
        }
    }
    Ok(found)
}

#[derive(Clone)]
pub(crate) struct CookiePolicy {
    secure: bool,
    /// `PORTCULLIS_COOKIE_DOMAIN`: only the gate cookie goes to every host under it.
    domain: Option<String>,
    session_name: &'static str,
    gate_name: &'static str,
    refresh_name: &'static str,
    login_csrf_name: &'static str,
    flash_name: &'static str,
    device_name: &'static str,
    second_step_name: &'static str,
}

impl CookiePolicy {
    /// On https the names carry the `__Host-` prefix: Secure, Path=/, no Domain, so a sibling
    /// subdomain cannot plant or overwrite them. Every cookie of ours is host-only: the access
    /// cookie too. With a cookie domain, the sites under it get a gate cookie instead: a twin
    /// token with the gate's audience, which opens nothing here, as `__Secure-` (a sibling
    /// could plant one; two different ones are refused as ambiguous).
    pub(crate) fn new(public_url: &PublicUrl, domain: Option<&str>) -> Self {
        let domain = domain.map(str::to_owned);
        if public_url.is_https() {
            Self {
                secure: true,
                domain,
                session_name: "__Host-portcullis",
                gate_name: "__Secure-portcullis-gate",
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
                gate_name: "portcullis-gate",
                refresh_name: "portcullis-refresh",
                login_csrf_name: "portcullis-login",
                flash_name: "portcullis-flash",
                device_name: "portcullis-device",
                second_step_name: "portcullis-second-step",
            }
        }
    }

    pub(crate) fn session_name(&self) -> &'static str {
        self.session_name
    }

    pub(crate) fn login_csrf_name(&self) -> &'static str {
        self.login_csrf_name
    }

    /// The gate cookie's name, when there is a cookie domain to send it to.
    pub(crate) fn gate_name(&self) -> Option<&'static str> {
        self.domain.as_ref().map(|_| self.gate_name)
    }

    /// The cookies of a signed-in browser: the access token, host-only; with a cookie domain,
    /// its gate twin for the sites under it.
    pub(crate) fn session(
        &self,
        keys: &JwtKeys,
        access: &IssuedToken,
        max_age: std::time::Duration,
    ) -> anyhow::Result<Vec<Cookie<'static>>> {
        let mut cookies = vec![self.build(self.session_name, access.token.clone(), SameSite::Lax, max_age)];
        if let Some(domain) = &self.domain {
            let mut gate = self.build(self.gate_name, keys.gate_twin(&access.claims)?, SameSite::Lax, max_age);
            gate.set_domain(domain.clone());
            cookies.push(gate);
        }
        Ok(cookies)
    }

    /// Removes the access cookie and, with a cookie domain, the gate cookie.
    pub(crate) fn session_removal(&self) -> Vec<Cookie<'static>> {
        let mut cookies = vec![self.removal(self.session_name)];
        if let Some(domain) = &self.domain {
            let mut gate = self.removal(self.gate_name);
            gate.set_domain(domain.clone());
            cookies.push(gate);
        }
        cookies
    }

    /// Everything a signed-out browser must forget: the access, gate and refresh cookies.
    pub(crate) fn signed_out(&self) -> Vec<Cookie<'static>> {
        let mut cookies = self.session_removal();
        cookies.push(self.refresh_removal());
        cookies
    }

    pub(crate) fn refresh_name(&self) -> &'static str {
        self.refresh_name
    }

    /// The refresh token: `SameSite=Strict`, so no cross-site request can renew a session.
    /// `Path=/` because the guard renews on whichever private page is asked for (and the
    /// `__Host-` prefix requires it); it is HttpOnly like the access cookie.
    pub(crate) fn refresh(&self, token: String, max_age: std::time::Duration) -> Cookie<'static> {
        self.build(self.refresh_name, token, SameSite::Strict, max_age)
    }

    pub(crate) fn refresh_removal(&self) -> Cookie<'static> {
        let mut cookie = self.build(self.refresh_name, String::new(), SameSite::Strict, std::time::Duration::ZERO);
        cookie.make_removal();
        cookie
    }

    /// Lives for the few minutes a person spends on the login form.
    pub(crate) fn login_csrf(&self, nonce: String) -> Cookie<'static> {
        self.build(self.login_csrf_name, nonce, SameSite::Lax, std::time::Duration::from_secs(60 * 60))
    }

    pub(crate) fn login_csrf_removal(&self) -> Cookie<'static> {
        self.removal(self.login_csrf_name)
    }

    pub(crate) fn flash_name(&self) -> &'static str {
        self.flash_name
    }

    /// A one-shot message for the next page ("User alice disabled."), base64url-encoded.
    pub(crate) fn flash(&self, encoded_message: String) -> Cookie<'static> {
        self.build(self.flash_name, encoded_message, SameSite::Lax, std::time::Duration::from_secs(60))
    }

    pub(crate) fn flash_removal(&self) -> Cookie<'static> {
        self.removal(self.flash_name)
    }

    pub(crate) fn device_name(&self) -> &'static str {
        self.device_name
    }

    /// The device credentials of the accounts signed in on this browser (see `device.rs`):
    /// `SameSite=Strict` (only our own forms send it), kept for the credentials' lifetime and
    /// not removed on sign-out, which is the point.
    pub(crate) fn device(&self, credentials: String) -> Cookie<'static> {
        self.build(self.device_name, credentials, SameSite::Strict, crate::auth::device::LIFETIME)
    }

    pub(crate) fn second_step_name(&self) -> &'static str {
        self.second_step_name
    }

    /// The token of a sign-in waiting for its second step: this browser's alone (HttpOnly,
    /// `SameSite=Strict`), for the five minutes the step may take. It opens no page.
    pub(crate) fn second_step(&self, token: String) -> Cookie<'static> {
        self.build(self.second_step_name, token, SameSite::Strict, crate::auth::second_factor::CHALLENGE_TTL)
    }

    pub(crate) fn second_step_removal(&self) -> Cookie<'static> {
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

    #[test]
    fn two_different_values_of_one_cookie_are_ambiguous() {
        let req = |header: &str| TestRequest::default().insert_header((header::COOKIE, header)).to_http_request();
        assert_eq!(read_unique(&req("portcullis-gate=a.b.c; x=1"), "portcullis-gate"), Ok(Some("a.b.c")));
        assert_eq!(
            read_unique(&req("portcullis-gate=a.b.c; portcullis-gate=a.b.c"), "portcullis-gate"),
            Ok(Some("a.b.c"))
        );
        assert_eq!(
            read_unique(&req("portcullis-gate=a.b.c; portcullis-gate=x.y.z"), "portcullis-gate"),
            Err(Ambiguous)
        );
        assert_eq!(read_unique(&req("portcullis-gate-x=1"), "portcullis-gate"), Ok(None));
    }
}
