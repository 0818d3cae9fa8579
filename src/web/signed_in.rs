//! The browser's half of finishing a sign-in, for every front door (the sign-in form, the
//! second step, passkeys, an accepted invitation): the session started through
//! `auth::sign_in::finish`, then its cookies (access, refresh, the gate's, the device
//! credential; the login form's nonce removed) on a redirect or a JSON answer. The token API
//! answers tokens in its body instead (`api/token.rs`).
use actix_web::cookie::Cookie;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};

use super::context::Services;
use super::layout::see_other;
use crate::auth::sign_in::{self, Arrival, Channel, Proven, SignedIn};
use crate::web::cookies;

/// Starts the session of `proven`, who came through a browser (`req` holds its device cookie).
pub(crate) async fn start(app: &Services, req: &HttpRequest, proven: Proven) -> anyhow::Result<SignedIn> {
    let presented = cookies::read(req, app.cookies.device_name()).unwrap_or_default();
    let client = crate::web::client::client_info(req);
    let arrival = Arrival { channel: Channel::Browser, client: &client, presented_device: presented };
    sign_in::finish(app.sign_in(), proven, arrival).await
}

/// The redirect to `location` with the session's cookies.
pub(crate) fn redirect(app: &Services, signed: SignedIn, location: &str) -> anyhow::Result<HttpResponseBuilder> {
    let mut response = see_other(location);
    for cookie in session_cookies(app, signed)? {
        response.cookie(cookie);
    }
    Ok(response)
}

/// A 200 answer for a script (the passkey pages) with the session's cookies.
pub(crate) fn answer(app: &Services, signed: SignedIn) -> anyhow::Result<HttpResponseBuilder> {
    let mut response = HttpResponse::Ok();
    for cookie in session_cookies(app, signed)? {
        response.cookie(cookie);
    }
    Ok(response)
}

fn session_cookies(app: &Services, signed: SignedIn) -> anyhow::Result<Vec<Cookie<'static>>> {
    let SignedIn { tokens, device_credentials } = signed;
    let policy = &app.cookies;
    let mut set = app.session_cookies(&tokens.access)?;
    set.extend([policy.login_csrf_removal(), policy.device(device_credentials)]);
    if let Some(refresh) = tokens.refresh {
        set.push(policy.refresh(refresh, tokens.refresh_expires_in));
    }
    Ok(set)
}
