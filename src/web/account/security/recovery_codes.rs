//! `POST /account/security/recovery-codes`: a new set of recovery codes (the old set stops
//! working), with the current password. Codes are shown once, with a download as text.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::{PATH, PasswordOnly, confirm_password};
use crate::accounts::AccountError;
use crate::error::PageError;
use crate::web::account::page::load_account;
use crate::web::context::Page;
use crate::web::form::CsrfForm;
use crate::web::layout::{Layout, render};

#[derive(Template)]
#[template(path = "account/recovery_codes.html")]
pub struct RecoveryCodesPage {
    layout: Layout,
    codes: Vec<String>,
    /// The codes as a `data:` link for the download button.
    download_href: String,
    /// Shown right after setting up the app (rather than after making new codes).
    just_enabled: bool,
}

impl RecoveryCodesPage {
    pub fn new(page: &Page, codes: Vec<String>, just_enabled: bool) -> Self {
        let text = format!(
            "Recovery codes for {} at {}\nEach code signs you in once when you cannot use your authenticator app.\n\n{}\n",
            page.user.username,
            page.factors.issuer(),
            codes.join("\n")
        );
        let encoded: String = text
            .bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (byte as char).to_string(),
                other => format!("%{other:02X}"),
            })
            .collect();
        Self {
            layout: page.layout(),
            codes,
            download_href: format!("data:text/plain;charset=utf-8,{encoded}"),
            just_enabled,
        }
    }
}

pub async fn regenerate(req: HttpRequest, page: Page, form: CsrfForm<PasswordOnly>) -> Result<HttpResponse, PageError> {
    let account = load_account(&page).await?;
    if let Some(refusal) = confirm_password(&req, &page, &account, &form.0.current_password, "codes_password").await? {
        return Ok(refusal);
    }
    match page.accounts().regenerate_recovery_codes(page.actor(), account.id).await {
        Ok(codes) => render(StatusCode::OK, &RecoveryCodesPage::new(&page, codes, false)),
        Err(AccountError::Refused(message)) => Ok(page.redirect(PATH, &message)),
        Err(error) => Err(error.into()),
    }
}
