//! `/password/change`: after a one-time password or an admin reset, the user must choose
//! their own before anything else (the guard sends them here).
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;
use serde::Deserialize;

use super::context::Page;
use super::form::CsrfForm;
use super::layout::{Layout, render};
use super::params::UserId;
use super::params::load_user;
use crate::accounts::{ChosenPassword, FieldErrors};
use crate::error::PageError;

#[derive(Deserialize)]
pub(crate) struct ChooseForm {
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

#[derive(Template)]
#[template(path = "password_change.html")]
struct ChoosePage {
    layout: Layout,
    errors: FieldErrors,
}

pub(crate) async fn form(page: Page) -> Result<HttpResponse, PageError> {
    if !page.user.must_change_password {
        return Ok(HttpResponse::SeeOther().insert_header(("Location", "/account")).finish());
    }
    render(StatusCode::OK, &ChoosePage { layout: page.layout(), errors: FieldErrors::default() })
}

pub(crate) async fn submit(page: Page, form: CsrfForm<ChooseForm>) -> Result<HttpResponse, PageError> {
    if !page.user.must_change_password {
        return Ok(HttpResponse::SeeOther().insert_header(("Location", "/account")).finish());
    }
    let account = load_user(&page.pool, UserId(page.user.user_id)).await?;
    let chosen = ChosenPassword { new: &form.0.new_password, confirm: &form.0.confirm_password };
    let keep = page.user.session_id.clone();
    if let Err(refused) = page.accounts().choose_after_one_time(page.actor(), &account, chosen, keep).await? {
        return render(StatusCode::UNPROCESSABLE_ENTITY, &ChoosePage { layout: page.layout(), errors: refused.errors });
    }
    let mut response = page.redirect("/dashboard", "Your new password is set. Welcome!");
    // This session's token still says "must change password": replace it.
    if !page.reissue_into(&page.user.session_id, &mut response).await? {
        return Err(PageError::NotFound);
    }
    Ok(response)
}
