//! The admin area, `/admin/**`, behind one admin gate where the route table mounts it.
pub mod audit;
pub mod outbox;
pub mod overview;
pub mod users;
