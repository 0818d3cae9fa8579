//! `/account`: every user's own profile and password.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use super::flash::{Flash, redirect_with_flash};
use super::layout::{Layout, render, wait_phrase};
use crate::accounts::{self, AccountError, FieldErrors};
use crate::auth::Authenticated;
use crate::auth::client::client_ip;
use crate::auth::cookies::{self, CookiePolicy};
use crate::auth::credentials::{self, PasswordCheck, check_current_password};
use crate::auth::csrf::CsrfKey;
use crate::auth::password::PasswordHasher;
use crate::auth::sessions::Sessions;
use crate::auth::throttle::{self, LoginThrottle, Standing};
use crate::db::audit;
use crate::db::users::{self, ProfileChanges, User};
use crate::db::{self, DbPool};
use crate::domain::{DisplayName, Email, NewPassword};
use crate::error::PageError;
use crate::web::extractors::CurrentUser;
use crate::web::form::CsrfForm;

#[derive(Deserialize, Default)]
pub struct ProfileForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    layout: Layout,
    user: &'a User,
    role: &'static str,
    profile: ProfileForm,
    profile_errors: FieldErrors,
    password_errors: FieldErrors,
    /// Strangers' failed sign-ins to this account, in words, or "".
    guessing: String,
}

/// The signed-in user's row as it is now (the token only carries what the guard needs).
pub async fn load_account(pool: &DbPool, user_id: i64) -> Result<User, PageError> {
    db::run(pool, move |conn| -> anyhow::Result<Option<User>> { Ok(users::find_by_id(conn, user_id)?) })
        .await?
        .ok_or(PageError::NotFound)
}

