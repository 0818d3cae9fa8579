//! `POST /account/security/recovery-codes`: a new set of recovery codes (the old set stops
//! working), with the current password. Codes are shown once, with a download as text.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use super::{PATH, PasswordOnly, RecoveryCodesPage, confirm_password};
use crate::accounts::AccountError;
use crate::error::PageError;
use crate::web::account::shared::load_account;
use crate::web::context::Page;
use crate::web::form::CsrfForm;
use crate::web::layout::render;

pub(crate) async fn regenerate(
    req: HttpRequest,
    page: Page,
    form: CsrfForm<PasswordOnly>,
) -> Result<HttpResponse, PageError> {
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
