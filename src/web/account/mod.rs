//! `/account/**`: every user's own profile, password, sessions, two-step sign-in and connected apps.
pub(crate) mod apps;
pub(crate) mod password;
pub(crate) mod profile;
pub(crate) mod security;
pub(crate) mod sessions;
pub(crate) mod shared;
