//! The account page (`account/page.html`): a summary and the profile form (`profile.rs`);
//! the password has its own page (`password.rs`).
use askama::Template;
use serde::Deserialize;

use crate::accounts::FieldErrors;
use crate::auth::throttle::{self, Standing};
use crate::db::users::{self, User};
use crate::db::{self, DbPool};
use crate::domain::TimeZone;
use crate::error::PageError;
use crate::web::context::Page;
use crate::web::layout::Layout;
use crate::web::params::UserId;
use crate::web::params::load_user;
use crate::web::time_words::Clock;

#[derive(Deserialize, Default)]
pub(crate) struct ProfileForm {
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub time_zone: String,
}

#[derive(Template)]
#[template(path = "account/page.html")]
pub(crate) struct AccountPage<'a> {
    pub layout: Layout,
    pub user: &'a User,
    pub role: &'static str,
    pub profile: ProfileForm,
    pub profile_errors: FieldErrors,
    /// The zones to choose from.
    pub time_zones: Vec<&'static str>,
    /// Strangers' failed sign-ins to this account, in words, or "".
    pub guessing: String,
    /// How a new address takes effect.
    pub email_hint: &'static str,
}

/// The signed-in user's row as it is now (the token only carries what the guard needs).
pub(crate) async fn load_account(page: &Page) -> Result<User, PageError> {
    load_user(&page.pool, UserId(page.user.user_id)).await
}

/// The page with the profile form showing `profile` (or the stored values) and no errors.
pub(crate) fn account_page<'a>(page: &Page, account: &'a User, profile: Option<ProfileForm>) -> AccountPage<'a> {
    AccountPage {
        guessing: String::new(),
        layout: page.layout(),
        user: account,
        role: account.role.as_str(),
        profile: profile.unwrap_or_else(|| ProfileForm {
            display_name: account.display_name.clone(),
            email: account.email.to_string(),
            time_zone: account.time_zone.name().to_owned(),
        }),
        profile_errors: FieldErrors::default(),
        time_zones: TimeZone::choices().collect(),
        email_hint: if page.accounts().mail_enabled() {
            "A new address takes effect when you follow the link we send to it."
        } else {
            ""
        },
    }
}

/// How strangers' sign-in attempts stand against this account, for its owner.
pub(crate) async fn guessing_notice(pool: &DbPool, user_id: i64, clock: &Clock) -> Result<String, PageError> {
    let standing = db::run(pool, move |conn| -> anyhow::Result<Option<Standing>> {
        Ok(throttle::standing(conn, user_id, users::now())?)
    })
    .await?;
    Ok(match standing {
        Some(Standing { paused_until: Some(until), .. }) => format!(
            "Someone has recently tried to sign in to your account with wrong passwords, so sign-in from \
             browsers and apps you have not used here before is paused until {}. Browsers and apps you \
             have signed in with before are not affected. If this was not you, your password has held; \
             consider changing it to a longer one.",
            clock.exact(until)
        ),
        Some(Standing { recent_failures: failures @ 1.., .. }) => format!(
            "There {} {failures} failed sign-in attempt{} to your account recently from browsers or apps you \
             have not used here before.",
            if failures == 1 { "was" } else { "were" },
            if failures == 1 { "" } else { "s" },
        ),
        _ => String::new(),
    })
}
