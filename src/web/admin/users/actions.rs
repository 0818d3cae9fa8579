//! The buttons on a user's page (`/admin/users/{id}/…`): disable, enable, reset password,
//! delete and reset two-step sign-in (each with confirmation), clear a sign-in pause, sign out
//! one or all sessions.
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use super::shared::OneTimePasswordPage;
use crate::accounts::AccountError;
use crate::db::audit::Action;
use crate::db::sessions::Ending;
use crate::db::users::User;
use crate::error::PageError;
use crate::web::context::Page;
use crate::web::form::{CsrfForm, NoFields};
use crate::web::layout::{Layout, render};
use crate::web::params::load_user;
use crate::web::params::{SessionId, UserId};

fn user_page(UserId(id): UserId) -> String {
    format!("/admin/users/{id}")
}

/// Ends every action: back to the user's page with what happened, or why it was refused.
fn outcome(page: &Page, id: UserId, result: Result<String, AccountError>) -> Result<HttpResponse, PageError> {
    match result {
        Ok(message) | Err(AccountError::Refused(message)) => Ok(page.redirect(&user_page(id), &message)),
        Err(error) => Err(error.into()),
    }
}

pub(crate) async fn disable(page: Page, id: UserId, _form: CsrfForm<NoFields>) -> Result<HttpResponse, PageError> {
    let result = page.accounts().set_active(page.actor(), id.0, false).await;
    outcome(&page, id, result.map(|user| format!("{} is disabled and signed out everywhere.", user.username)))
}

pub(crate) async fn enable(page: Page, id: UserId, _form: CsrfForm<NoFields>) -> Result<HttpResponse, PageError> {
    let result = page.accounts().set_active(page.actor(), id.0, true).await;
    outcome(&page, id, result.map(|user| format!("{} can sign in again.", user.username)))
}

pub(crate) async fn reset_password(
    page: Page,
    id: UserId,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, PageError> {
    // Resetting your own is refused by `accounts` (the account page is the way).
    match page.accounts().reset_to_one_time_password(page.actor(), id.0).await {
        Ok((user, password)) => {
            let view = OneTimePasswordPage {
                layout: page.layout(),
                heading: "Password reset",
                user_id: user.id,
                username: &user.username,
                password: &password,
            };
            render(StatusCode::OK, &view)
        }
        Err(error) => outcome(&page, id, Err(error)),
    }
}

#[derive(Template)]
#[template(path = "admin/users/delete.html")]
struct DeletePage<'a> {
    layout: Layout,
    user: &'a User,
}

/// A page that says what a button will do, with the button: irreversible actions ask first.
#[derive(Template)]
#[template(path = "admin/users/confirm.html")]
struct ConfirmPage {
    layout: Layout,
    user_id: i64,
    heading: String,
    lines: Vec<String>,
    action: String,
    button: String,
}

pub(crate) async fn confirm_reset_password(page: Page, id: UserId) -> Result<HttpResponse, PageError> {
    let user = load_user(&page.pool, id).await?;
    let view = ConfirmPage {
        layout: page.layout(),
        user_id: user.id,
        heading: format!("Reset the password of {}?", user.username),
        lines: vec![
            format!(
                "{} ({}) gets a one-time password, shown to you once on the next page: give it to them \
                 another way. Their current password stops working, and they are signed out everywhere.",
                user.display_name, user.email
            ),
            "At their next sign-in they must choose a password of their own.".to_owned(),
        ],
        action: format!("/admin/users/{}/reset-password", user.id),
        button: format!("Yes, reset the password of {}", user.username),
    };
    render(StatusCode::OK, &view)
}

pub(crate) async fn confirm_revoke_all_sessions(page: Page, id: UserId) -> Result<HttpResponse, PageError> {
    let user = load_user(&page.pool, id).await?;
    let view = ConfirmPage {
        layout: page.layout(),
        user_id: user.id,
        heading: format!("Sign {} out everywhere?", user.username),
        lines: vec![format!(
            "Every session of {} ends: browsers and apps must sign in again. Their password and account stay as they are.",
            user.display_name
        )],
        action: format!("/admin/users/{}/sessions/revoke-all", user.id),
        button: format!("Yes, sign {} out everywhere", user.username),
    };
    render(StatusCode::OK, &view)
}

pub(crate) async fn confirm_delete(page: Page, id: UserId) -> Result<HttpResponse, PageError> {
    let user = load_user(&page.pool, id).await?;
    render(StatusCode::OK, &DeletePage { layout: page.layout(), user: &user })
}

pub(crate) async fn delete(page: Page, id: UserId, _form: CsrfForm<NoFields>) -> Result<HttpResponse, PageError> {
    match page.accounts().delete(page.actor(), id.0).await {
        Ok(user) => Ok(page.redirect("/admin/users", &format!("{} was deleted.", user.username))),
        Err(error) => outcome(&page, id, Err(error)),
    }
}

