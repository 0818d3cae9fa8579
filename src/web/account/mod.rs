//! `/account/**`: every user's own profile, password, sessions and two-step sign-in.
pub(crate) mod password;
pub(crate) mod profile;
pub(crate) mod security;
pub(crate) mod sessions;
pub(crate) mod shared;
