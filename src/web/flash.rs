//! One-shot messages shown on the page after a redirect ("User alice disabled.").
use std::future::{Ready, ready};

use actix_web::cookie::Cookie;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::web::cookies::CookiePolicy;
use crate::web::guard::app_data;

const MAX_FLASH_CHARS: usize = 300;

/// The message waiting for this request, if any. Pass the page's response through
/// `finish` so the message is shown once.
pub(crate) struct Flash {
    message: Option<String>,
    removal: Option<Cookie<'static>>,
}

impl Flash {
    pub(crate) fn message(&self) -> Option<String> {
        self.message.clone()
    }

    pub(crate) fn finish(self, mut response: HttpResponse) -> HttpResponse {
        if let Some(removal) = self.removal {
            let _ = response.add_cookie(&removal);
        }
        response
    }
}

impl FromRequest for Flash {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Ok(policy) = app_data::<CookiePolicy>(req) else {
            return ready(Ok(Flash { message: None, removal: None }));
        };
        let flash = match crate::web::cookies::read(req, policy.flash_name()) {
            None => Flash { message: None, removal: None },
            Some(cookie) => Flash {
                message: URL_SAFE_NO_PAD
                    .decode(cookie)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .map(|text| text.chars().take(MAX_FLASH_CHARS).collect()),
                removal: Some(policy.flash_removal()),
            },
        };
        ready(Ok(flash))
    }
}

/// 303 See Other to `location`, with a message for the page there.
pub(crate) fn redirect_with_flash(cookies: &CookiePolicy, location: &str, message: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).cookie(flash_cookie(cookies, message)).finish()
}

/// The cookie that carries `message` to the next page.
pub(crate) fn flash_cookie(cookies: &CookiePolicy, message: &str) -> Cookie<'static> {
    cookies.flash(URL_SAFE_NO_PAD.encode(message))
}
