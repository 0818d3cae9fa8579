//! `GET /auth/verify`: the sign-in gate for the other sites behind the reverse proxy (nginx
//! `auth_request`, Caddy `forward_auth`, Traefik `ForwardAuth`). The proxy asks before each
//! request; the answer comes from the token alone, exactly as for our own pages (signature,
//! expiry, the revoked list; no database work):
//! - **200** with `Remote-User`, `Remote-Email`, `Remote-Name`, `Remote-Role`, `Remote-Groups` (and, with
//!   `PORTCULLIS_FORWARD_AUTH_TOKEN=on`, `Authorization: Bearer`) when the access rules let the
//!   caller in; the proxy copies them onto the request it passes on;
//! - for a browser not signed in: **302** to our login page with `rd` = the address asked for
//!   (with `?answer=401`, for nginx, which passes on only 2xx, 401 and 403: **401** carrying the
//!   same `Location`); renewal happens there, from the refresh cookie, which no other site sees;
//! - **401** (JSON) for other clients; **403** with a page that says why for a caller the rules
//!   do not let in.
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::auth::sessions::{AuthFailure, Authenticated, Sessions};
use crate::domain::{Access, AccessRules, Role, SiteHost, SitePath};
use crate::error::PageError;
use crate::web::cookies::{self, CookiePolicy};
use crate::web::layout::{Layout, render};

const REMOTE_USER: &str = "remote-user";
const REMOTE_EMAIL: &str = "remote-email";
const REMOTE_NAME: &str = "remote-name";
const REMOTE_ROLE: &str = "remote-role";
const REMOTE_GROUPS: &str = "remote-groups";

/// The gate's settings, as the server keeps them.
pub(crate) struct Gate {
    pub rules: AccessRules,
    pub pass_token: bool,
    /// Our public origin: where browsers are sent to sign in.
    pub origin: String,
}

#[derive(Template)]
#[template(path = "forward_auth_refused.html")]
struct Refused<'a> {
    layout: Layout,
    address: &'a str,
    who: &'a str,
    reason: String,
    origin: &'a str,
}

/// The address the browser asked the proxy for: `X-Original-URL` (nginx), or
/// `X-Forwarded-Proto` + `X-Forwarded-Host` + `X-Forwarded-Uri` (Caddy, Traefik); and the site
/// the proxy routed the request to, which the rules are judged on: `X-Forwarded-Host` (Caddy
/// and Traefik set it to the host they routed by; nginx is told to send `$server_name`).
/// The raw parts are borrowed from the request: this runs before every request to every
/// guarded site.
struct Asked<'r> {
    scheme: &'r str,
    /// As asked, port included: where a browser is sent back to.
    authority: &'r str,
    uri: &'r str,
    host: SiteHost,
    path: SitePath,
}

impl Asked<'_> {
    fn address(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.uri)
    }
}

/// Why the gate cannot judge a request: the proxy's administrator reads this.
enum Unjudgeable {
    /// The headers are missing or malformed: the proxy is configured wrongly.
    Headers(String),
    /// The address cannot be read safely, or is not the site the proxy routed to.
    Address(String),
}

const MISSING_HEADERS: &str = "Portcullis cannot tell which address was asked for: the reverse proxy must send \
    X-Forwarded-Host and X-Forwarded-Uri (or X-Original-URL with X-Forwarded-Host). See docs/forward-auth.md.";

