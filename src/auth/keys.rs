//! Signing keys as the token code uses them ([`LoadedKey`]) and as the JWKS publishes them
//! (RFC 7517, RFC 8037, RFC 7638 thumbprints). `signing_keys` makes, seals and rotates them;
//! `tokens` signs and verifies with them.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::config::JwtAlgorithm;

/// What a key signs. Keys of one purpose never sign tokens of the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// Portcullis's own access tokens (the configured `PORTCULLIS_JWT_ALG`), and the apps'.
    Access,
    /// ID tokens for the apps that sign in through OpenID Connect: one key per algorithm an
    /// app may ask for.
    Id,
}

impl KeyPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Id => "id",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "access" => Some(Self::Access),
            "id" => Some(Self::Id),
            _ => None,
        }
    }
}

/// The few DER shapes our RSA keys come in, read without a general ASN.1 parser: the
/// elements of one SEQUENCE as (tag, contents).
fn der_sequence(input: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (length, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let length = rest[..count].iter().fold(0usize, |length, byte| (length << 8) | usize::from(*byte));
            (length, &rest[count..])
        };
        (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
    }
    let (tag, mut contents, _) = element(input)?;
    if tag != 0x30 {
        return None;
    }
    let mut elements = Vec::new();
    while !contents.is_empty() {
        let (tag, value, rest) = element(contents)?;
        elements.push((tag, value));
        contents = rest;
    }
    Some(elements)
}

/// An unsigned DER INTEGER's bytes without the leading zero that keeps it positive.
fn unsigned(integer: &[u8]) -> &[u8] {
    match integer {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => integer,
    }
}

/// RSA's modulus and exponent from an `RSAPublicKey` (RFC 8017 A.1.1).
fn rsa_components(public: &[u8]) -> Option<(&[u8], &[u8])> {
    match der_sequence(public)?.as_slice() {
        [(0x02, n), (0x02, e)] => Some((unsigned(n), unsigned(e))),
        _ => None,
    }
}

/// A key as the token code uses it: its private half opened (when it could be).
pub struct LoadedKey {
    pub kid: String,
    pub alg: JwtAlgorithm,
    /// PKCS#8; `None` for the HS256 record, or when it was sealed under a secret we no longer have
    /// (it then only verifies).
    pub private_pkcs8: Option<Vec<u8>>,
    /// Ed25519's 32 bytes, P-256's uncompressed point, or RSA's `RSAPublicKey` (RFC 8017, DER).
    pub public: Vec<u8>,
    /// What it signs: our access tokens, or the apps' ID tokens.
    pub purpose: KeyPurpose,
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
        JwtAlgorithm::Rs256 => {
            let (n, e) = rsa_components(public)?;
            Some(json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)}))
        }
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
        JwtAlgorithm::Rs256 => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            jwk["e"].as_str().unwrap_or_default(),
            jwk["n"].as_str().unwrap_or_default()
        ),
        _ => format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap_or_default(),
            jwk["y"].as_str().unwrap_or_default()
        ),
    };
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    Ok(URL_SAFE_NO_PAD.encode(digest.as_ref()))
}
