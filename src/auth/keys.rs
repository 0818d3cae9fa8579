//! Signing keys as the token code uses them ([`LoadedKey`]) and as the JWKS publishes them
//! (RFC 7517, RFC 8037, RFC 7638 thumbprints). `signing_keys` makes, seals and rotates them;
//! `tokens` signs and verifies with them.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::config::JwtAlgorithm;

/// A key as the token code uses it: its private half opened (when it could be).
pub struct LoadedKey {
    pub kid: String,
    pub alg: JwtAlgorithm,
    /// PKCS#8; `None` for the HS256 record, or when it was sealed under a secret we no longer have
    /// (it then only verifies).
    pub private_pkcs8: Option<Vec<u8>>,
    /// Ed25519's 32 bytes, or P-256's uncompressed point.
    pub public: Vec<u8>,
    pub published_at: i64,
    pub signs_from: i64,
    pub retired_at: Option<i64>,
    pub drop_after: Option<i64>,
}

/// The public key as a JWK (RFC 7517/8037), without `kid`, `alg` and `use`; `None` when the
/// bytes are not a key of that kind.
fn public_jwk(alg: JwtAlgorithm, public: &[u8]) -> Option<Value> {
    match alg {
        JwtAlgorithm::EdDsa if public.len() == 32 => {
            Some(json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(public)}))
        }
        JwtAlgorithm::Es256 if public.len() == 65 && public[0] == 4 => Some(json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&public[1..33]), "y": URL_SAFE_NO_PAD.encode(&public[33..]),
        })),
        _ => None,
    }
}

/// The key as the JWKS publishes it: `kid`, `alg`, `use`, and only public parts.
pub fn jwk(key: &LoadedKey) -> Option<Value> {
    let mut jwk = public_jwk(key.alg, &key.public)?;
    jwk["kid"] = json!(key.kid);
    jwk["alg"] = json!(key.alg.name());
    jwk["use"] = json!("sig");
    Some(jwk)
}

/// RFC 7638's thumbprint: the SHA-256 of the required members in lexical order.
pub(super) fn thumbprint(alg: JwtAlgorithm, public: &[u8]) -> anyhow::Result<String> {
    let jwk = public_jwk(alg, public).ok_or_else(|| anyhow::anyhow!("not a public key"))?;
    let canonical = match alg {
        JwtAlgorithm::EdDsa => {
            format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, jwk["x"].as_str().unwrap_or_default())
        }
        _ => format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap_or_default(),
            jwk["y"].as_str().unwrap_or_default()
        ),
    };
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    Ok(URL_SAFE_NO_PAD.encode(digest.as_ref()))
}
