use super::ValidationError;

pub(super) const MIN_USERNAME_CHARS: usize = 3;
pub(super) const MAX_USERNAME_CHARS: usize = 32;

/// A login name: 3–32 characters from `a-z 0-9 . _ -`, starting with a letter or digit.
/// Stored lower-cased, so uniqueness and lookups are case-insensitive by construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let name = input.to_lowercase();
        let length = name.chars().count();
        if !(MIN_USERNAME_CHARS..=MAX_USERNAME_CHARS).contains(&length) {
            return Err(ValidationError::new(format!(
                "Username must be {MIN_USERNAME_CHARS} to {MAX_USERNAME_CHARS} characters long"
            )));
        }
        if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')) {
            return Err(ValidationError::new(
                "Username may only contain letters a–z, digits, dots, hyphens and underscores",
            ));
        }
        if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(ValidationError::new("Username must start with a letter or a digit"));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

text_value!(Username);

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_mixed_case_name_is_stored_lower_case() {
        assert_eq!(Username::parse("Alice.Smith").unwrap().as_str(), "alice.smith");
    }

    #[test]
    fn names_that_are_too_short_too_long_or_oddly_shaped_are_refused() {
        for bad in ["", "ab", &"a".repeat(33), "al ice", "al<ce", "-alice", ".alice", "ålice"] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    proptest! {
        #[test]
        fn every_accepted_name_is_lower_case_ascii_and_round_trips(input in "\\PC{0,40}") {
            if let Ok(name) = Username::parse(&input) {
                prop_assert!(name.as_str().is_ascii());
                prop_assert_eq!(name.as_str(), name.as_str().to_lowercase());
                prop_assert_eq!(Username::parse(name.as_str()).unwrap(), name);
            }
        }
    }
}
