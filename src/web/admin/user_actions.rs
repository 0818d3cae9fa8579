//! The buttons on a user's page: disable, enable, reset password, delete (with confirmation).
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::SecretString;

use super::parse_user_id;
use super::user_new::OneTimePasswordPage;
use crate::accounts::{self, AccountError};
use crate::auth::client::client_ip;
use crate::auth::cookies::CookiePolicy;
use crate::auth::csrf::CsrfKey;
use crate::auth::password::PasswordHasher;
use crate::auth::sessions::Sessions;
use crate::auth::throttle;
use crate::db::audit;
use crate::db::sessions::Ending;
use crate::db::throttles;
use crate::db::users::{self, User};
use crate::db::{self, DbPool, write_transaction};
use crate::domain::NewPassword;
use crate::error::PageError;
use crate::web::extractors::AdminUser;
use crate::web::flash::redirect_with_flash;
use crate::web::form::{CsrfForm, NoFields};
use crate::web::layout::{Layout, render};
use crate::web::sessions::parse_session_id;

/// Ends every action: back to the user's page (or the list) with what happened.
fn outcome(cookies: &CookiePolicy, id: i64, result: Result<String, AccountError>) -> Result<HttpResponse, PageError> {
    let user_page = format!("/admin/users/{id}");
    match result {
        Ok(message) => Ok(redirect_with_flash(cookies, &user_page, &message)),
        Err(AccountError::Refused(message)) => Ok(redirect_with_flash(cookies, &user_page, &message)),
        Err(error) => Err(error.into()),
    }
}

pub async fn disable(
    req: HttpRequest,
    admin: AdminUser,
    id: web::Path<String>,
    _form: CsrfForm<NoFields>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
    sessions: web::Data<Sessions>,
) -> Result<HttpResponse, PageError> {
    set_active(req, admin, id, cookies, pool, sessions, false).await
}

pub async fn enable(
    req: HttpRequest,
    admin: AdminUser,
    id: web::Path<String>,
    _form: CsrfForm<NoFields>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
    sessions: web::Data<Sessions>,
) -> Result<HttpResponse, PageError> {
    set_active(req, admin, id, cookies, pool, sessions, true).await
}

#[allow(clippy::too_many_arguments)]
async fn set_active(
    req: HttpRequest,
    admin: AdminUser,
    id: web::Path<String>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
    sessions: web::Data<Sessions>,
    active: bool,
) -> Result<HttpResponse, PageError> {
    let id = parse_user_id(&id)?;
    let actor = admin.actor(client_ip(&req));
    let result = db::run(&pool, move |conn| accounts::set_active(conn, &actor, id, active)).await;
    sessions.note_revocations(&pool).await;
    let result = result.map(|user| {
        if active {
            format!("{} can sign in again.", user.username)
        } else {
            format!("{} is disabled and signed out everywhere.", user.username)
        }
    });
    outcome(&cookies, id, result)
}

#[allow(clippy::too_many_arguments)]
pub async fn reset_password(
    req: HttpRequest,
    admin: AdminUser,
    id: web::Path<String>,
    _form: CsrfForm<NoFields>,
    csrf: web::Data<CsrfKey>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
    hasher: web::Data<PasswordHasher>,
    sessions: web::Data<Sessions>,
) -> Result<HttpResponse, PageError> {
    let id = parse_user_id(&id)?;
    let password = accounts::generate_one_time_password();
    let parsed = NewPassword::parse(SecretString::from(password.clone()), &[])
        .map_err(|error| PageError::Unexpected(anyhow::anyhow!("a generated password was refused: {error}")))?;
    let hash = hasher.hash(&parsed).await?;
    let actor = admin.actor(client_ip(&req));
    // Resetting your own is refused by `accounts::set_password` (the account page is the way).
    let result =
        db::run(&pool, move |conn| accounts::set_password(conn, &actor, id, &hash, true, "user.password_reset", None))
            .await;
    sessions.note_revocations(&pool).await;
    match result {
        Ok(user) => {
            let page = OneTimePasswordPage {
                layout: Layout::for_user(&admin, &csrf),
                heading: "Password reset",
                user_id: user.id,
                username: &user.username,
                password: &password,
            };
            render(StatusCode::OK, &page)
        }
        Err(error) => outcome(&cookies, id, Err(error)),
    }
}

#[derive(Template)]
#[template(path = "admin/user_delete.html")]
struct DeletePage<'a> {
    layout: Layout,
    user: &'a User,
}