/// How strangers' sign-in attempts stand against this account, for its owner.
async fn guessing_notice(pool: &DbPool, user_id: i64) -> Result<String, PageError> {
    let standing = db::run(pool, move |conn| -> anyhow::Result<Option<Standing>> {
        Ok(throttle::standing(conn, user_id, users::now())?)
    })
    .await?;
    Ok(match standing {
        Some(Standing { paused_until: Some(until), .. }) => format!(
            "Someone has recently tried to sign in to your account with wrong passwords, so sign-in from \
             browsers and apps you have not used here before is paused until {} UTC. Browsers and apps you \
             have signed in with before are not affected. If this was not you, your password has held; \
             consider changing it to a longer one.",
            until.format("%Y-%m-%d %H:%M")
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

fn account_page<'a>(
    auth: &Authenticated,
    account: &'a User,
    csrf: &CsrfKey,
    profile: Option<ProfileForm>,
) -> AccountPage<'a> {
    AccountPage {
        guessing: String::new(),
        layout: Layout::for_user(auth, csrf),
        user: account,
        role: account.role().as_str(),
        profile: profile.unwrap_or_else(|| ProfileForm {
            display_name: account.display_name.clone(),
            email: account.email.clone(),
        }),
        profile_errors: FieldErrors::default(),
        password_errors: FieldErrors::default(),
    }
}

pub async fn show(
    user: CurrentUser,
    csrf: web::Data<CsrfKey>,
    pool: web::Data<DbPool>,
    flash: Flash,
) -> Result<HttpResponse, PageError> {
    let account = load_account(&pool, user.user_id).await?;
    let mut page = account_page(&user, &account, &csrf, None);
    page.layout = page.layout.with_flash(&flash);
    page.guessing = guessing_notice(&pool, user.user_id).await?;
    Ok(flash.finish(render(StatusCode::OK, &page)?))
}

#[allow(clippy::too_many_arguments)]
pub async fn update_profile(
    req: HttpRequest,
    user: CurrentUser,
    form: CsrfForm<ProfileForm>,
    csrf: web::Data<CsrfKey>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
    sessions: web::Data<Sessions>,
    throttle: web::Data<LoginThrottle>,
) -> Result<HttpResponse, PageError> {
    let form = form.0;
    let account = load_account(&pool, user.user_id).await?;
    let mut errors = FieldErrors::default();
    let display_name = errors.check("display_name", DisplayName::parse(&form.display_name));
    let email = errors.check("email", Email::parse(&form.email));
    let (Some(display_name), Some(email)) = (display_name, email) else {
        let mut page = account_page(&user, &account, &csrf, Some(form));
        page.profile_errors = errors;
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    // A new address can be refused as taken, which tells a signed-in user that someone has
    // it: such probes are counted (and audited) like password guesses.
    let probe = (email.as_str() != account.email).then(|| throttle.email_change_counters(user.user_id));
    if let Some(counters) = &probe
        && let Err(retry_after) = credentials::begin(&pool, &throttle, counters).await?
    {
        errors.add(
            "email",
            format!(
                "You have tried too many addresses that could not be used. Wait {} and try again.",
                wait_phrase(retry_after)
            ),
        );
        let mut page = account_page(&user, &account, &csrf, Some(form));
        page.profile_errors = errors;
        return too_many(render(StatusCode::TOO_MANY_REQUESTS, &page)?, retry_after);
    }
    let actor = user.actor(client_ip(&req));
    let id = user.user_id;
    let saved = db::run(&pool, move |conn| {
        let changes = ProfileChanges { email: Some(&email), display_name: Some(&display_name), ..Default::default() };
        accounts::update_profile(conn, &actor, id, &changes)
    })
    .await;
    if let Some(counters) = probe {
        let refused_address = matches!(saved, Err(AccountError::Field(("email", _))));
        credentials::settle(&pool, &throttle, counters, !refused_address).await?;
        if refused_address {
            let (actor, target, attempted) =
                (user.actor(client_ip(&req)), (user.user_id, user.username.clone()), form.email.clone());
            db::run(&pool, move |conn| -> anyhow::Result<()> {
                let details = format!("new address refused: {}", attempted.chars().take(254).collect::<String>());
                Ok(audit::record(conn, &actor, "user.email_change_refused", Some((target.0, &target.1)), &details)?)
            })
            .await?;
        }
    }
    match saved {
        Ok(_) => {
            let mut response = redirect_with_flash(&cookies, "/account", "Your details were saved.");
            // The page header shows the display name from the token: issue one that has the new name.
            if let Some(access) = sessions.reissue(&pool, &user.session_id).await? {
                let cookie = cookies.session(access.token, sessions.policy().access_token_ttl);
                response.add_cookie(&cookie).map_err(|error| PageError::Unexpected(error.into()))?;
            }
            Ok(response)
        }
        Err(AccountError::Field((field, message))) => {
            errors.add(field, message);
            let mut page = account_page(&user, &account, &csrf, Some(form));
            page.profile_errors = errors;
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(error) => Err(error.into()),
    }
}

/// The checks every new password passes: typed twice alike, long and uncommon enough.
pub fn check_new_password(user: &User, new: &str, confirm: &str, errors: &mut FieldErrors) -> Option<NewPassword> {
    let parsed = errors.check(
        "new_password",
        NewPassword::parse(SecretString::from(new), &[&user.username, &user.email, &user.display_name]),
    );
    if parsed.is_some() && new != confirm {
        errors.add("confirm_password", "The two passwords are not the same");
        return None;
    }
    parsed
}

#[allow(clippy::too_many_arguments)]
pub async fn change_password(
    req: HttpRequest,
    user: CurrentUser,
    form: CsrfForm<PasswordForm>,
    csrf: web::Data<CsrfKey>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
    hasher: web::Data<PasswordHasher>,
    sessions: web::Data<Sessions>,
    throttle: web::Data<LoginThrottle>,
) -> Result<HttpResponse, PageError> {
    let form = form.0;
    let account = load_account(&pool, user.user_id).await?;
    let mut errors = FieldErrors::default();
    let mut throttled = None;
    if form.current_password.is_empty() {
        errors.add("current_password", "Enter your current password");
    } else {
        // The same counters as signing in to this account from this browser: a stolen session
        // cannot guess the password faster than a stranger at the login form.
        let device = cookies::read(&req, cookies.device_name()).map(str::to_owned);
        let current = SecretString::from(form.current_password.clone());
        let actor = user.actor(client_ip(&req));
        match check_current_password(&pool, &hasher, &throttle, &account, current, actor, device.as_deref()).await? {
            PasswordCheck::Right => {}
            PasswordCheck::Wrong => errors.add("current_password", "Your current password is not right"),
            PasswordCheck::Throttled { retry_after } => {
                let message = format!("Too many wrong passwords. Wait {} and try again.", wait_phrase(retry_after));
                errors.add("current_password", message);
                throttled = Some(retry_after);
            }
        }
    }
    let new_password = check_new_password(&account, &form.new_password, &form.confirm_password, &mut errors);
    let replacement = match new_password.filter(|_| errors.is_empty()) {
        Some(new_password) => hasher.hash_replacement(&new_password, account.password_hash.clone()).await?,
        None => None,
    };
    let Some(hash) = replacement.filter(|_| errors.is_empty()) else {
        if errors.is_empty() {
            errors.add("new_password", "Your new password must be different from your current one");
        }
        let mut page = account_page(&user, &account, &csrf, None);
        page.password_errors = errors;
        return match throttled {
            Some(retry_after) => too_many(render(StatusCode::TOO_MANY_REQUESTS, &page)?, retry_after),
            None => render(StatusCode::UNPROCESSABLE_ENTITY, &page),
        };
    };
    let actor = user.actor(client_ip(&req));
    let (id, keep) = (user.user_id, Some(user.session_id.clone()));
    db::run(&pool, move |conn| accounts::set_password(conn, &actor, id, &hash, false, "password.change", keep)).await?;
    sessions.note_revocations(&pool).await;
    tracing::info!(event = "password_changed", username = %user.username, client_ip = %client_ip(&req), "password changed");
    Ok(redirect_with_flash(
        &cookies,
        "/account",
        "Your password was changed. You stay signed in here; your other sessions were signed out.",
    ))
}

/// A 429 page with its `Retry-After`.
fn too_many(mut response: HttpResponse, retry_after: std::time::Duration) -> Result<HttpResponse, PageError> {
    let value = actix_web::http::header::HeaderValue::from(retry_after.as_secs());
    response.headers_mut().insert(actix_web::http::header::RETRY_AFTER, value);
    Ok(response)
}
