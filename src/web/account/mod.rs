//! `/account/**`: every user's own profile, password, sessions and two-step sign-in.
pub mod password;
pub mod profile;
pub mod security;
pub mod sessions;
pub mod shared;