pub async fn confirm_delete(
    admin: AdminUser,
    id: web::Path<String>,
    csrf: web::Data<CsrfKey>,
    pool: web::Data<DbPool>,
) -> Result<HttpResponse, PageError> {
    let id = parse_user_id(&id)?;
    let user = load_user(&pool, id).await?;
    render(StatusCode::OK, &DeletePage { layout: Layout::for_user(&admin, &csrf), user: &user })
}

pub async fn delete(
    req: HttpRequest,
    admin: AdminUser,
    id: web::Path<String>,
    _form: CsrfForm<NoFields>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
    sessions: web::Data<Sessions>,
) -> Result<HttpResponse, PageError> {
    let id = parse_user_id(&id)?;
    let actor = admin.actor(client_ip(&req));
    let result = db::run(&pool, move |conn| accounts::delete(conn, &actor, id)).await;
    sessions.note_revocations(&pool).await;
    match result {
        Ok(user) => Ok(redirect_with_flash(&cookies, "/admin/users", &format!("{} was deleted.", user.username))),
        Err(error) => outcome(&cookies, id, Err(error)),
    }
}

/// Signs out one of the user's sessions.
pub async fn revoke_session(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<(String, String)>,
    _form: CsrfForm<NoFields>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
    sessions: web::Data<Sessions>,
) -> Result<HttpResponse, PageError> {
    let id = parse_user_id(&path.0)?;
    let session = parse_session_id(&path.1)?;
    let user = load_user(&pool, id).await?;
    let target = (user.id, user.username.clone());
    let ending = Ending::One { user_id: id, id: session };
    let ended = sessions.end(&pool, ending, admin.actor(client_ip(&req)), target, "session.revoke").await?;
    let message = if ended == 0 {
        "That session had already ended.".to_owned()
    } else {
        format!("One session of {} was signed out.", user.username)
    };
    Ok(redirect_with_flash(&cookies, &format!("/admin/users/{id}"), &message))
}

/// Signs the user out everywhere (they can sign in again; disable the account to stop that).
pub async fn revoke_all_sessions(
    req: HttpRequest,
    admin: AdminUser,
    id: web::Path<String>,
    _form: CsrfForm<NoFields>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
    sessions: web::Data<Sessions>,
) -> Result<HttpResponse, PageError> {
    let id = parse_user_id(&id)?;
    let user = load_user(&pool, id).await?;
    let target = (user.id, user.username.clone());
    // An admin signing themself out everywhere keeps the session they are using.
    let except_sid = (id == admin.user_id).then(|| admin.session_id.clone());
    let ending = Ending::AllOfUser { user_id: id, except_sid };
    let ended = sessions.end(&pool, ending, admin.actor(client_ip(&req)), target, "session.revoke_all").await?;
    let message = match ended {
        0 => format!("{} had no sessions to sign out.", user.username),
        1 => format!("{} was signed out of 1 session.", user.username),
        n => format!("{} was signed out of {n} sessions.", user.username),
    };
    Ok(redirect_with_flash(&cookies, &format!("/admin/users/{id}"), &message))
}

async fn load_user(pool: &DbPool, id: i64) -> Result<User, PageError> {
    db::run(pool, move |conn| -> anyhow::Result<_> { Ok(users::find_by_id(conn, id)?) })
        .await?
        .ok_or(PageError::NotFound)
}

/// Lets a paused account sign in again at once (the per-address counters stay).
pub async fn clear_throttle(
    req: HttpRequest,
    admin: AdminUser,
    id: web::Path<String>,
    _form: CsrfForm<NoFields>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
    login_throttle: web::Data<throttle::LoginThrottle>,
) -> Result<HttpResponse, PageError> {
    let id = parse_user_id(&id)?;
    let user = load_user(&pool, id).await?;
    let actor = admin.actor(client_ip(&req));
    let target = (user.id, user.username.clone());
    db::run(&pool, move |conn| -> anyhow::Result<()> {
        write_transaction(conn, |conn| -> anyhow::Result<()> {
            if throttles::clear(conn, &throttle::account_key(target.0))? {
                audit::record(conn, &actor, "user.throttle_cleared", Some((target.0, &target.1)), "")?;
            }
            Ok(())
        })
    })
    .await?;
    // This instance forgets the pauses it remembers at once (others within a second).
    login_throttle.forget_remembered_pauses();
    Ok(redirect_with_flash(&cookies, &format!("/admin/users/{id}"), &format!("{} can sign in again.", user.username)))
}
