//! `GET /account` and `POST /account`: the user's own details.
use actix_web::HttpResponse;
use actix_web::http::StatusCode;

use super::shared::{ProfileForm, account_page, guessing_notice, load_account};
use crate::accounts::{AccountError, FieldErrors};
use crate::domain::{DisplayName, Email, TimeZone};
use crate::error::PageError;
use crate::web::context::Page;
use crate::web::flash::Flash;
use crate::web::form::CsrfForm;
use crate::web::layout::{render, with_retry_after};
use crate::web::time_words::wait_phrase;

pub(crate) async fn show(page: Page, flash: Flash) -> Result<HttpResponse, PageError> {
    let account = load_account(&page).await?;
    let mut view = account_page(&page, &account, None);
    view.layout = view.layout.with_flash(&flash);
    view.guessing = guessing_notice(&page.pool, page.user.user_id, &page.clock()).await?;
    Ok(flash.finish(render(StatusCode::OK, &view)?))
}

pub(crate) async fn update(page: Page, form: CsrfForm<ProfileForm>) -> Result<HttpResponse, PageError> {
    let form = form.0;
    let account = load_account(&page).await?;
    let mut errors = FieldErrors::default();
    let display_name = errors.check("display_name", DisplayName::parse(&form.display_name));
    let email = errors.check("email", Email::parse(&form.email));
    // A form from before the zone was on it keeps the stored one.
    let time_zone = match form.time_zone.trim() {
        "" => Some(account.time_zone),
        chosen => errors.check("time_zone", TimeZone::parse(chosen)),
    };
    let (Some(display_name), Some(email), Some(time_zone)) = (display_name, email, time_zone) else {
        let mut view = account_page(&page, &account, Some(form));
        view.profile_errors = errors;
        return render(StatusCode::UNPROCESSABLE_ENTITY, &view);
    };
    // A new address would let "forgot password" hand the account to whoever chose it.
    if email != account.email && !page.proved_recently() {
        return Ok(page.confirm_first("/account"));
    }
    match page.accounts().update_own_profile(page.actor(), &account, display_name, email, time_zone).await {
        Ok(saved) => {
            let message = match saved.confirmation_sent_to {
                Some(address) => format!(
                    "Your details were saved. We sent a link to {address}: your e-mail address changes when you follow \
                     it (within 24 hours)."
                ),
                None => "Your details were saved.".to_owned(),
            };
            let mut response = page.redirect("/account", &message);
            // The page header shows the display name, and times are shown in the zone, that the token
            // carries: issue one with the new values.
            page.reissue_into(&page.user.session_id, &mut response).await?;
            Ok(response)
        }
        Err(AccountError::Throttled(retry_after)) => {
            let message = format!(
                "You have tried too many addresses that could not be used. Wait {} and try again.",
                wait_phrase(retry_after)
            );
            errors.add("email", message);
            let mut view = account_page(&page, &account, Some(form));
            view.profile_errors = errors;
            Ok(with_retry_after(render(StatusCode::TOO_MANY_REQUESTS, &view)?, retry_after))
        }
        Err(AccountError::Field((field, message))) => {
            errors.add(field, message);
            let mut view = account_page(&page, &account, Some(form));
            view.profile_errors = errors;
            render(StatusCode::UNPROCESSABLE_ENTITY, &view)
        }
        Err(error) => Err(error.into()),
    }
}
