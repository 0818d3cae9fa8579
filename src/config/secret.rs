//! The signing secret: refused when short, repetitive, published or made of words; on
//! SQLite generated once and kept beside the database with owner-only permissions.
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};

pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// An HMAC key for signing tokens; never printed.
#[derive(Clone)]
pub struct JwtSecret(SecretString);

/// Secrets of 32 bytes or more found in public code and tutorials (from a public list of JWT
/// secrets seen in the wild, MIT-licensed, © 2020 Wallarm): anyone can try them offline.
const KNOWN_WEAK_SECRETS: &str = include_str!("weak_jwt_secrets.txt");
/// The estimated strength (see `estimated_bits`) a secret must have. Random base64 of 32
/// characters or more is estimated at about 100, random hex of 32 at 84 or more; phrases of
/// six or seven common words, keyboard and alphabet runs and repeats stay below.
const MIN_SECRET_BITS: f64 = 75.0;
const HOW_TO_GENERATE: &str = "generate one with `openssl rand -base64 48`";

impl JwtSecret {
    pub fn parse(raw: &str, source: &str) -> anyhow::Result<Self> {
        if raw.len() < MIN_JWT_SECRET_BYTES {
            bail!(
                "{source} is too short: it needs at least {MIN_JWT_SECRET_BYTES} bytes of random data \
                 ({HOW_TO_GENERATE})"
            );
        }
        let distinct = raw.bytes().collect::<std::collections::HashSet<_>>().len();
        if distinct < 8 {
            bail!("{source} is too repetitive to be a secret: use random data ({HOW_TO_GENERATE})");
        }
        if KNOWN_WEAK_SECRETS.lines().any(|known| known == raw || known.trim() == raw.trim()) {
            bail!(
                "{source} is a secret published in public code, which attackers try first: a token signed \
                 with it can be forged by anyone ({HOW_TO_GENERATE})"
            );
        }
        if estimated_bits(raw) < MIN_SECRET_BITS {
            bail!(
                "{source} is made of words or patterns that are far easier to guess than random data of \
                 the same length ({HOW_TO_GENERATE})"
            );
        }
        Ok(Self(SecretString::from(raw)))
    }

    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret().as_bytes()
    }
}

/// Beyond this many log10 guesses the estimator's 64-bit count may have overflowed.
const COUNTABLE_LOG10: f64 = 18.0;
/// The longest piece the estimator is given at once (its count holds for these).
const PIECE: usize = 12;

fn guesses_log10(text: &str) -> f64 {
    zxcvbn::zxcvbn(text, &[]).guesses_log10().max(0.0)
}

fn pieces_log10(chars: &[char]) -> f64 {
    chars.chunks(PIECE).map(|piece| guesses_log10(&piece.iter().collect::<String>())).sum()
}

/// The cheapest way to spell `letters` as pieces of at most `PIECE` letters (words run
/// together: `thisisaverylongsecret` is a handful of words, not 21 random letters).
fn segmented_log10(letters: &[char]) -> f64 {
    let mut best = vec![0.0_f64; letters.len() + 1];
    for end in 1..=letters.len() {
        best[end] = (1..=PIECE.min(end))
            .map(|length| best[end - length] + guesses_log10(&letters[end - length..end].iter().collect::<String>()))
            .fold(f64::MAX, f64::min);
    }
    best[letters.len()]
}

/// One run of letters and digits, lower case: the cheapest of its readings.
fn run_log10(run: &[char]) -> f64 {
    let mut cheapest = pieces_log10(run);
    let whole = guesses_log10(&run.iter().collect::<String>());
    if whole < COUNTABLE_LOG10 {
        cheapest = cheapest.min(whole);
    }
    if run.len() > PIECE {
        // Letters and digits apart, long letter stretches segmented into words.
        let mut stretches: Vec<&[char]> = Vec::new();
        let mut start = 0;
        for at in 1..=run.len() {
            if at == run.len() || run[at].is_alphabetic() != run[start].is_alphabetic() {
                stretches.push(&run[start..at]);
                start = at;
            }
        }
        let segmented: f64 = stretches
            .iter()
            .map(|stretch| {
                if stretch.len() > PIECE && stretch[0].is_alphabetic() {
                    segmented_log10(stretch)
                } else {
                    pieces_log10(stretch)
                }
            })
            .sum();
        cheapest = cheapest.min(segmented);
    }
    cheapest
}

