use unicode_normalization::UnicodeNormalization;

use super::ValidationError;

const MAX_EMAIL_BYTES: usize = 254;

/// An e-mail address, in Unicode compatibility form (NFKC: fullwidth `ａ` is `a`) and
/// lower-cased. Deliberately shallow: one `@`, a dotted domain, no whitespace or control
/// characters. Deliverability is proven by mail, not by regex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

/// The form every stored address and every looked-up login is compared in.
pub fn normalize(input: &str) -> String {
    input.nfkc().collect::<String>().to_lowercase()
}

/// The address as it looks (Unicode TR39 confusable skeleton): `аlice` with a Cyrillic `а` and
/// `alice` have the same one. At most one account may hold each.
pub fn skeleton(address: &str) -> String {
    unicode_security::skeleton(&normalize(address)).collect()
}

impl Email {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let invalid = || ValidationError::new("Enter an email address like name@example.com");
        let normalized = normalize(input);
        let input = normalized.as_str();
        if input.is_empty() {
            return Err(ValidationError::new("Enter an email address"));
        }
        if input.len() > MAX_EMAIL_BYTES {
            return Err(ValidationError::new(format!("Email address must be at most {MAX_EMAIL_BYTES} characters")));
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = input.rsplit_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !domain.contains(['@', '<', '>', '"', '\\', ',', ';', '(', ')', '[', ']']);
        if local.is_empty() || local.len() > 64 || local.contains(['<', '>']) || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn skeleton(&self) -> String {
        skeleton(&self.0)
    }
}

text_value!(Email);

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_address_is_stored_lower_case() {
        assert_eq!(Email::parse("Alice@Example.COM").unwrap().as_str(), "alice@example.com");
    }

    #[test]
    fn fullwidth_and_other_compatibility_forms_are_stored_as_plain_letters() {
        assert_eq!(Email::parse("ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｔｅｓｔ").unwrap().as_str(), "alice@example.test");
        assert_eq!(Email::parse("ﬁona@example.test").unwrap().as_str(), "fiona@example.test");
    }

    #[test]
    fn look_alike_addresses_share_a_skeleton_and_different_ones_do_not() {
        let plain = Email::parse("alice@example.test").unwrap().skeleton();
        for look_alike in ["аlice@example.test", "ａlice@example.test", "ALICE@example.test", "alice@ехample.test"]
        {
            assert_eq!(Email::parse(look_alike).unwrap().skeleton(), plain, "{look_alike}");
        }
        for different in ["alicia@example.test", "alice@example.org", "bob@example.test"] {
            assert_ne!(Email::parse(different).unwrap().skeleton(), plain, "{different}");
        }
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@example",
            "a b@example.com",
            "alice@example..com",
            "alice@.example.com",
            "<a>@example.com",
            "alice@exa<mple.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    proptest! {
        #[test]
        fn an_accepted_address_has_no_whitespace_and_one_at_sign_in_the_domain_part(input in "\\PC{0,60}") {
            if let Ok(email) = Email::parse(&input) {
                prop_assert!(!email.as_str().chars().any(char::is_whitespace));
                prop_assert!(email.as_str().contains('@'));
            }
        }
    }
}
