//! The access rules (`PORTCULLIS_ACCESS_RULES`): which of the sites behind the reverse proxy
//! each role may open, as a TOML file read at start-up. A syntax error, an unknown key or a value that means nothing
//! stops start-up with the line it is on.
//!
//! ```toml
//! default = "signed-in"          # what every other address needs: "signed-in", "public" or "nobody"
//!
//! [[rule]]
//! host = "status.example.com"    # exact, or "*.example.com" for every subdomain
//! allow = "public"
//!
//! [[rule]]
//! host = "wiki.example.com"
//! path = "/admin"                # a path prefix, whole segments ("/admin" is not "/administrators")
//! allow = ["admin"]              # roles
//! ```
use anyhow::anyhow;
use serde::Deserialize;
use toml::Spanned;

use super::Role;

/// Who may open an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Public,
    SignedIn,
    Roles(Vec<Role>),
    Nobody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// Lower case; a leading `*.` matches every subdomain.
    host: String,
    path: String,
    access: Access,
}

/// The rules, most specific first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRules {
    rules: Vec<Rule>,
    default: Access,
}

impl Default for AccessRules {
    /// Without a file: every address behind the proxy needs someone signed in.
    fn default() -> Self {
        Self { rules: Vec::new(), default: Access::SignedIn }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    default: Option<Spanned<Allow>>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    host: Spanned<String>,
    path: Option<Spanned<String>>,
    allow: Spanned<Allow>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Allow {
    Word(String),
    Roles(Vec<String>),
}

/// The line (1-based) of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn access(allow: &Allow) -> Result<Access, String> {
    match allow {
        Allow::Word(word) => match word.as_str() {
            "public" => Ok(Access::Public),
            "signed-in" => Ok(Access::SignedIn),
            "nobody" => Ok(Access::Nobody),
            other => Err(format!(
                "allow = {other:?} means nothing: use \"public\", \"signed-in\", \"nobody\" or a list of roles such as [\"admin\"]"
            )),
        },
        Allow::Roles(roles) if roles.is_empty() => {
            Err("allow = [] lets nobody in: write \"nobody\" if that is meant".to_owned())
        }
        Allow::Roles(roles) => roles
            .iter()
            .map(|role| {
                Role::parse(role)
                    .map_err(|_| format!("there is no role {role:?}: the roles are \"admin\" and \"user\""))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Access::Roles),
    }
}

impl AccessRules {
    /// Parses the file's text; `name` is how errors refer to it.
    pub fn parse(text: &str, name: &str) -> anyhow::Result<Self> {
        let file: File = toml::from_str(text).map_err(|error| {
            let line = error.span().map(|span| line_of(text, span.start));
            let message = error.message().trim_end().to_owned();
            match line {
                Some(line) => anyhow!("{name}, line {line}: {message}"),
                None => anyhow!("{name}: {message}"),
            }
        })?;
        let at = |span: std::ops::Range<usize>, message: String| {
            anyhow!("{name}, line {}: {message}", line_of(text, span.start))
        };
        let default = match &file.default {
            Some(allow) => access(allow.get_ref()).map_err(|message| at(allow.span(), message))?,
            None => Access::SignedIn,
        };
        let mut rules = Vec::new();
        for raw in &file.rule {
            let host = raw.host.get_ref().trim().to_ascii_lowercase();
            let bare = host.strip_prefix("*.").unwrap_or(&host);
            if bare.is_empty() || !bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
                return Err(at(
                    raw.host.span(),
                    format!(
                        "host = {:?} is not a host name such as \"wiki.example.com\" or \"*.example.com\"",
                        raw.host.get_ref()
                    ),
                ));
            }
            let path = match &raw.path {
                Some(path) if !path.get_ref().starts_with('/') => {
                    return Err(at(path.span(), format!("path = {:?} must start with \"/\"", path.get_ref())));
                }
                Some(path) => path.get_ref().trim_end_matches('/').to_owned(),
                None => String::new(),
            };
            let access = access(raw.allow.get_ref()).map_err(|message| at(raw.allow.span(), message))?;
            rules.push(Rule { host, path, access });
        }
        // Most specific first: an exact host before a wildcard, a longer path before a shorter.
        rules.sort_by_key(|rule| (rule.host.starts_with("*."), std::cmp::Reverse(rule.path.len())));
        Ok(Self { rules, default })
    }

    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| anyhow!("PORTCULLIS_ACCESS_RULES: cannot read {}: {error}", path.display()))?;
        Self::parse(&text, &format!("PORTCULLIS_ACCESS_RULES ({})", path.display()))
    }

    /// Who may open `path` on `host` (a host with or without its port).
    pub fn access(&self, host: &str, path: &str) -> &Access {
        if self.rules.is_empty() {
            return &self.default;
        }
        let host = host
            .rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(host, |(name, _)| name);
        let host = host.to_ascii_lowercase();
        let path = path.split(['?', '#']).next().unwrap_or("/");
        self.rules
            .iter()
            .find(|rule| {
                let host_matches = match rule.host.strip_prefix("*.") {
                    Some(parent) => host.strip_suffix(parent).is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
                    None => host == rule.host,
                };
                let path_matches = rule.path.is_empty()
                    || path == rule.path
                    || path.strip_prefix(&rule.path).is_some_and(|rest| rest.starts_with('/'));
                host_matches && path_matches
            })
            .map_or(&self.default, |rule| &rule.access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"
default = "signed-in"

[[rule]]
host = "status.example.com"
allow = "public"

[[rule]]
host = "wiki.example.com"
path = "/admin"
allow = ["admin"]

[[rule]]
host = "*.internal.example.com"
allow = "nobody"
"#;

    #[test]
    fn the_most_specific_rule_decides() {
        let rules = AccessRules::parse(RULES, "rules.toml").unwrap();
        assert_eq!(rules.access("status.example.com", "/anything"), &Access::Public);
        assert_eq!(rules.access("STATUS.example.com:8443", "/"), &Access::Public);
        assert_eq!(rules.access("wiki.example.com", "/admin"), &Access::Roles(vec![Role::Admin]));
        assert_eq!(rules.access("wiki.example.com", "/admin/users?x=1"), &Access::Roles(vec![Role::Admin]));
        assert_eq!(rules.access("wiki.example.com", "/administrators"), &Access::SignedIn, "whole segments only");
        assert_eq!(rules.access("wiki.example.com", "/"), &Access::SignedIn);
        assert_eq!(rules.access("db.internal.example.com", "/"), &Access::Nobody);
        assert_eq!(rules.access("internal.example.com", "/"), &Access::SignedIn, "a wildcard is for subdomains");
        assert_eq!(rules.access("evilinternal.example.com", "/"), &Access::SignedIn);
    }

    #[test]
    fn mistakes_name_their_line() {
        let cases = [
            ("[[rule]]\nhost = \"a.example\"\nalow = \"public\"\n", "line 3"),
            ("default = \"signed-in\"\n[[rule]\nhost = 1\n", "line 2"),
            ("[[rule]]\nhost = \"a.example\"\nallow = \"everyone\"\n", "line 3"),
            ("[[rule]]\nhost = \"a.example\"\n\nallow = [\"root\"]\n", "line 4"),
            ("[[rule]]\nhost = \"a.example\"\npath = \"admin\"\nallow = \"public\"\n", "line 3"),
            ("[[rule]]\nhost = \"https://a.example\"\nallow = \"public\"\n", "line 2"),
            ("[[rule]]\nhost = \"a.example\"\n", "line 1"),
        ];
        for (text, line) in cases {
            let error = AccessRules::parse(text, "rules.toml").unwrap_err().to_string();
            assert!(error.starts_with(&format!("rules.toml, {line}:")), "{text:?} → {error}");
        }
    }
}
