//! How handlers learn who is calling: from what the guard stored, never by checking again.
use std::future::{Ready, ready};
use std::ops::Deref;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};

use super::guard::{Authenticated, Visitor};
use crate::error::{ApiError, PageError, is_api_path};

/// The signed-in caller of a route behind a guard.
pub(crate) struct CurrentUser(Arc<Authenticated>);

impl Deref for CurrentUser {
    type Target = Authenticated;
    fn deref(&self) -> &Authenticated {
        &self.0
    }
}

impl CurrentUser {
    /// The caller, to hand on where an `Arc` is kept.
    pub(crate) fn shared(&self) -> Arc<Authenticated> {
        Arc::clone(&self.0)
    }
}

impl FromRequest for CurrentUser {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = req.extensions().get::<Arc<Authenticated>>().cloned();
        ready(found.map(CurrentUser).ok_or_else(|| {
            // A route wired without its guard is a bug; fail closed and loudly.
            let error = anyhow::anyhow!("route {} has no authentication guard", req.path());
            if is_api_path(req.path()) {
                ApiError::Unexpected(error).into()
            } else {
                PageError::Unexpected(error).into()
            }
        }))
    }
}

/// For public pages that adapt to a signed-in visitor (`/`, `/login`), behind
/// `identify_page_visitor`: `None` means anonymous.
pub(crate) struct MaybeUser(pub Option<Arc<Authenticated>>);

impl FromRequest for MaybeUser {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let visitor = req.extensions().get::<Visitor>().cloned();
        ready(visitor.map(|Visitor(user)| MaybeUser(user)).ok_or_else(|| {
            PageError::Unexpected(anyhow::anyhow!("route {} has no visitor middleware", req.path())).into()
        }))
    }
}
