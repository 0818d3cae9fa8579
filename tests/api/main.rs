//! HTTP-level tests against the real server on port 0, each on a fresh database, on SQLite
//! and (when PORTCULLIS_TEST_POSTGRES_URL is set) on PostgreSQL.
#[macro_use]
mod helpers;
#[macro_use]
mod smtp;

mod accessibility;
mod account;
mod admin_area;
mod admin_users;
mod apache_oidc;
mod api_token;
mod attacks;
mod audit;
mod backchannel;
mod browser;
mod bulk_actions;
mod cli;
mod csrf;
mod device_flow;
mod docs;
mod exports;
mod forward_auth;
mod fresh_proof;
mod gate_addresses;
mod groups;
mod guard;
mod hot_path;
mod http_semantics;
mod https_cookies;
mod instances;
mod layers;
mod login;
mod logout;
mod mail;
mod navigation;
mod oidc;
mod oidc_clients;
mod operations;
mod passkeys;
mod proxies;
mod pushed_requests;
mod registration;
mod second_factor;
mod secret_rotation;
mod sessions;
mod signing_keys;
mod startup;
mod throttling;
mod token_attacks;
mod upgrades;
mod user_search;
mod webdriver;
