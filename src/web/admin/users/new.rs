//! `GET /admin/users/new` and `POST /admin/users/new`: add a user with a password the admin
//! types or a one-time password shown once.
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use super::shared::OneTimePasswordPage;
use crate::accounts::{self, AccountError, AccountInput, FieldErrors, ValidAccount};
use crate::error::PageError;
use crate::web::context::Page;
use crate::web::form::CsrfForm;
use crate::web::layout::{Layout, render};

#[derive(Deserialize, Default)]
pub(crate) struct NewUserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    role: String,
    /// "generate" (a one-time password), "set" (typed below) or "invite" (a link by e-mail).
    #[serde(default)]
    password_mode: String,
    #[serde(default)]
    password: String,
    /// A checkbox: present when ticked.
    must_change: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/users/new.html")]
struct NewUserPage<'a> {
    layout: Layout,
    form: &'a NewUserForm,
    generate: bool,
    invite: bool,
    must_change: bool,
    errors: FieldErrors,
    /// Mail is set up: invitations can be sent.
    mail_on: bool,
}

pub(crate) async fn form(page: Page) -> Result<HttpResponse, PageError> {
    let form = NewUserForm { role: "user".into(), password_mode: "generate".into(), ..Default::default() };
    let view = NewUserPage {
        layout: page.layout(),
        form: &form,
        generate: true,
        invite: false,
        must_change: true,
        errors: FieldErrors::default(),
        mail_on: page.outbox.enabled(),
    };
    render(StatusCode::OK, &view)
}

pub(crate) async fn create(page: Page, form: CsrfForm<NewUserForm>) -> Result<HttpResponse, PageError> {
    let form = form.0;
    let invite = form.password_mode == "invite" && page.outbox.enabled();
    let generate = !invite && form.password_mode != "set";
    let must_change = generate || (!invite && form.must_change.is_some());
    let password = if generate || invite { accounts::generate_one_time_password() } else { form.password.clone() };
    let mail_on = page.outbox.enabled();
    let rerender = |errors: FieldErrors| {
        let view = NewUserPage { layout: page.layout(), form: &form, generate, invite, must_change, errors, mail_on };
        render(StatusCode::UNPROCESSABLE_ENTITY, &view)
    };
    if (generate || invite) && !form.password.is_empty() {
        // Never drop what the admin typed without a word.
        let mut errors = FieldErrors::default();
        errors.add(
            "password",
            "You typed a password but chose to generate one. Choose “Set this password” to use it, or clear the field.",
        );
        return rerender(errors);
    }
    let account = match ValidAccount::parse(AccountInput {
        username: &form.username,
        email: &form.email,
        display_name: &form.display_name,
        role: &form.role,
        password: SecretString::from(password.clone()),
    }) {
        Ok(account) => account,
        Err(errors) => return rerender(errors),
    };
    let clashes = page.accounts().clashes(&account).await?;
    if !clashes.is_empty() {
        return rerender(clashes);
    }
    let created = if invite {
        page.accounts().invite(page.actor(), account).await
    } else {
        page.accounts().create(page.actor(), account, must_change).await
    };
    let user = match created {
        Ok(user) => user,
        Err(AccountError::Field((field, message))) => {
            let mut errors = FieldErrors::default();
            errors.add(field, message);
            return rerender(errors);
        }
        Err(AccountError::Refused(message)) => {
            let mut errors = FieldErrors::default();
            errors.add("password", message);
            return rerender(errors);
        }
        Err(error) => return Err(error.into()),
    };
    if invite {
        tracing::info!(event = "user_invited", actor = %page.user.username, username = %user.username, "user invited");
        let message = format!(
            "User {} created, and an invitation is on its way to {}. The link works for 7 days.",
            user.username, user.email
        );
        return Ok(page.redirect(&format!("/admin/users/{}", user.id), &message));
    }
    tracing::info!(event = "user_created", actor = %page.user.username, username = %user.username, "user created");
    if generate {
        let view = OneTimePasswordPage {
            layout: page.layout(),
            heading: "User created",
            user_id: user.id,
            username: &user.username,
            password: &password,
        };
        return render(StatusCode::OK, &view);
    }
    Ok(page.redirect(&format!("/admin/users/{}", user.id), &format!("User {} created.", user.username)))
}