/// How many bits of guessing `secret` is worth, read as an attacker would, taking the cheapest
/// reading: each run of letters or digits worth the guesses the strength estimator needs for it
/// (words, names, keyboard runs, sequences, repeats and dates are cheap; random characters cost
/// about 3.3 bits each) — read in pieces of at most 12 characters (where the estimator's 64-bit
/// count holds), whole, or as words run together — a run seen before 4 bits, each separator 2
/// bits; or the whole secret read at once (phrases that repeat), when the estimator could count
/// it without overflowing (random data overflows, and is judged by the runs).
fn estimated_bits(secret: &str) -> f64 {
    let chars: Vec<char> = secret.chars().take(256).flat_map(char::to_lowercase).collect();
    let separators = chars.iter().filter(|c| !c.is_alphanumeric()).count();
    let mut seen: Vec<&[char]> = Vec::new();
    let mut runs_log10 = 0.0;
    let mut repeats = 0.0;
    for run in chars.split(|c| !c.is_alphanumeric()).filter(|run| !run.is_empty()) {
        if seen.contains(&run) {
            repeats += 4.0;
            continue;
        }
        runs_log10 += run_log10(run);
        seen.push(run);
    }
    let by_runs = runs_log10 * std::f64::consts::LOG2_10 + repeats + 2.0 * separators as f64;
    match guesses_log10(&chars.iter().collect::<String>()) {
        whole if whole < COUNTABLE_LOG10 => by_runs.min(whole * std::f64::consts::LOG2_10),
        _ => by_runs,
    }
}

impl std::fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtSecret([redacted])")
    }
}

/// The SQLite deployment's own secret: read from `<database>.jwt-secret`, or created there
/// with owner-only permissions on first start. Returns the secret and whether it is new.
pub fn load_or_create_jwt_secret(database: &Path) -> anyhow::Result<(JwtSecret, PathBuf)> {
    let mut file_name = database.file_name().unwrap_or_default().to_os_string();
    file_name.push(".jwt-secret");
    let path = database.with_file_name(file_name);
    match std::fs::read_to_string(&path) {
        Ok(contents) => {
            let secret = JwtSecret::parse(contents.trim_end(), &format!("the secret in {}", path.display()))?;
            Ok((secret, path))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let secret = crate::random::token_base64(48);
            write_owner_only(&path, &secret)
                .with_context(|| format!("could not write a new JWT secret to {}", path.display()))?;
            tracing::warn!(
                path = %path.display(),
                "generated a new JWT signing secret and saved it with owner-only permissions; \
                 back it up with the database, or set PORTCULLIS_JWT_SECRET"
            );
            Ok((JwtSecret::parse(&secret, "the generated secret")?, path))
        }
        Err(error) => Err(error).with_context(|| format!("could not read the JWT secret at {}", path.display())),
    }
}

fn write_owner_only(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_from_public_lists_or_made_of_words_are_refused_with_how_to_make_one() {
        for weak in [
            "my_very_long_and_safe_secret_key",
            "jwt-secret-key-for-my-app-2024",
            "correct horse battery staple correct horse",
            "correct horse battery staple correct horse battery",
            "thisisaverylongsecretkeyforjwtsigning",
            "ThisIsAVeryLongSecretKeyForJwtSigning2024",
            "supersecretkeythatnobodywilleverguess",
            "my-super-secret-key-my-super-secret-key",
            "qwertyuiopasdfghjklzxcvbnm1234567890",
            "abcdefghijklmnopqrstuvwxyz0123456789",
            "passwordpasswordpassword123456789",
        ] {
            let error = JwtSecret::parse(weak, "PORTCULLIS_JWT_SECRET").err();
            let error = error.unwrap_or_else(|| panic!("{weak:?} was accepted")).to_string();
            assert!(error.contains("openssl rand -base64 48"), "{weak}: {error}");
        }
        assert!(JwtSecret::parse("my_very_long_and_safe_secret_key", "X").unwrap_err().to_string().contains("public"));
    }

    #[test]
    fn random_secrets_of_every_usual_shape_are_accepted() {
        use base64::Engine;
        let mut weakest = f64::MAX;
        for _ in 0..300 {
            let bytes = crate::random::bytes::<32>();
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            for secret in [
                base64::engine::general_purpose::STANDARD.encode(bytes),
                crate::random::token_base64(24),
                crate::random::token_base64(48),
                hex[..32].to_owned(),
                hex,
            ] {
                weakest = weakest.min(estimated_bits(&secret));
                assert!(JwtSecret::parse(&secret, "X").is_ok(), "{secret} refused");
            }
        }
        assert!(weakest >= MIN_SECRET_BITS, "{weakest}");
    }

    #[test]
    fn the_generated_secret_is_owner_only_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        let (first, path) = load_or_create_jwt_secret(&db).unwrap();
        let (second, _) = load_or_create_jwt_secret(&db).unwrap();
        assert_eq!(first.expose(), second.expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
