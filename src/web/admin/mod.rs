//! The admin area, `/admin/**`, behind one admin gate where the route table mounts it.
pub(crate) mod apps;
pub(crate) mod audit;
pub(crate) mod groups;
pub(crate) mod outbox;
pub(crate) mod overview;
pub(crate) mod users;
