//! The pages of mailed links: choosing a password through a reset link or an invitation, and
//! the page that says why a link does not work.
use crate::db::users::User;
use crate::error::PageError;

/// The query of a mailed link's page: `?token=…` (anything else, or nothing, is a link that
/// does not work — never an error).
#[derive(serde::Deserialize)]
pub(crate) struct LinkQuery {
    #[serde(default)]
    pub token: String,
}

/// Choosing a password through a mailed link (a reset or an invitation).
#[derive(askama::Template)]
#[template(path = "choose_password.html")]
struct ChoosePasswordPage<'a> {
    layout: super::layout::Layout,
    words: &'a PasswordLink,
    token: &'a str,
    /// For password managers (a hidden field), so they save the new password under it.
    username: &'a str,
    errors: crate::accounts::FieldErrors,
}

/// The form of a page where a mailed link lets someone choose a password.
#[derive(serde::Deserialize)]
pub(crate) struct ChooseForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
    /// The hidden username field password managers want; ignored.
    #[serde(default, rename = "username")]
    _username: String,
}

/// A page where a mailed link lets someone choose a password: its purpose and its words.
pub(crate) struct PasswordLink {
    pub purpose: crate::mail::links::Purpose,
    pub heading: &'static str,
    pub intro: &'static str,
    pub button: &'static str,
}

impl PasswordLink {
    fn page(
        &self,
        status: actix_web::http::StatusCode,
        token: &str,
        username: &str,
        errors: crate::accounts::FieldErrors,
    ) -> Result<actix_web::HttpResponse, PageError> {
        let page =
            ChoosePasswordPage { layout: super::layout::Layout::default(), words: self, token, username, errors };
        super::layout::render(status, &page)
    }

    /// `GET …?token=`: the form while the link works, else why it does not (showing the page
    /// spends nothing: mail scanners open links).
    pub(crate) async fn show(
        &self,
        token: String,
        accounts: crate::accounts::Accounts<'_>,
    ) -> Result<actix_web::HttpResponse, PageError> {
        match accounts.link_owner(token.clone(), self.purpose).await {
            Ok(user) => self.page(actix_web::http::StatusCode::OK, &token, user.username.as_str(), Default::default()),
            Err(error) => self.refusal(error),
        }
    }

    /// `POST`: the password chosen through the link (the usual rules; the link is spent);
    /// `Err` holds the page to answer instead (the form again with its errors, or a dead
    /// link's page).
    pub(crate) async fn choose(
        &self,
        form: ChooseForm,
        accounts: crate::accounts::Accounts<'_>,
        client_ip: String,
    ) -> Result<Result<User, actix_web::HttpResponse>, PageError> {
        let chosen = crate::accounts::ChosenPassword { new: &form.new_password, confirm: &form.confirm_password };
        match accounts.set_password_with_link(self.purpose, form.token.clone(), chosen, client_ip).await {
            Ok(Ok(user)) => Ok(Ok(user)),
            Ok(Err(refused)) => {
                let status = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
                self.page(status, &form.token, refused.username.as_str(), refused.errors).map(Err)
            }
            Err(error) => self.refusal(error).map(Err),
        }
    }

    /// A dead link's page, or the error as it is.
    pub(crate) fn refusal(&self, error: crate::accounts::AccountError) -> Result<actix_web::HttpResponse, PageError> {
        match error {
            crate::accounts::AccountError::Link(state) => link_gone(self.purpose, &state),
            error => Err(error.into()),
        }
    }
}

#[derive(askama::Template)]
#[template(path = "link_gone.html")]
struct LinkGonePage {
    layout: super::layout::Layout,
    problem: &'static str,
    next_step: &'static str,
    action: Option<(&'static str, &'static str)>,
}

/// 410 with a page that says why a mailed link does not work and what to do instead.
pub(crate) fn link_gone(
    purpose: crate::mail::links::Purpose,
    state: &crate::mail::links::LinkState,
) -> Result<actix_web::HttpResponse, PageError> {
    use crate::mail::links::Purpose;
    let (next_step, action) = match purpose {
        Purpose::PasswordReset => {
            ("You can ask for a new link: it works for 30 minutes.", Some(("/login/forgot", "Ask for a new link")))
        }
        Purpose::Invitation => ("Ask the administrator who invited you to send a new invitation.", None),
        Purpose::EmailChange => (
            "Your address has not changed. To change it, enter the new address on your account page again.",
            Some(("/account", "Go to your account")),
        ),
    };
    let page = LinkGonePage { layout: super::layout::Layout::default(), problem: state.problem(), next_step, action };
    super::layout::render(actix_web::http::StatusCode::GONE, &page)
}
