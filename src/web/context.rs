//! `Page`: what every signed-in page handler needs, taken from the request once — who is
//! calling, the pool, sessions, cookie policy, CSRF key, throttle, password hasher and the
//! client's address.
use std::future::{Ready, ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};

use super::extractors::CurrentUser;
use super::flash::redirect_with_flash;
use super::guard::app_data;
use super::layout::Layout;
use super::time_words::Clock;
use crate::accounts::Accounts;
use crate::auth::client::ClientInfo;
use crate::auth::csrf::CsrfKey;
use crate::auth::passkeys::Passkeys;
use crate::auth::password::PasswordHasher;
use crate::auth::second_factor::SecondFactors;
use crate::auth::sessions::Sessions;
use crate::auth::throttle::LoginThrottle;
use crate::db::DbPool;
use crate::db::audit::Actor;
use crate::domain::{ReturnTo, SiteHosts};
use crate::error::{ApiError, PageError, is_api_path};
use crate::mail::Outbox;
use crate::web::cookies::CookiePolicy;

/// The site's CSP, as every response gets it (`startup::content_security_policy`).
pub(crate) struct ContentSecurityPolicy(pub String);

/// Where a sign-in lands when it was not sent from somewhere.
const DEFAULT_LANDING: &str = "/dashboard";

/// The application's shared parts, for any handler (public pages and the API too).
/// "Confirm it is you" (`account/security/confirm.rs`): where `Page::confirm_first` sends a
/// user whose last proof is too old.
pub(crate) const CONFIRM_PATH: &str = "/account/security/confirm";

pub(crate) struct Services {
    pub pool: web::Data<DbPool>,
    pub sessions: web::Data<Sessions>,
    pub cookies: web::Data<CookiePolicy>,
    pub csrf: web::Data<CsrfKey>,
    pub throttle: web::Data<LoginThrottle>,
    pub hasher: web::Data<PasswordHasher>,
    pub factors: web::Data<SecondFactors>,
    pub passkeys: web::Data<Passkeys>,
    pub outbox: web::Data<Outbox>,
    /// The sites a sign-in may return to.
    pub sites: web::Data<SiteHosts>,
    /// The apps as the token endpoint last read them.
    pub apps: web::Data<crate::oauth::cache::ClientCache>,
    /// The CSP every response gets (a sign-in form leading to an app widens its `form-action`).
    pub csp: Option<web::Data<ContentSecurityPolicy>>,
    /// Whether apps may register themselves.
    pub registration: web::Data<crate::config::DynamicRegistration>,
}

impl Services {
    /// Where to go after signing in: `raw` if it is one of our paths or sites, else the dashboard.
    pub(crate) fn landing(&self, raw: &str) -> String {
        ReturnTo::parse(raw, &self.sites).map_or_else(|| DEFAULT_LANDING.to_owned(), |to| to.as_str().to_owned())
    }

    /// The cookies of a signed-in browser holding `access` (see [`CookiePolicy::session`]).
    pub(crate) fn session_cookies(
        &self,
        access: &crate::auth::tokens::IssuedToken,
    ) -> anyhow::Result<Vec<actix_web::cookie::Cookie<'static>>> {
        self.cookies.session(self.sessions.keys(), access, self.sessions.policy().access_token_ttl)
    }

    /// After a change the token carries (a name, a time zone, a second factor now set up):
    /// a new token for session `session_id`, set on `response`. False when the session is gone.
    pub(crate) async fn reissue_into(&self, session_id: &str, response: &mut HttpResponse) -> Result<bool, PageError> {
        let Some(access) = self.sessions.reissue(&self.pool, session_id).await? else { return Ok(false) };
        for cookie in self.session_cookies(&access)? {
            response.add_cookie(&cookie).map_err(|error| PageError::Unexpected(error.into()))?;
        }
        Ok(true)
    }

    /// The OpenID Connect provider, for this request.
    pub(crate) fn provider(&self) -> crate::oauth::Provider<'_> {
        crate::oauth::Provider {
            pool: &self.pool,
            sessions: &self.sessions,
            throttle: self.throttle.clone().into_inner(),
            cache: &self.apps,
        }
    }

    /// Every change to a user or a session goes through here.
    pub(crate) fn accounts(&self) -> Accounts<'_> {
        Accounts::new(&self.pool, &self.sessions, &self.throttle, &self.hasher, &self.factors, &self.outbox)
    }

    /// What `auth::sign_in::finish` needs.
    pub(crate) fn sign_in(&self) -> crate::auth::sign_in::SignInServices<'_> {
        crate::auth::sign_in::SignInServices { pool: &self.pool, sessions: &self.sessions, throttle: &self.throttle }
    }

    fn of(req: &HttpRequest) -> anyhow::Result<Self> {
        Ok(Services {
            pool: app_data(req)?,
            sessions: app_data(req)?,
            cookies: app_data(req)?,
            csrf: app_data(req)?,
            throttle: app_data(req)?,
            hasher: app_data(req)?,
            factors: app_data(req)?,
            passkeys: app_data(req)?,
            outbox: app_data(req)?,
            sites: app_data(req)?,
            apps: app_data(req)?,
            csp: req.app_data::<web::Data<ContentSecurityPolicy>>().cloned(),
            registration: app_data(req)?,
        })
    }
}

impl FromRequest for Services {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Services::of(req).map_err(|error| {
            if is_api_path(req.path()) {
                ApiError::Unexpected(error).into()
            } else {
                PageError::Unexpected(error).into()
            }
        }))
    }
}

/// A signed-in page's request: who is calling, from where, and the application's parts.
pub(crate) struct Page {
    pub user: CurrentUser,
    pub client: ClientInfo,
    app: Services,
    /// The request's path (the navigation marks its section).
    path: String,
}

impl Deref for Page {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.app
    }
}

impl Page {
    /// The signed-in user acting from this client, for the audit trail.
    pub(crate) fn actor(&self) -> Actor {
        self.user.actor(self.client.ip.clone())
    }

    /// Times as this user reads them.
    pub(crate) fn clock(&self) -> Clock {
        Clock::new(self.user.time_zone)
    }

    pub(crate) fn layout(&self) -> Layout {
        Layout::for_user(&self.user, &self.csrf).at(&self.path)
    }

    /// Whether this session proved who it is recently enough for a change that controls
    /// sign-in (`PORTCULLIS_FRESH_PROOF`).
    pub(crate) fn proved_recently(&self) -> bool {
        self.sessions.proved_recently(&self.user)
    }

    /// 303 to "Confirm it's you" (`CONFIRM_PATH`), which returns to `back` (one of our paths).
    pub(crate) fn confirm_first(&self, back: &str) -> HttpResponse {
        let query = serde_urlencoded::to_string([("next", back)]).unwrap_or_default();
        self.redirect(
            &format!("{}?{query}", CONFIRM_PATH),
            "For your safety, confirm it is you before changing how you sign in.",
        )
    }

    /// 303 to `location` with a message shown there once.
    pub(crate) fn redirect(&self, location: &str, message: &str) -> HttpResponse {
        redirect_with_flash(&self.cookies, location, message)
    }
}

impl FromRequest for Page {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = match CurrentUser::from_request(req, payload).into_inner() {
            Ok(user) => user,
            Err(error) => return ready(Err(error)),
        };
        let page = Services::of(req).map(|app| Page {
            user,
            client: crate::web::client::client_info(req),
            app,
            path: req.path().to_owned(),
        });
        ready(page.map_err(|error| PageError::Unexpected(error).into()))
    }
}
