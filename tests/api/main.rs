//! HTTP-level tests against the real server on port 0, each on a fresh database, on SQLite
//! and (when PORTCULLIS_TEST_POSTGRES_URL is set) on PostgreSQL.
#[macro_use]
mod helpers;

mod admin_area;
mod api_token;
mod cli;
mod csrf;
mod guard;
mod login;
mod logout;
mod operations;
mod token_attacks;
