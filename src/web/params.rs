//! Typed path parameters: a handler takes `UserId` or `SessionId` and never parses an id by
//! hand. A malformed id is a 400 that says so (a page, or JSON under `/api/`).
use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use crate::error::{ApiError, PageError, is_api_path};

/// Search and filter text from an address: a NUL or another control character is no one's
/// search (and PostgreSQL refuses NUL in text), so it is a 400 naming the field.
pub(crate) fn refuse_control_characters<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), PageError> {
    for (name, value) in fields {
        if value.chars().any(char::is_control) {
            return Err(PageError::BadRequest(format!(
                "The “{name}” filter holds a control character (such as NUL): remove it and search again."
            )));
        }
    }
    Ok(())
}

/// `{id}` in `/admin/users/{id}/…` and `/api/users/{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UserId(pub i64);

/// `{session}` in `/account/sessions/{session}/revoke` and `/admin/users/{id}/sessions/{session}/revoke`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionId(pub i64);

/// `{group}` in `/admin/groups/{group}/…` and `/groups/{group}/…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GroupId(pub i64);

impl FromRequest for GroupId {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse(req, "group", "group").map(GroupId))
    }
}

/// `{app}` in `/admin/apps/{app}/…` (the app's number, not its client id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AppId(pub i64);

impl FromRequest for AppId {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse(req, "app", "app").map(AppId))
    }
}

/// `{passkey}` in `/account/security/passkeys/{passkey}/…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PasskeyId(pub i64);

impl FromRequest for PasskeyId {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse(req, "passkey", "passkey").map(PasskeyId))
    }
}

fn parse(req: &HttpRequest, name: &str, what: &str) -> Result<i64, actix_web::Error> {
    let raw = req.match_info().get(name).unwrap_or_default();
    raw.parse().map_err(|_| {
        let shown: String = raw.chars().take(40).collect();
        if is_api_path(req.path()) {
            ApiError::BadRequest(format!("{what} id must be a whole number (got {shown:?})")).into()
        } else {
            PageError::BadRequest(format!("“{shown}” is not a {what} id.")).into()
        }
    })
}

impl FromRequest for UserId {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse(req, "id", "user").map(UserId))
    }
}

impl FromRequest for SessionId {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse(req, "session", "session").map(SessionId))
    }
}

/// The user a page is about, as stored now; 404 when there is none.
pub(crate) async fn load_user(
    pool: &crate::db::DbPool,
    UserId(id): UserId,
) -> Result<crate::db::users::User, crate::error::PageError> {
    crate::db::run(pool, move |conn| -> anyhow::Result<Option<crate::db::users::User>> {
        Ok(crate::db::users::find_by_id(conn, id)?)
    })
    .await?
    .ok_or(crate::error::PageError::NotFound)
}
