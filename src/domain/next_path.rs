/// Where to send someone after login: only a path on this site. Anything that a browser
/// could read as another origin (`//host`, `/\host`, `https:`, `javascript:`, or control
/// characters browsers strip, as in `/\t/host`) is refused and the caller falls back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeNextPath(String);

const MAX_NEXT_BYTES: usize = 2048;

impl SafeNextPath {
    pub fn parse(input: &str) -> Option<Self> {
        let safe = input.starts_with('/')
            && !input.starts_with("//")
            && input.len() <= MAX_NEXT_BYTES
            && !input.contains('\\')
            && !input.chars().any(|c| c.is_control() || c.is_whitespace());
        safe.then(|| Self(input.to_owned()))
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
    fn same_site_paths_with_queries_are_kept() {
        for good in ["/dashboard", "/admin/users?page=2&q=a%20b", "/a/b#frag"] {
            assert_eq!(SafeNextPath::parse(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn anything_that_could_leave_the_site_is_refused() {
        for bad in [
            "",
            "dashboard",
            "//evil.test",
            "/\\evil.test",
            "\\/evil.test",
            "https://evil.test",
            "javascript:alert(1)",
            "/\t/evil.test",
            "/\n/evil.test",
            " /dashboard",
            "/%0a",
            "///evil.test",
        ] {
            if bad == "/%0a" {
                assert!(SafeNextPath::parse(bad).is_some(), "percent-escapes stay a path");
                continue;
            }
            assert!(SafeNextPath::parse(bad).is_none(), "{bad:?} should be refused");
        }
    }

    proptest! {
        #[test]
        fn an_accepted_path_never_starts_a_new_authority(input in "\\PC{0,30}") {
            if let Some(path) = SafeNextPath::parse(&input) {
                let p = path.as_str();
                prop_assert!(p.starts_with('/'));
                prop_assert!(!p.starts_with("//"));
                prop_assert!(!p.contains('\\'));
            }
        }
    }
}
