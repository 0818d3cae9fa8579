//! Authentication: passwords, tokens, sessions, throttling, keys. It answers with its own
//! outcomes (`AuthFailure`, `LoginOutcome`, …); `web` turns them into pages and JSON.
pub mod app_tokens;
mod authenticated;
pub mod client;
pub mod credentials;
pub mod csrf;
pub mod device;
pub mod keys;
pub mod passkeys;
pub mod password;
pub mod proof;
pub mod revocation;
pub mod second_factor;
pub mod sessions;
pub mod sign_in;
pub mod signing_keys;
pub mod throttle;
pub mod tokens;
pub mod totp;
mod verified_tokens;

pub use sessions::Authenticated;
