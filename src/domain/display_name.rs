use super::ValidationError;

pub(super) const MAX_DISPLAY_NAME_CHARS: usize = 100;

/// The name shown on pages. Any Unicode text without control characters, surrounding
/// whitespace trimmed. It is never trusted as markup: templates escape it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let name = input.trim();
        if name.is_empty() {
            return Err(ValidationError::new("Enter a display name"));
        }
        if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
            return Err(ValidationError::new(format!(
                "Display name must be at most {MAX_DISPLAY_NAME_CHARS} characters"
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(ValidationError::new("Display name must not contain control characters"));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn markup_is_kept_as_text_and_whitespace_is_trimmed() {
        assert_eq!(DisplayName::parse("  <b>Bo</b> ").unwrap().as_str(), "<b>Bo</b>");
    }

    #[test]
    fn empty_overlong_and_control_character_names_are_refused() {
        for bad in ["", "   ", &"x".repeat(101), "a\u{0}b", "a\nb"] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    proptest! {
        #[test]
        fn parsing_is_idempotent(input in "\\PC{0,120}") {
            if let Ok(name) = DisplayName::parse(&input) {
                prop_assert_eq!(DisplayName::parse(name.as_str()).unwrap(), name);
            }
        }
    }
}
