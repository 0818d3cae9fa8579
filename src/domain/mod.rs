//! Values parsed once at the edge. Each type's constructor is the only way in, so holding one
//! is proof the input was checked ("parse, don't validate").

/// For a parsed value that is text underneath: read as `&str`, shown (and padded) like it, and
/// rebuilt from what the database stored, which only ever stores parsed values.
macro_rules! text_value {
    ($type:ident) => {
        impl $type {
            pub(crate) fn from_stored(stored: String) -> Self {
                Self(stored)
            }
        }

        impl std::ops::Deref for $type {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(&self.0)
            }
        }
    };
}

pub mod access_rules;
mod display_name;
pub mod email;
mod group_name;
mod next_path;
mod password;
mod redirect_uri;
mod return_to;
mod role;
pub mod search;
pub mod site_address;
mod time_zone;
mod username;

pub use access_rules::{Access, AccessRules};
pub use display_name::DisplayName;
pub use email::Email;
pub use group_name::GroupName;
pub use next_path::SafeNextPath;
pub use password::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, NewPassword};
pub use redirect_uri::{RedirectUri, https_or_loopback_url};
pub use return_to::{ReturnTo, SiteHosts};
pub use role::{Role, app_admits};
pub use site_address::{AddressError, SiteHost, SitePath};
pub use time_zone::TimeZone;
pub use username::Username;

/// Why a value was refused, in words meant for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

impl ValidationError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
