pub mod accounts;
pub mod auth;
pub mod background;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod error;
pub mod export;
pub mod mail;
pub mod memory;
pub mod metrics;
pub mod oauth;
pub mod random;
pub mod startup;
pub mod telemetry;
pub mod user_import;
/// Handlers, guards and extractors: private to the crate (tests reach pages through HTTP,
/// and the route table through `startup`).
mod web;
