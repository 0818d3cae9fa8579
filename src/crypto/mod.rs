//! Keys derived from the signing secret: HMAC keys per purpose (`keys`) and AES-256-GCM
//! sealing of what must be read back (`sealed`). A leaf: it knows only the configuration.
pub mod keys;
pub mod sealed;
