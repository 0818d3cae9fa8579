//! The OpenID Connect provider (OpenID Connect Core 1.0 and Discovery 1.0, OAuth 2.0: RFC 6749,
//! 7636, 7009, 7662, 8414, 9068, 9207, 9700): the apps (`clients`), what they may ask for
//! (`scopes`) and the flows that turn a Portcullis session into tokens for an app (`flow`).
//! Written on our own sessions, keys and revoked list: an app's tokens end with the session
//! they came from, and the checks of its access tokens need no database.
pub mod backchannel;
pub mod cache;
pub mod clients;
pub mod connections;
pub mod device;
pub mod flow;
pub mod registration;
pub mod scopes;

pub use clients::{Client, ClientForm, ValidClient};
pub use flow::{OAuthError, Provider};
pub use scopes::Scopes;
