//! argon2id password hashing on a few dedicated threads, each reusing its own working memory.
//!
//! Each hash needs 19 MiB. Allocating it per hash costs page faults (or a 19 MiB `memset`) on
//! every sign-in, and the allocator keeps the freed memory per thread, so hashing on a general
//! thread pool grows the process by 19 MiB for every thread that ever hashed. Here exactly
//! `concurrency` threads hash, each keeps one buffer while it is busy: memory is bounded by
//! `concurrency × 19 MiB`, a burst of sign-ins queues instead of starving other requests, and
//! a thread that has had nothing to do for `RELEASE_AFTER` gives its buffer back. The threads run
//! at a lower priority, so sign-ins wait for the CPU rather than every other request.
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::oneshot;

use crate::domain::{MAX_PASSWORD_BYTES, NewPassword};

/// OWASP's argon2id recommendation: 19 MiB, two passes, one lane.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;
const SALT_BYTES: usize = 16;
const OUTPUT_BYTES: usize = 32;
/// Hashing threads yield the CPU to request handling: a burst of sign-ins must not slow down
/// everyone else's requests (a nice value of 10 gets about a tenth of a contended core).
const HASHING_NICENESS: i32 = 10;
/// A hashing thread idle this long frees its working memory.
const RELEASE_AFTER: Duration = Duration::from_secs(10);

fn params() -> Params {
    Params::new(MEMORY_KIB, ITERATIONS, LANES, Some(OUTPUT_BYTES)).expect("argon2 parameters are valid")
}

/// Working memory for argon2, kept between hashes. Hashes with bigger parameters (imported
/// ones) get a temporary buffer so that one such user cannot grow the process for good.
#[derive(Default)]
struct Scratch(Vec<Block>);

impl Scratch {
    fn run(&mut self, argon2: &Argon2, password: &[u8], salt: &[u8], out: &mut [u8]) -> argon2::Result<()> {
        let needed = argon2.params().block_count();
        if needed > params().block_count() {
            return argon2.hash_password_into_with_memory(password, salt, out, vec![Block::new(); needed]);
        }
        if self.0.len() < needed {
            self.0.resize(needed, Block::new());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut self.0[..needed])
    }

    fn replacement(&mut self, new: &str, current_hash: &str) -> anyhow::Result<Option<String>> {
        if self.verify(new, current_hash) {
            return Ok(None);
        }
        self.hash(new).map(Some)
    }

    fn hash(&mut self, password: &str) -> anyhow::Result<String> {
        let params = params();
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let salt = crate::random::bytes::<SALT_BYTES>();
        let mut out = [0u8; OUTPUT_BYTES];
        self.run(&argon2, password.as_bytes(), &salt, &mut out)
            .map_err(|error| anyhow!("could not hash a password: {error}"))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|error| anyhow!("argon2 parameters: {error}"))?,
            salt: Some(Salt::new(&salt).map_err(|error| anyhow!("argon2 salt: {error}"))?),
            hash: Some(Output::new(&out).map_err(|error| anyhow!("argon2 output: {error}"))?),
        };
        Ok(phc.to_string())
    }

    /// True when `phc` is an argon2 hash of `password` (compared in constant time).
    fn verify(&mut self, password: &str, phc: &str) -> bool {
        if phc == NO_PASSWORD {
            return false;
        }
        let Ok(hash) = PasswordHash::new(phc) else {
            tracing::error!("a stored password hash is not a valid PHC string");
            return false;
        };
        let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else { return false };
        let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else { return false };
        let version = hash.version.map_or(Ok(Version::V0x13), Version::try_from);
        let (Ok(version), Ok(params)) = (version, Params::try_from(&hash)) else { return false };
        let argon2 = Argon2::new(algorithm, version, params);
        let mut out = vec![0u8; expected.len()];
        if self.run(&argon2, password.as_bytes(), salt, &mut out).is_err() {
            return false;
        }
        Output::new(&out).is_ok_and(|computed| computed == *expected)
    }
}

/// One hash with fresh memory, for the command line.
pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    Scratch::default().hash(password)
}

/// A new password for an account that has `current_hash`: its hash, or `None` when it is the
/// password the account already has (a one-time password must not become the permanent one).
/// For the command line; the server uses [`PasswordHasher::hash_replacement`].
pub fn hash_replacement_blocking(new: &NewPassword, current_hash: &str) -> anyhow::Result<Option<String>> {
    Scratch::default().replacement(new.expose(), current_hash)
}

