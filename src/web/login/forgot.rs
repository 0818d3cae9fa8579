//! `GET /login/forgot` and `POST /login/forgot`: "Forgot your password?". The answer is the
//! same page, at the same speed, whether or not the address has an account: the lookup and
//! the message happen after the answer, away from this connection's worker
//! (`accounts::ResetRequests`), in the outbox's transaction.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::accounts::ResetRequests;
use crate::auth::credentials;
use crate::domain::Email;
use crate::error::PageError;
use crate::web::client::client_ip;
use crate::web::context::Services;
use crate::web::form::StrictForm;
use crate::web::layout::{Layout, render, with_retry_after};
use crate::web::time_words::wait_phrase;

#[derive(Template)]
#[template(path = "login/forgot.html")]
struct ForgotPage<'a> {
    layout: Layout,
    /// Mail is set up here; otherwise the page says whom to ask.
    mail: bool,
    email: &'a str,
    error: Option<&'a str>,
    /// The address was taken in: "check your inbox".
    sent: bool,
}

#[derive(Deserialize)]
pub(crate) struct ForgotForm {
    #[serde(default)]
    email: String,
}

pub(crate) async fn form(app: Services) -> Result<HttpResponse, PageError> {
    let page =
        ForgotPage { layout: Layout::default(), mail: app.outbox.enabled(), email: "", error: None, sent: false };
    render(StatusCode::OK, &page)
}

pub(crate) async fn submit(
    req: HttpRequest,
    form: StrictForm<ForgotForm>,
    app: Services,
    requests: actix_web::web::Data<ResetRequests>,
) -> Result<HttpResponse, PageError> {
    let raw = form.0.email;
    let mail = app.outbox.enabled();
    let again = |status: StatusCode, message: &str| {
        let page = ForgotPage { layout: Layout::default(), mail, email: &raw, error: Some(message), sent: false };
        render(status, &page)
    };
    if !mail {
        return render(
            StatusCode::OK,
            &ForgotPage { layout: Layout::default(), mail, email: "", error: None, sent: false },
        );
    }
    let email = match Email::parse(&raw) {
        Ok(email) => email,
        Err(_) => return again(StatusCode::BAD_REQUEST, "Enter your e-mail address, like name@example.com."),
    };
    // Counted on this client's sign-in budget (every request, known address or not).
    let ip = client_ip(&req);
    let counters = app.throttle.address_counters(&ip);
    if let Err(wait) = credentials::begin(&app.pool, &app.throttle, &counters).await? {
        let message = format!("Too many requests from your network. Wait {} and try again.", wait_phrase(wait));
        return Ok(with_retry_after(again(StatusCode::TOO_MANY_REQUESTS, &message)?, wait));
    }
    requests.submit(email, ip);
    let page = ForgotPage { layout: Layout::default(), mail, email: "", error: None, sent: true };
    render(StatusCode::OK, &page)
}
