//! What every page's base layout needs: who is signed in, for the navigation.
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use askama::Template;

use crate::auth::Authenticated;
use crate::auth::csrf::CsrfKey;
use crate::error::PageError;
use crate::web::time_words::Clock;

pub(crate) struct Layout {
    pub nav: Option<NavUser>,
    /// A one-shot message from the previous action.
    pub flash: Option<String>,
    /// The page's path, to mark its section in the navigation.
    pub path: String,
    /// The reader's clock: their time zone, named wherever times are shown.
    pub clock: Clock,
    /// Our origin, for a page shown on another site's address (the forward-auth refusal);
    /// empty on our own pages, whose links are relative.
    pub home: String,
}

pub(crate) struct NavUser {
    pub display_name: String,
    pub is_admin: bool,
    /// For the sign-out button, which is a form.
    pub csrf_token: String,
    /// Until a new password is chosen or a required second factor set up, only that page and
    /// signing out work, so the navigation offers nothing else.
    pub limited: bool,
}

impl Default for Layout {
    /// For a visitor who is not signed in: times in UTC.
    fn default() -> Self {
        Self {
            nav: None,
            flash: None,
            path: String::new(),
            clock: Clock::new(crate::domain::TimeZone::UTC),
            home: String::new(),
        }
    }
}

impl Layout {
    pub(crate) fn for_user(auth: &Authenticated, csrf: &CsrfKey) -> Self {
        Self {
            nav: Some(NavUser {
                display_name: auth.display_name.clone(),
                // Until a required second factor is set up, admin pages only lead back to its setup.
                is_admin: auth.is_admin() && !auth.must_enrol,
                csrf_token: csrf.for_session(&auth.session_id),
                limited: auth.must_change_password || auth.must_enrol,
            }),
            flash: None,
            path: String::new(),
            clock: Clock::new(auth.time_zone),
            home: String::new(),
        }
    }

    /// The same layout for the page at `path`.
    pub(crate) fn at(mut self, path: &str) -> Self {
        self.path = path.to_owned();
        self
    }

    /// Whether the navigation's `section` is where this page is (`aria-current`): the overview
    /// `/admin` only itself, every other section its own pages too.
    pub(crate) fn is_current(&self, section: &str) -> bool {
        self.path == section || (section != "/admin" && self.path.starts_with(&format!("{section}/")))
    }

    pub(crate) fn with_flash(mut self, flash: &super::flash::Flash) -> Self {
        self.flash = flash.message();
        self
    }

    /// The CSRF token for forms on this page.
    pub(crate) fn csrf_token(&self) -> &str {
        self.nav.as_ref().map_or("", |nav| nav.csrf_token.as_str())
    }
}

pub(crate) fn render(status: StatusCode, page: &impl Template) -> Result<HttpResponse, PageError> {
    Ok(html_response(status, page.render()?))
}

pub(crate) fn html_response(status: StatusCode, html: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(html)
}

/// A 429 answer: `response` with `Retry-After` in whole seconds.
pub(crate) fn with_retry_after(mut response: HttpResponse, wait: std::time::Duration) -> HttpResponse {
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs()));
    response
}

/// 303 See Other to `location`, for the caller to add cookies to.
pub(crate) fn see_other(location: &str) -> actix_web::HttpResponseBuilder {
    let mut response = actix_web::HttpResponse::SeeOther();
    response.insert_header((actix_web::http::header::LOCATION, location));
    response
}
