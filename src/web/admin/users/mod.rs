//! `/admin/users/**`: the list (and acting on many users from it), adding a user, a user's page
//! and the buttons on it.
pub mod actions;
pub mod bulk;
pub mod detail;
pub mod list;
pub mod new;
pub mod shared;
