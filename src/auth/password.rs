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

/// The largest stored hashes we are willing to verify (imported ones may use any parameters):
/// 256 MiB, 16 passes, 16 lanes, 64-byte outputs. One hash beyond these would let a single
/// imported row exhaust memory or a hashing thread; it fails its sign-in with a warning instead.
/// A hash that waited longer than this for a thread is logged as a warning (raise
/// `PORTCULLIS_HASH_CONCURRENCY`, or expect a flood).
const SLOW_QUEUE: Duration = Duration::from_secs(1);

pub const MAX_STORED_MEMORY_KIB: u32 = 256 * 1024;
pub const MAX_STORED_ITERATIONS: u32 = 16;
pub const MAX_STORED_LANES: u32 = 16;
const MAX_STORED_OUTPUT_BYTES: usize = 64;
const MIN_STORED_OUTPUT_BYTES: usize = 16;

/// The argon2 settings of a stored hash, or why it is not one we verify. Reads only the PHC
/// text: nothing is allocated for the hash itself.
fn stored_params(hash: &PasswordHash) -> Result<(Algorithm, Version, Params), String> {
    let algorithm = Algorithm::try_from(hash.algorithm.as_str()).map_err(|_| "not an argon2 hash".to_owned())?;
    let version = hash.version.map_or(Ok(Version::V0x13), Version::try_from).map_err(|_| "unknown argon2 version")?;
    let number = |name: &str| hash.params.get_decimal(name);
    let (Some(memory), Some(iterations), Some(lanes)) = (number("m"), number("t"), number("p")) else {
        return Err("the hash does not say m, t and p".to_owned());
    };
    if memory > MAX_STORED_MEMORY_KIB || iterations > MAX_STORED_ITERATIONS || lanes > MAX_STORED_LANES {
        return Err(format!(
            "its parameters m={memory}, t={iterations}, p={lanes} are beyond the bounds we verify \
             (m ≤ {MAX_STORED_MEMORY_KIB}, t ≤ {MAX_STORED_ITERATIONS}, p ≤ {MAX_STORED_LANES})"
        ));
    }
    let output = hash.hash.as_ref().map_or(0, |output| output.len());
    if !(MIN_STORED_OUTPUT_BYTES..=MAX_STORED_OUTPUT_BYTES).contains(&output) || hash.salt.is_none() {
        return Err(format!("its salt or {output}-byte output is not what an argon2 hash has"));
    }
    let params = Params::try_from(hash).map_err(|error| format!("its parameters are not valid: {error}"))?;
    Ok((algorithm, version, params))
}

/// Why `phc` is not a password hash we can verify (import refuses such rows), or `None`.
pub fn argon2_phc_problem(phc: &str) -> Option<String> {
    match PasswordHash::new(phc) {
        Err(_) => Some("it is not a PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)".to_owned()),
        Ok(hash) => stored_params(&hash).err(),
    }
}

fn params() -> Params {
    Params::new(MEMORY_KIB, ITERATIONS, LANES, Some(OUTPUT_BYTES)).expect("argon2 parameters are valid")
}

/// Working memory for argon2, kept between hashes. Hashes with bigger parameters (imported
/// ones) get a temporary buffer so that one such user cannot grow the process for good.
#[derive(Default)]
struct Scratch(Vec<Block>);

impl Scratch {
    fn run(&mut self, argon2: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> argon2::Result<()> {
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
        let (algorithm, version, params) = match stored_params(&hash) {
            Ok(settings) => settings,
            Err(problem) => {
                tracing::warn!("a stored password hash is refused without being tried: {problem}");
                return false;
            }
        };
        let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else { return false };
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
    argon2_phc_problem(phc).is_none()
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
        // The caller's span (a request's) follows the hash onto its thread, with how long it
        // waited for one.
        let (span, queued) = (tracing::debug_span!("argon2"), std::time::Instant::now());
        self.submit(Box::new(move |scratch| {
            let _entered = span.enter();
            let started = std::time::Instant::now();
            let answer = work(scratch);
            let (waited, ran) = (started - queued, started.elapsed());
            if waited > SLOW_QUEUE {
                tracing::warn!(?waited, ?ran, "password hashing waited for a free thread");
            } else {
                tracing::debug!(?waited, ?ran, "password hashed");
            }
            let _ = done.send(answer);
        }))?;
        result.await.context("a password hashing job was lost")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_beyond_the_bounds_are_refused_without_allocating() {
        let valid = hash_blocking("tangerine orbit lamp").unwrap();
        assert_eq!(argon2_phc_problem(&valid), None);
        for (from, to) in [("m=19456", "m=4000000000"), ("t=2", "t=100000"), ("p=1", "p=255")] {
            let hostile = valid.replace(from, to);
            let problem = argon2_phc_problem(&hostile).expect("refused");
            assert!(problem.contains("beyond the bounds"), "{problem}");
            assert!(!Scratch::default().verify("tangerine orbit lamp", &hostile), "{to}: never verified");
        }
        let at_bound = valid.replace("m=19456", &format!("m={MAX_STORED_MEMORY_KIB}"));
        assert_eq!(argon2_phc_problem(&at_bound), None, "the bound itself is allowed");
        assert!(argon2_phc_problem("$2b$12$abcdefghijklmnopqrstuv").is_some(), "bcrypt is not argon2");
        assert!(argon2_phc_problem("plain text").is_some());
    }

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