/// Signs out one of the user's sessions.
pub(crate) async fn revoke_session(
    page: Page,
    id: UserId,
    SessionId(session): SessionId,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, PageError> {
    let user = load_user(&page.pool, id).await?;
    let ending = Ending::One { user_id: user.id, id: session };
    let target = (user.id, user.username.to_string());
    let ended = page.accounts().end_sessions(page.actor(), ending, target, Action::SessionRevoke).await?;
    let message = if ended == 0 {
        "That session had already ended.".to_owned()
    } else {
        format!("One session of {} was signed out.", user.username)
    };
    Ok(page.redirect(&user_page(id), &message))
}

/// Signs the user out everywhere (they can sign in again; disable the account to stop that).
pub(crate) async fn revoke_all_sessions(
    page: Page,
    id: UserId,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, PageError> {
    let user = load_user(&page.pool, id).await?;
    let ended = page.accounts().sign_out_everywhere(page.actor(), &user, Some(&page.user.session_id)).await?;
    let message = match ended {
        0 => format!("{} had no sessions to sign out.", user.username),
        1 => format!("{} was signed out of 1 session.", user.username),
        n => format!("{} was signed out of {n} sessions.", user.username),
    };
    Ok(page.redirect(&user_page(id), &message))
}

/// Ends every session of `user` (the user's page and the bulk action); an admin signing
/// themself out everywhere keeps the session they are using. Returns how many ended.
/// Lets a paused account sign in again at once (the per-address counters stay).
pub(crate) async fn clear_throttle(
    page: Page,
    id: UserId,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, PageError> {
    let (user, _) = page.accounts().clear_throttle(page.actor(), id.0).await?;
    Ok(page.redirect(&user_page(id), &format!("{} can sign in again.", user.username)))
}

#[derive(Template)]
#[template(path = "admin/users/reset_mfa.html")]
struct ResetMfaPage<'a> {
    layout: Layout,
    user: &'a User,
    /// The policy will make them set up a new factor at their next sign-in.
    must_enrol_again: bool,
}

pub(crate) async fn confirm_reset_mfa(page: Page, id: UserId) -> Result<HttpResponse, PageError> {
    let user = load_user(&page.pool, id).await?;
    let must_enrol_again = page.factors.required_for(user.role);
    render(StatusCode::OK, &ResetMfaPage { layout: page.layout(), user: &user, must_enrol_again })
}

pub(crate) async fn reset_mfa(page: Page, id: UserId, _form: CsrfForm<NoFields>) -> Result<HttpResponse, PageError> {
    let result = page.accounts().reset_second_factor(page.actor(), id.0).await;
    outcome(
        &page,
        id,
        result.map(|user| {
            format!("Two-step sign-in of {} was reset and they were signed out everywhere.", user.username)
        }),
    )
}

pub(crate) async fn resend_invitation(
    page: Page,
    id: UserId,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, PageError> {
    let result = page.accounts().resend_invitation(page.actor(), id.0).await;
    outcome(
        &page,
        id,
        result.map(|user| format!("A new invitation is on its way to {}; the old link no longer works.", user.email)),
    )
}

pub(crate) async fn revoke_invitation(
    page: Page,
    id: UserId,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, PageError> {
    let result = page.accounts().revoke_invitation(page.actor(), id.0).await;
    outcome(
        &page,
        id,
        result.map(|user| {
            format!(
                "The invitation of {} no longer works. Delete the account, or send a new invitation.",
                user.username
            )
        }),
    )
}

#[derive(serde::Deserialize)]
pub(crate) struct GroupChange {
    #[serde(default)]
    group: String,
    /// `add` or `remove`.
    #[serde(default)]
    change: String,
}

/// `POST /admin/users/{id}/groups`: adds the user to a group, or removes them from it.
pub(crate) async fn change_groups(
    page: Page,
    id: UserId,
    form: CsrfForm<GroupChange>,
) -> Result<HttpResponse, PageError> {
    let GroupChange { group, change } = form.0;
    let back = user_page(id);
    let Ok(group_id) = group.parse::<i64>() else {
        return Ok(page.redirect(&back, "Choose a group first."));
    };
    let by = crate::accounts::MemberChanger::Admin;
    let result = if change == "remove" {
        page.accounts().remove_members(page.actor(), group_id, vec![id.0], by).await
    } else {
        page.accounts().add_members(page.actor(), group_id, vec![id.0], by).await
    };
    match result {
        Ok(changed) if changed.is_empty() => Ok(page.redirect(&back, "Nothing changed.")),
        Ok(_) if change == "remove" => Ok(page.redirect(&back, "Removed from the group.")),
        Ok(_) => Ok(page.redirect(&back, "Added to the group.")),
        Err(AccountError::NotFound) => Ok(page.redirect(&back, "That group no longer exists.")),
        Err(error) => Err(error.into()),
    }
}