/// How long `samples` hashes take one after another on this thread, memory reused as on the
/// server's hashing threads (a first, untimed hash allocates it).
pub fn time_hashes(samples: u32) -> anyhow::Result<Vec<Duration>> {
    let mut scratch = Scratch::default();
    scratch.hash("violet tractor sings loudly")?;
    (0..samples)
        .map(|_| {
            let started = Instant::now();
            scratch.hash("violet tractor sings loudly").map(|_| started.elapsed())
        })
        .collect()
}

/// Stored for accounts that have no password yet (imported without a hash): matches nothing.
pub const NO_PASSWORD: &str = "!";

/// Whether `phc` is an argon2 PHC string we can verify against (for imported hashes).
pub fn is_argon2_phc(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| hash.algorithm.as_str().starts_with("argon2"))
}

type Job = Box<dyn FnOnce(&mut Scratch) + Send>;

/// Hashes and verifies on `concurrency` threads of its own; callers wait without blocking
/// an async worker. Dropping the last clone lets the threads finish and exit.
#[derive(Clone)]
pub struct PasswordHasher {
    jobs: mpsc::Sender<Job>,
    /// Verified against when the user does not exist, so that case costs one hash too.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for number in 0..concurrency.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("password-hash-{number}"))
                .spawn(move || {
                    crate::memory::lower_this_threads_priority(HASHING_NICENESS);
                    let mut scratch = Scratch::default();
                    let mut last_job = Instant::now();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv_timeout(Duration::from_secs(1)),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => {
                                job(&mut scratch);
                                last_job = Instant::now();
                            }
                            Err(mpsc::RecvTimeoutError::Timeout) if last_job.elapsed() >= RELEASE_AFTER => {
                                scratch = Scratch::default();
                            }
                            Err(mpsc::RecvTimeoutError::Timeout) => {}
                            Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        }
                    }
                })
                .context("could not start a password hashing thread")?;
        }
        let mut hasher = Self { jobs, dummy_hash: Arc::from("") };
        let dummy = SecretString::from(crate::random::token_base64(24));
        let (done, result) = mpsc::channel();
        hasher.submit(Box::new(move |scratch| {
            let _ = done.send(scratch.hash(dummy.expose_secret()));
        }))?;
        hasher.dummy_hash = result.recv().context("the password hashing threads stopped")??.into();
        Ok(hasher)
    }

    pub async fn hash(&self, password: &NewPassword) -> anyhow::Result<String> {
        let password = SecretString::from(password.expose());
        self.run(move |scratch| scratch.hash(password.expose_secret())).await?
    }

    /// The hash of `new` as the replacement of `current_hash`, or `None` when `new` is the
    /// password the account already has.
    pub async fn hash_replacement(&self, new: &NewPassword, current_hash: String) -> anyhow::Result<Option<String>> {
        let password = SecretString::from(new.expose());
        self.run(move |scratch| scratch.replacement(password.expose_secret(), &current_hash)).await?
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
        let matches = self.run(move |scratch| scratch.verify(password.expose_secret(), &hash)).await?;
        Ok(exists && matches)
    }

    fn submit(&self, job: Job) -> anyhow::Result<()> {
        self.jobs.send(job).map_err(|_| anyhow!("the password hashing threads stopped"))
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce(&mut Scratch) -> T + Send + 'static) -> anyhow::Result<T> {
        let (done, result) = oneshot::channel();
        self.submit(Box::new(move |scratch| {
            let _ = done.send(work(scratch));
        }))?;
        result.await.context("a password hashing job was lost")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_phc_strings_with_owasp_parameters_and_verify() {
        let hash = hash_blocking("tangerine orbit lamp").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        let mut scratch = Scratch::default();
        assert!(scratch.verify("tangerine orbit lamp", &hash));
        assert!(!scratch.verify("tangerine orbit lamp ", &hash), "never trimmed");
        assert!(!scratch.verify("anything", "not a phc string"));
        assert!(!scratch.verify("anything", NO_PASSWORD));
    }

    #[test]
    fn hashes_made_by_the_argon2_crate_with_other_parameters_verify_too() {
        use argon2::password_hash::PasswordHasher as _;
        let bigger = Params::new(32 * 1024, 3, 2, None).unwrap();
        for (algorithm, chosen) in [(Algorithm::Argon2id, params()), (Algorithm::Argon2i, bigger)] {
            let phc =
                Argon2::new(algorithm, Version::V0x13, chosen).hash_password(b"quiet harbour").unwrap().to_string();
            let mut scratch = Scratch::default();
            assert!(scratch.verify("quiet harbour", &phc), "{phc}");
            assert!(!scratch.verify("quiet harbor", &phc), "{phc}");
            assert!(scratch.0.len() <= params().block_count(), "bigger hashes use temporary memory");
        }
    }
}
