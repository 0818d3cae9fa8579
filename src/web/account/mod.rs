//! `/account/**`: every user's own profile, password, sessions and two-step sign-in.
pub mod page;
pub mod password;
pub mod profile;
pub mod security;
pub mod sessions;
