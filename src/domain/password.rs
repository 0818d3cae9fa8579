use secrecy::{ExposeSecret, SecretString};
use zxcvbn::{Score, zxcvbn};

use super::ValidationError;

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longer input is refused before it reaches argon2, so nobody can make us hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The strength estimator's cost grows with length; past this many characters a password is
/// long enough that the prefix decides.
const STRENGTH_CHECK_CHARS: usize = 100;

/// A password someone wants to set. Any Unicode, never trimmed or truncated; at least
/// 8 characters, at most 1 KiB, and not among the passwords attackers try first.
/// `Debug` shows only a redaction marker (from `SecretString`).
#[derive(Debug)]
pub struct NewPassword(SecretString);

impl NewPassword {
    /// `related_inputs` (username, email, name) make passwords built from them score as weak.
    pub fn parse(input: SecretString, related_inputs: &[&str]) -> Result<Self, ValidationError> {
        let password = input.expose_secret();
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(ValidationError::new(format!(
                "Password must be at least {MIN_PASSWORD_CHARS} characters long"
            )));
        }
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(ValidationError::new(format!("Password must be at most {MAX_PASSWORD_BYTES} bytes long")));
        }
        if password.contains('\0') {
            return Err(ValidationError::new("Password must not contain NUL characters"));
        }
        let checked: String = password.chars().take(STRENGTH_CHECK_CHARS).collect();
        let estimate = zxcvbn(&checked, related_inputs);
        if estimate.score() < Score::Two {
            let reason = estimate
                .feedback()
                .and_then(|feedback| feedback.warning())
                .map(|warning| warning.to_string())
                .unwrap_or_else(|| "It is among the passwords attackers try first.".to_owned());
            return Err(ValidationError::new(format!(
                "This password is too easy to guess. {reason} Try a longer phrase of unrelated words."
            )));
        }
        Ok(Self(input))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(password: &str) -> Result<NewPassword, ValidationError> {
        NewPassword::parse(SecretString::from(password), &["alice", "alice@example.com"])
    }

    #[test]
    fn a_long_unusual_phrase_is_accepted_exactly_as_typed() {
        let phrase = " correct horse battery staple ";
        assert_eq!(parse(phrase).unwrap().expose(), phrase);
    }

    #[test]
    fn unicode_passwords_count_characters_not_bytes() {
        assert!(parse("ÿ€𝄞ß").is_err(), "4 characters is too short even though it is 11 bytes");
        assert!(parse("Grüße aus Köln, 𝄞 und ☕ dazu").is_ok());
    }

    #[test]
    fn short_common_or_name_based_passwords_are_refused_with_a_reason() {
        assert!(parse("Ab1!xyz").unwrap_err().0.contains("at least 8"));
        for weak in ["password", "password1", "12345678", "qwertyuiop", "alice1234"] {
            let error = parse(weak).err().unwrap_or_else(|| panic!("{weak} accepted"));
            assert!(error.0.contains("too easy to guess"), "{weak}: {error}");
        }
    }

    #[test]
    fn sixty_four_characters_are_allowed_and_more_than_a_kibibyte_is_not() {
        assert!(parse(&"tangerine-orbit-".repeat(4)).is_ok());
        assert!(parse(&"x".repeat(MAX_PASSWORD_BYTES + 1)).unwrap_err().0.contains("at most"));
    }
}
