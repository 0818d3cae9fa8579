//! argon2id password hashing on the blocking pool, with a bound on concurrent hashes.
use std::sync::Arc;

use anyhow::{Context, anyhow};
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::domain::{MAX_PASSWORD_BYTES, NewPassword};

/// OWASP's argon2id recommendation: 19 MiB, two passes, one lane.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None).expect("argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    argon2()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| anyhow!("could not hash a password: {error}"))
}

/// Stored for accounts that have no password yet (imported without a hash): matches nothing.
pub const NO_PASSWORD: &str = "!";

/// Whether `phc` is an argon2 PHC string we can verify against (for imported hashes).
pub fn is_argon2_phc(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| hash.algorithm.as_str().starts_with("argon2"))
}

fn verify_blocking(password: &str, phc: &str) -> bool {
    if phc == NO_PASSWORD {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(hash) => argon2().verify_password(password.as_bytes(), &hash).is_ok(),
        Err(_) => {
            tracing::error!("a stored password hash is not a valid PHC string");
            false
        }
    }
}

/// Runs hashes off the async workers, at most `concurrency` at a time, so a burst of logins
/// queues instead of starving other requests of CPU and memory.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Verified against when the user does not exist, so that case costs one hash too.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let dummy = hash_blocking(&crate::auth::random::token_base64(24))?;
        Ok(Self { permits: Arc::new(Semaphore::new(concurrency)), dummy_hash: dummy.into() })
    }

    pub async fn hash(&self, password: &NewPassword) -> anyhow::Result<String> {
        let password = SecretString::from(password.expose());
        self.run(move || hash_blocking(password.expose_secret())).await?
    }

    /// True only when `stored` exists and matches. `None` still costs one verification.
    pub async fn verify(&self, password: SecretString, stored: Option<String>) -> anyhow::Result<bool> {
        if password.expose_secret().len() > MAX_PASSWORD_BYTES {
            return Ok(false);
        }
        let (hash, exists) = match stored {
            Some(hash) => (hash, true),
            None => (self.dummy_hash.to_string(), false),
        };
        let matches = self.run(move || verify_blocking(password.expose_secret(), &hash)).await?;
        Ok(exists && matches)
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
        let permit = self.permits.clone().acquire_owned().await.context("the hashing queue is closed")?;
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .context("a password hashing task failed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_phc_strings_with_owasp_parameters_and_verify() {
        let hash = hash_blocking("tangerine orbit lamp").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_blocking("tangerine orbit lamp", &hash));
        assert!(!verify_blocking("tangerine orbit lamp ", &hash), "never trimmed");
        assert!(!verify_blocking("anything", "not a phc string"));
    }
}
