//! `/admin/users/**`: the list (and acting on many users from it), adding a user, a user's page
//! and the buttons on it.
pub(crate) mod actions;
pub(crate) mod bulk;
pub(crate) mod detail;
pub(crate) mod list;
pub(crate) mod new;
pub(crate) mod shared;
