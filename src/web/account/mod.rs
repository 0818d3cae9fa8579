//! `/account/**`: every user's own profile, password and sessions.
pub mod page;
pub mod password;
pub mod profile;
pub mod sessions;
