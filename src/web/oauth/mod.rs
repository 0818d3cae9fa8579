//! The OpenID Connect provider's addresses: `/oauth2/authorize` (with the consent page),
//! `/oauth2/token`, `/oauth2/revoke`, `/oauth2/introspect`, `/oauth2/userinfo`, `/oauth2/logout`; discovery is
//! in `well_known.rs`. The flows themselves live in `crate::oauth`.
pub(crate) mod authorize;
pub(crate) mod endpoints;
pub(crate) mod logout;
pub(crate) mod shared;
