//! `/device` (RFC 8628 §3.3): a signed-in person types the code their device shows (or follows
//! `verification_uri_complete`, which fills it in), sees which app asks and what it will learn,
//! and allows or denies it. Typing codes is throttled like passwords (wrong ones pause this
//! person and their address), so the short codes cannot be guessed.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::accounts::FieldErrors;
use crate::db::device_codes::Decision;
use crate::error::PageError;
use crate::oauth::device::{Waiting, normalise_user_code, shown_user_code};
use crate::web::context::Page;
use crate::web::form::CsrfForm;
use crate::web::layout::{Layout, render};

pub(crate) const PATH: &str = "/device";
pub(crate) const CONFIRM_PATH: &str = "/device/confirm";

#[derive(Deserialize, Default)]
pub(crate) struct CodeQuery {
    #[serde(default)]
    user_code: String,
}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    #[serde(default)]
    user_code: String,
}

#[derive(Deserialize)]
pub(crate) struct DecisionForm {
    #[serde(default)]
    user_code: String,
    #[serde(default)]
    decision: String,
}

#[derive(Template)]
#[template(path = "device/enter.html")]
struct EnterPage {
    layout: Layout,
    username: String,
    user_code: String,
    errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "device/confirm.html")]
struct ConfirmPage {
    layout: Layout,
    username: String,
    app: String,
    user_code: String,
    lines: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "device/done.html")]
struct DonePage {
    layout: Layout,
    title: &'static str,
    message: String,
}

fn enter(page: &Page, user_code: String, errors: FieldErrors) -> Result<HttpResponse, PageError> {
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    render(status, &EnterPage { layout: page.layout(), username: page.user.username.clone(), user_code, errors })
}

fn done(page: &Page, title: &'static str, message: String) -> Result<HttpResponse, PageError> {
    render(StatusCode::OK, &DonePage { layout: page.layout(), title, message })
}

/// What a typed code stands for, spending this person's budget on a code that stands for
/// nothing: `Err` with the form's error when it is not a waiting code or they must wait.
async fn look_up(page: &Page, typed: &str) -> Result<Result<Waiting, String>, PageError> {
    let counters = page.throttle.user_code_counters(page.user.user_id, &page.client.ip);
    let (throttle, wanted) = (page.throttle.clone().into_inner(), counters.clone());
    let begun = crate::db::run(&page.pool, move |conn| -> anyhow::Result<_> {
        Ok(throttle.begin(conn, &wanted, crate::db::users::now())?)
    })
    .await?;
    if let Err(wait) = begun {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        return Ok(Err(format!(
            "Too many codes that were not right. Try again in {minutes} minute{}.",
            if minutes == 1 { "" } else { "s" }
        )));
    }
    let waiting = match normalise_user_code(typed) {
        Some(code) => page.provider().waiting_device(&code).await.map_err(oauth_error)?,
        None => None,
    };
    let (throttle, right) = (page.throttle.clone().into_inner(), waiting.is_some());
    crate::db::run(&page.pool, move |conn| -> anyhow::Result<()> {
        let now = crate::db::users::now();
        if right {
            throttle.succeeded(conn, &counters)?
        } else {
            throttle.failed(conn, &counters, now)?
        }
        Ok(())
    })
    .await?;
    Ok(waiting.ok_or_else(|| {
        "That is not a code waiting to be entered. Check it against your device (codes expire after 10 minutes)."
            .to_owned()
    }))
}

fn one_error(message: impl Into<String>) -> FieldErrors {
    let mut errors = FieldErrors::default();
    errors.add("user_code", message);
    errors
}

fn oauth_error(error: crate::oauth::OAuthError) -> PageError {
    PageError::Unexpected(anyhow::anyhow!("{}: {}", error.error, error.description))
}

fn confirm(page: &Page, waiting: &Waiting) -> Result<HttpResponse, PageError> {
    render(
        StatusCode::OK,
        &ConfirmPage {
            layout: page.layout(),
            username: page.user.username.clone(),
            app: waiting.client.name.clone(),
            user_code: shown_user_code(&waiting.user_code),
            lines: waiting.scopes.in_words(),
        },
    )
}

/// `GET /device[?user_code=…]`: the form, or straight to the confirmation for a filled-in code.
pub(crate) async fn form(page: Page, query: web::Query<CodeQuery>) -> Result<HttpResponse, PageError> {
    let typed = query.into_inner().user_code;
    if typed.trim().is_empty() {
        return enter(&page, String::new(), FieldErrors::default());
    }
    match look_up(&page, &typed).await? {
        Ok(waiting) => confirm(&page, &waiting),
        Err(message) => enter(&page, typed, one_error(message)),
    }
}

/// `POST /device`: the typed code.
pub(crate) async fn submit(page: Page, form: CsrfForm<CodeForm>) -> Result<HttpResponse, PageError> {
    let typed = form.0.user_code;
    if typed.trim().is_empty() {
        return enter(&page, typed, one_error("Enter the code your device shows"));
    }
    match look_up(&page, &typed).await? {
        Ok(waiting) => confirm(&page, &waiting),
        Err(message) => enter(&page, typed, one_error(message)),
    }
}

/// `POST /device/confirm`: allowed (the device gets tokens of this session at its next poll) or
/// denied (it hears `access_denied`).
pub(crate) async fn decide(page: Page, form: CsrfForm<DecisionForm>) -> Result<HttpResponse, PageError> {
    let DecisionForm { user_code, decision } = form.0;
    let waiting = match look_up(&page, &user_code).await? {
        Ok(waiting) => waiting,
        Err(message) => return enter(&page, user_code, one_error(message)),
    };
    let mut allowed = decision == "allow";
    let app = waiting.client.name.clone();
    let refused = allowed && !waiting.client.admits(page.user.role, &page.user.groups);
    if refused {
        allowed = false;
    }
    let user = &page.user;
    let decided = page
        .provider()
        .decide_device(
            &waiting.user_code,
            Decision {
                allowed,
                user_id: user.user_id,
                session_sid: &user.session_id,
                auth_time: chrono::DateTime::from_timestamp(user.auth_time, 0)
                    .map_or_else(crate::db::users::now, |at| at.naive_utc()),
                amr: &user.amr.join(" "),
            },
        )
        .await
        .map_err(oauth_error)?;
    if !decided {
        return enter(&page, user_code, one_error("That code was decided already or has expired."));
    }
    if refused {
        return done(
            &page,
            "Not allowed",
            format!("You may not use {app}; your device was told no. Ask your administrator if you need it."),
        );
    }
    if allowed {
        done(&page, "Device signed in", format!("{app} is signed in on your device. You can close this page."))
    } else {
        done(&page, "Device refused", format!("{app} was not allowed; your device was told no."))
    }
}
