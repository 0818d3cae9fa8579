use super::ValidationError;

pub(super) const MAX_GROUP_NAME_CHARS: usize = 64;

/// A group's name, as tokens, proxy headers (`Remote-Groups`, comma-separated), access rules
/// (`group:NAME`) and CSV cells (`;`-separated) carry it: 1–64 characters from
/// `a-z 0-9 . _ -`, starting with a letter or digit. Stored lower-cased, so names are unique
/// case-insensitively by construction, and no separator can ever be part of one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let name = input.trim().to_lowercase();
        let length = name.chars().count();
        if length == 0 {
            return Err(ValidationError::new("Enter the group's name"));
        }
        if length > MAX_GROUP_NAME_CHARS {
            return Err(ValidationError::new(format!(
                "A group's name is at most {MAX_GROUP_NAME_CHARS} characters long"
            )));
        }
        if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')) {
            return Err(ValidationError::new(
                "A group's name may only contain letters a–z, digits, dots, hyphens and underscores",
            ));
        }
        if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(ValidationError::new("A group's name must start with a letter or a digit"));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

text_value!(GroupName);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_lower_case_and_refuse_separators_and_odd_shapes() {
        assert_eq!(GroupName::parse(" Wiki-Editors ").unwrap().as_str(), "wiki-editors");
        for bad in ["", " ", &"a".repeat(65), "a,b", "a;b", "a b", "-wiki", "ünïcode", "a\u{0}b", "group:x"] {
            assert!(GroupName::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    proptest! {
        #[test]
        fn a_parsed_name_parses_to_itself(input in "\\PC{0,80}") {
            if let Ok(name) = GroupName::parse(&input) {
                prop_assert_eq!(GroupName::parse(name.as_str()).unwrap(), name);
            }
        }
    }
}
