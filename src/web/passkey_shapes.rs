//! The JSON both passkey ceremonies share (signing in, and adding one on the Security page).
use serde::{Deserialize, Serialize};

use super::json::CarriesCsrfToken;

/// The page's CSRF token (the login form's, or the session's on the Security page).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OptionsRequest {
    #[serde(default)]
    #[schema(max_length = 256, pattern = "^[^\\x00]*$")]
    pub csrf_token: String,
}

impl CarriesCsrfToken for OptionsRequest {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

/// Options for `navigator.credentials.get` / `create`, and the ceremony's token to send back.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct OptionsResponse {
    pub token: String,
    /// WebAuthn `PublicKeyCredentialCreationOptions` or `…RequestOptions` under `publicKey`,
    /// binary fields as base64url.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

/// No client extension results are needed.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoExtensions {}
