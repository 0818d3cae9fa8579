//! Unguessable values from the operating system's CSPRNG.
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn bytes<const N: usize>() -> [u8; N] {
    let mut buffer = [0u8; N];
    SystemRandom::new().fill(&mut buffer).expect("the operating system's random source failed");
    buffer
}

/// `len` random bytes, URL-safe base64 without padding.
pub fn token_base64(len: usize) -> String {
    let mut buffer = vec![0u8; len];
    SystemRandom::new().fill(&mut buffer).expect("the operating system's random source failed");
    URL_SAFE_NO_PAD.encode(buffer)
}