fn original_url(req: &HttpRequest) -> Result<Asked<'_>, Unjudgeable> {
    let header = |name: &str| req.headers().get(name).and_then(|value| value.to_str().ok()).map(str::trim);
    let missing = || Unjudgeable::Headers(MISSING_HEADERS.to_owned());
    let routed = header("x-forwarded-host");
    let (scheme, authority, uri) = match header("x-original-url") {
        Some(url) => {
            let (scheme, rest) = url.split_once("://").ok_or_else(missing)?;
            let (authority, uri) = rest.find('/').map_or((rest, "/"), |at| (&rest[..at], &rest[at..]));
            (scheme, authority, uri)
        }
        None => (
            header("x-forwarded-proto").unwrap_or("https"),
            routed.ok_or_else(missing)?,
            header("x-forwarded-uri").unwrap_or("/"),
        ),
    };
    let Some(routed) = routed else {
        return Err(Unjudgeable::Headers(
            "The reverse proxy sent X-Original-URL but not the site it routed the request to: add \
             `proxy_set_header X-Forwarded-Host $server_name;` to the check's location (see docs/forward-auth.md)."
                .to_owned(),
        ));
    };
    if !matches!(scheme, "http" | "https") || !uri.starts_with('/') {
        return Err(missing());
    }
    let host = SiteHost::parse(authority)
        .map_err(|error| Unjudgeable::Address(format!("The address asked for cannot be checked: {error}.")))?;
    let (wildcard, routed_name) = routed.strip_prefix("*.").map_or((false, routed), |name| (true, name));
    let routed_host = SiteHost::parse(routed_name)
        .map_err(|error| Unjudgeable::Headers(format!("X-Forwarded-Host is not a host name: {error}.")))?;
    let agrees = if wildcard { host.matches(&format!("*.{}", routed_host.as_str())) } else { host == routed_host };
    if !agrees {
        return Err(Unjudgeable::Address(format!(
            "The address asked for (host {}) is not the site the proxy routed the request to ({routed}).",
            host.as_str()
        )));
    }
    let path = SitePath::parse(uri)
        .map_err(|error| Unjudgeable::Address(format!("The address asked for cannot be checked safely: {error}.")))?;
    Ok(Asked { scheme, authority, uri, host, path })
}

fn is_browser(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// The token the request carries: the gate cookie (with a cookie domain; else our own access
/// cookie, for sites on our host), or a Bearer header. Two different gate cookies: one was
/// planted by a sibling site, and neither is believed.
fn token<'r>(req: &'r HttpRequest, cookies: &CookiePolicy) -> Result<Option<&'r str>, cookies::Ambiguous> {
    if let Some(cookie) = cookies::read_unique(req, cookies.gate_name().unwrap_or(cookies.session_name()))? {
        return Ok(Some(cookie));
    }
    let bearer = || {
        let authorization = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = authorization.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    };
    Ok(bearer())
}

pub(crate) async fn verify(
    req: HttpRequest,
    sessions: web::Data<Sessions>,
    cookies: web::Data<CookiePolicy>,
    gate: web::Data<Gate>,
) -> Result<HttpResponse, PageError> {
    // `?answer=401`: for nginx's auth_request, which passes on only 2xx, 401 and 403.
    let as_401 = req.query_string().split('&').any(|pair| pair == "answer=401");
    let asked = match original_url(&req) {
        Ok(asked) => asked,
        Err(Unjudgeable::Headers(message)) => return Err(PageError::BadRequest(message)),
        Err(Unjudgeable::Address(message)) => return bad_request(message, as_401),
    };
    let access = gate.rules.access(&asked.host, &asked.path);
    let Ok(token) = token(&req, &cookies) else {
        let message = "Two different sign-in cookies arrived: another site under this domain has set one. Sign out \
                       at the login page and sign in again.";
        return bad_request(message.to_owned(), as_401);
    };
    let caller = match token.map(|token| sessions.authenticate_at_gate(token)) {
        Some(Ok(caller)) => Some(caller),
        Some(Err(AuthFailure::Unavailable(error))) => return Err(PageError::Unavailable(error)),
        Some(Err(_)) | None => None,
    };

    match access.as_ref() {
        Access::Public => return Ok(allowed(caller.as_deref(), token, gate.pass_token)),
        Access::Nobody => {
            let reason = "This address is closed to everyone.".to_owned();
            return refused(&gate, &asked.address(), caller.as_deref(), reason);
        }
        _ => {}
    }
    let Some(caller) = caller else {
        return Ok(sign_in_first(&req, &gate, &asked.address(), as_401));
    };
    // Someone who must first choose a password or set up a second factor does that with us
    // (under `?answer=401` a 401 carrying the same `Location`: nginx passes on nothing else).
    if caller.must_change_password || caller.must_enrol {
        let page = if caller.must_change_password { "/password/change" } else { "/account/security" };
        return Ok(send_to(format!("{}{page}", gate.origin), as_401));
    }
    if !access.admits(caller.role, &caller.groups) {
        // Which groups the caller is in, where the rule is about groups.
        let groups = match (matches!(access.as_ref(), Access::Roles(_)), caller.groups.as_slice()) {
            (true, _) => String::new(),
            (false, []) => ", in no group".to_owned(),
            (false, groups) => format!(", in {}", groups.join(", ")),
        };
        let reason = format!(
            "It is for {}; your account is a{} {}{groups}{}.",
            access.in_words(),
            if caller.role == Role::Admin { "n" } else { "" },
            caller.role.as_str(),
            if caller.groups_truncated { " (and more groups than a sign-in can name)" } else { "" },
        );
        return refused(&gate, &asked.address(), Some(&caller), reason);
    }
    Ok(allowed(Some(&caller), token, gate.pass_token))
}

