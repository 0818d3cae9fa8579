//! Authentication: who is calling, and may they. The guard and extractors are the only way
//! handlers learn who the caller is.
pub mod client;
pub mod cookies;
pub mod credentials;
pub mod csrf;
pub mod device;
mod extractors;
pub mod guard;
pub mod keys;
pub mod password;
pub mod revocation;
pub mod sessions;
pub mod throttle;
pub mod tokens;
mod verified_tokens;

pub use extractors::{AdminUser, CurrentUser, MaybeUser};
pub use guard::Authenticated;
