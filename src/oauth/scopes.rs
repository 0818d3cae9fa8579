//! The scopes an app may ask for, and what each lets it learn (in words for the consent page).
use std::fmt;

/// Every scope Portcullis knows, in the order pages list them.
pub const KNOWN_SCOPES: [&str; 5] = ["openid", "profile", "email", "groups", "offline_access"];

/// A set of known scopes, in `KNOWN_SCOPES` order (unknown ones are dropped, as OpenID Connect
/// Core 3.1.2.1 asks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<&'static str>);

impl Scopes {
    pub fn parse(raw: &str) -> Self {
        let asked: Vec<&str> = raw.split_whitespace().collect();
        Self(KNOWN_SCOPES.iter().copied().filter(|scope| asked.contains(scope)).collect())
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(&scope)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Those of ours that `other` has too.
    pub fn within(&self, other: &Scopes) -> Scopes {
        Self(self.0.iter().copied().filter(|scope| other.contains(scope)).collect())
    }

    /// Whether every scope of ours is in `other`.
    pub fn covered_by(&self, other: &Scopes) -> bool {
        self.0.iter().all(|scope| other.contains(scope))
    }

    pub fn union(&self, other: &Scopes) -> Scopes {
        Self(KNOWN_SCOPES.iter().copied().filter(|scope| self.contains(scope) || other.contains(scope)).collect())
    }

    /// What the app will learn, one line per scope, for the consent page.
    pub fn in_words(&self) -> Vec<&'static str> {
        self.0
            .iter()
            .filter_map(|scope| match *scope {
                "openid" => Some("Who you are: an identifier that stays the same for this app"),
                "profile" => Some("Your name, username and time zone"),
                "email" => Some("Your e-mail address"),
                "groups" => Some("The groups you are in"),
                "offline_access" => Some("Stay signed in while you are away, until you disconnect it or sign out"),
                _ => None,
            })
            .collect()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}