/// 200, with who the caller is for the site behind the proxy.
fn allowed(caller: Option<&Authenticated>, token: Option<&str>, pass_token: bool) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    if let Some(caller) = caller {
        // Names are checked text (no control characters); UTF-8 travels as the bytes it is.
        for (name, value) in [
            (REMOTE_USER, caller.username.as_str()),
            (REMOTE_EMAIL, caller.email.as_str()),
            (REMOTE_NAME, caller.display_name.as_str()),
            (REMOTE_ROLE, caller.role.as_str()),
            // Group names hold no commas (`GroupName`): the list splits back exactly.
            (REMOTE_GROUPS, caller.groups_joined.as_str()),
        ] {
            if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
                response.insert_header((HeaderName::from_static(name), value));
            }
        }
        if pass_token && let Some(token) = token {
            response.insert_header((header::AUTHORIZATION, format!("Bearer {token}")));
        }
    } else {
        // Nobody signed in (a public address): the headers say so, empty, so a proxy that
        // copies them always has a value to copy (Caddy would otherwise pass on its placeholder).
        for name in [REMOTE_USER, REMOTE_EMAIL, REMOTE_NAME, REMOTE_ROLE, REMOTE_GROUPS] {
            response.insert_header((HeaderName::from_static(name), HeaderValue::from_static("")));
        }
    }
    response.finish()
}

fn sign_in_first(req: &HttpRequest, gate: &Gate, address: &str, as_401: bool) -> HttpResponse {
    if !is_browser(req) {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"portcullis\""))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(
                serde_json::json!({"error": "unauthorized", "message": "Sign in first: send a valid access token."}),
            );
    }
    let login = format!("{}/login?{}", gate.origin, serde_urlencoded::to_string([("rd", address)]).unwrap_or_default());
    send_to(login, as_401)
}

/// A browser sent to `location`: 302, or under `?answer=401` (nginx) a 401 carrying it.
fn send_to(location: String, as_401: bool) -> HttpResponse {
    let mut response = if as_401 { HttpResponse::Unauthorized() } else { HttpResponse::Found() };
    response.insert_header((header::LOCATION, location)).insert_header((header::CACHE_CONTROL, "no-store")).finish()
}

/// A check that cannot be answered safely: 400 saying why, or under `?answer=401` a 403 (nginx
/// turns a 400 into a 500; a 403 sends the visitor to the page that says why).
fn bad_request(message: String, as_401: bool) -> Result<HttpResponse, PageError> {
    if as_401 { Ok(HttpResponse::Forbidden().finish()) } else { Err(PageError::BadRequest(message)) }
}

fn refused(
    gate: &Gate,
    address: &str,
    caller: Option<&Authenticated>,
    reason: String,
) -> Result<HttpResponse, PageError> {
    let who = caller.map_or_else(String::new, |caller| format!("{} ({})", caller.display_name, caller.username));
    let layout = Layout { home: gate.origin.clone(), ..Layout::default() };
    let page = Refused { layout, address, who: &who, reason, origin: &gate.origin };
    let mut response = render(StatusCode::FORBIDDEN, &page)?;
    // Shown at the other site's address: its stylesheet comes from us, and nothing else runs.
    let csp = format!(
        "default-src 'none'; style-src {0}; img-src {0}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        gate.origin
    );
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&csp).map_err(|error| PageError::Unexpected(error.into()))?,
    );
    Ok(response)
}
