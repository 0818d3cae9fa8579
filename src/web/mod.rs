//! HTTP handlers, one module per page or area; `api/` for JSON.
pub mod account;
pub mod admin;
pub mod api;
pub mod dashboard;
pub mod endpoint;
pub mod errors;
pub mod flash;
pub mod form;
pub mod health;
pub mod home;
pub mod layout;
pub mod limits;
pub mod login;
pub mod logout;
pub mod password_change;
pub mod sessions;
