//! `/account/security/authenticator`: set up an authenticator app (a QR code and the key to
//! type, then a first code), or turn two-step sign-in off.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::RecoveryCodesPage;
use super::{PATH, PasswordOnly, confirm_password};
use crate::accounts::{AccountError, FieldErrors};
use crate::auth::totp::TotpSecret;
use crate::error::PageError;
use crate::web::account::shared::load_account;
use crate::web::context::Page;
use crate::web::form::{CsrfForm, NoFields};
use crate::web::layout::{Layout, render};

#[derive(Template)]
#[template(path = "account/authenticator.html")]
struct AuthenticatorPage<'a> {
    layout: Layout,
    /// The QR code of the `otpauth://` link, as inline SVG we drew.
    qr_svg: String,
    key: String,
    issuer: &'a str,
    account: &'a str,
    errors: FieldErrors,
}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    #[serde(default)]
    code: String,
}

/// `POST`: starts (or restarts) a setup with a new key, then shows it.
pub(crate) async fn start(page: Page, _form: CsrfForm<NoFields>) -> Result<HttpResponse, PageError> {
    if !page.proved_recently() {
        return Ok(page.confirm_first(PATH));
    }
    match page.accounts().start_totp_enrolment(page.user.user_id).await {
        Ok(()) => Ok(HttpResponse::SeeOther()
            .insert_header((actix_web::http::header::LOCATION, format!("{PATH}/authenticator")))
            .finish()),
        Err(AccountError::Refused(message)) => Ok(page.redirect(PATH, &message)),
        Err(error) => Err(error.into()),
    }
}

/// `GET`: the key of the setup in progress, as a QR code and as text.
pub(crate) async fn show(page: Page) -> Result<HttpResponse, PageError> {
    // The key opens the account to whoever holds it: shown only after a recent proof.
    if !page.proved_recently() {
        return Ok(page.confirm_first(PATH));
    }
    let Some(secret) = page.accounts().pending_totp(page.user.user_id).await? else {
        return Ok(page.redirect(PATH, "Choose “Set up an authenticator app” to start."));
    };
    setup_page(&page, &secret, FieldErrors::default(), StatusCode::OK)
}

fn setup_page(
    page: &Page,
    secret: &TotpSecret,
    errors: FieldErrors,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let issuer = page.factors.issuer();
    let url = secret.otpauth_url(issuer, &page.user.username);
    render(
        status,
        &AuthenticatorPage {
            layout: page.layout(),
            qr_svg: qr_svg(&url)?,
            key: secret.grouped(),
            issuer,
            account: &page.user.username,
            errors,
        },
    )
}

/// The QR code as an `<svg>` element (no XML prologue), labelled for screen readers.
fn qr_svg(data: &str) -> Result<String, PageError> {
    let code = qrcode::QrCode::new(data.as_bytes())
        .map_err(|error| PageError::Unexpected(anyhow::anyhow!("QR code: {error}")))?;
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build();
    let start = svg.find("<svg").unwrap_or(0);
    Ok(svg[start..].replacen(
        "<svg",
        "<svg class=\"qr\" role=\"img\" aria-label=\"QR code of your authenticator key\"",
        1,
    ))
}

/// `POST …/confirm`: the first code turns the app on and shows the recovery codes, once.
pub(crate) async fn confirm(page: Page, form: CsrfForm<CodeForm>) -> Result<HttpResponse, PageError> {
    let actor = page.actor();
    let confirmed = page.accounts().confirm_totp(actor, page.user.user_id, &form.0.code, &page.user.session_id).await;
    match confirmed {
        Ok(codes) => {
            tracing::info!(event = "mfa_enabled", username = %page.user.username, client_ip = %page.client.ip, "authenticator app set up");
            let view = RecoveryCodesPage::new(&page, codes, true);
            let mut response = render(StatusCode::OK, &view)?;
            // The token must stop saying "must set up a second factor" at once.
            page.reissue_into(&page.user.session_id, &mut response).await?;
            Ok(response)
        }
        Err(AccountError::Field((field, message))) => {
            let Some(secret) = page.accounts().pending_totp(page.user.user_id).await? else {
                return Ok(page.redirect(PATH, "That setup has ended. Start again."));
            };
            let mut errors = FieldErrors::default();
            errors.add(field, message);
            setup_page(&page, &secret, errors, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(AccountError::Refused(message)) => Ok(page.redirect(PATH, &message)),
        Err(error) => Err(error.into()),
    }
}

/// `POST …/remove`: turns two-step sign-in off, with the current password; refused while the
/// policy requires it.
pub(crate) async fn remove(
    req: HttpRequest,
    page: Page,
    form: CsrfForm<PasswordOnly>,
) -> Result<HttpResponse, PageError> {
    let account = load_account(&page).await?;
    if let Some(refusal) = confirm_password(&req, &page, &account, &form.0.current_password, "remove_password").await? {
        return Ok(refusal);
    }
    match page.accounts().remove_second_factor(page.actor(), &account).await {
        Ok(()) => {
            tracing::info!(event = "mfa_disabled", username = %page.user.username, client_ip = %page.client.ip, "two-step sign-in turned off");
            Ok(page.redirect(PATH, "Two-step sign-in is off. Your password alone now signs you in."))
        }
        Err(AccountError::Refused(message)) => Ok(page.redirect(PATH, &message)),
        Err(error) => Err(error.into()),
    }
}
