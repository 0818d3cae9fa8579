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
//!
//! [[rule]]
//! host = "ledger.example.com"
//! allow = ["admin", "group:finance"]   # roles and groups: any of them may enter
//! ```
//!
//! Paths match without regard to case (`case_sensitive_paths = true` at the top to change that),
//! after [`SitePath`] has read them as the sites behind the proxy will; where sites may read a
//! path in more than one way, the strictest answer among the readings applies.
use anyhow::anyhow;
use serde::Deserialize;
use toml::Spanned;

use super::site_address::{SiteHost, SitePath};
use super::{GroupName, Role};

/// Who may open an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Public,
    SignedIn,
    Roles(Vec<Role>),
    /// Anyone with one of the roles or in one of the groups.
    Members {
        roles: Vec<Role>,
        groups: Vec<GroupName>,
    },
    /// Only who every one of these admits (a path the sites may read in two ways, where a
    /// group rule meets another rule).
    Every(Vec<Access>),
    Nobody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// Lower case; a leading `*.` matches every subdomain.
    host: String,
    path: String,
    access: Access,
}

impl Access {
    /// What both `self` and `other` let in: for a path the sites may read in two ways.
    fn stricter(self, other: &Access) -> Access {
        match (self, other) {
            (Access::Nobody, _) | (_, Access::Nobody) => Access::Nobody,
            (this, other) if this == *other => this,
            (Access::Public | Access::SignedIn, other @ (Access::Members { .. } | Access::Every(_))) => other.clone(),
            (this @ (Access::Members { .. } | Access::Every(_)), Access::Public | Access::SignedIn) => this,
            (this @ (Access::Members { .. } | Access::Every(_)), other)
            | (this @ Access::Roles(_), other @ (Access::Members { .. } | Access::Every(_))) => {
                let mut every = match this {
                    Access::Every(all) => all,
                    one => vec![one],
                };
                match other {
                    Access::Every(all) => every.extend(all.iter().cloned()),
                    one => every.push(one.clone()),
                }
                Access::Every(every)
            }
            (Access::Public, other) | (Access::SignedIn, other @ (Access::SignedIn | Access::Roles(_))) => {
                other.clone()
            }
            (this, Access::Public | Access::SignedIn) => this,
            (Access::Roles(mine), Access::Roles(theirs)) => {
                let both: Vec<Role> = mine.into_iter().filter(|role| theirs.contains(role)).collect();
                if both.is_empty() { Access::Nobody } else { Access::Roles(both) }
            }
        }
    }
}

/// The rules, most specific first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRules {
    rules: Vec<Rule>,
    default: Access,
    case_sensitive_paths: bool,
}

impl Default for AccessRules {
    /// Without a file: every address behind the proxy needs someone signed in.
    fn default() -> Self {
        Self { rules: Vec::new(), default: Access::SignedIn, case_sensitive_paths: false }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    default: Option<Spanned<Allow>>,
    #[serde(default)]
    case_sensitive_paths: bool,
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
        Allow::Roles(entries) => {
            let (mut roles, mut groups) = (Vec::new(), Vec::new());
            for entry in entries {
                if let Some(group) = entry.strip_prefix("group:") {
                    let name =
                        GroupName::parse(group).map_err(|error| format!("{entry:?} does not name a group: {error}"))?;
                    groups.push(name);
                } else {
                    roles.push(Role::parse(entry).map_err(|_| {
                        format!(
                            "there is no role {entry:?}: the roles are \"admin\" and \"user\", and groups are written \"group:NAME\""
                        )
                    })?);
                }
            }
            Ok(if groups.is_empty() { Access::Roles(roles) } else { Access::Members { roles, groups } })
        }
    }
}

impl Access {
    /// Whether someone signed in with `role`, in `groups`, may enter (`Public` and
    /// `SignedIn` admit everyone signed in).
    pub fn admits(&self, role: Role, groups: &[String]) -> bool {
        match self {
            Access::Public | Access::SignedIn => true,
            Access::Nobody => false,
            Access::Roles(roles) => roles.contains(&role),
            Access::Members { roles, groups: needed } => {
                roles.contains(&role) || needed.iter().any(|group| groups.iter().any(|mine| mine == group.as_str()))
            }
            Access::Every(all) => all.iter().all(|access| access.admits(role, groups)),
        }
    }

    /// Who may enter, in words: "administrators", "administrators or members of finance".
    pub fn in_words(&self) -> String {
        let roles_words = |roles: &[Role]| -> Vec<String> {
            roles.iter().map(|role| if *role == Role::Admin { "administrators" } else { "users" }.to_owned()).collect()
        };
        match self {
            Access::Public | Access::SignedIn => "everyone signed in".to_owned(),
            Access::Nobody => "nobody".to_owned(),
            Access::Roles(roles) => roles_words(roles).join(" and "),
            Access::Members { roles, groups } => {
                let mut words = roles_words(roles);
                let names: Vec<&str> = groups.iter().map(GroupName::as_str).collect();
                words.push(format!("members of {}", names.join(", ")));
                words.join(" or ")
            }
            Access::Every(all) => all.iter().map(Access::in_words).collect::<Vec<_>>().join(", who are also "),
        }
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
            let written = raw.host.get_ref().trim();
            let (wildcard, bare) = written.strip_prefix("*.").map_or((false, written), |bare| (true, bare));
            let host = match SiteHost::parse(bare) {
                Ok(host) if !bare.contains(':') && !host.as_str().starts_with('[') => {
                    if wildcard {
                        format!("*.{}", host.as_str())
                    } else {
                        host.as_str().to_owned()
                    }
                }
                _ => {
                    return Err(at(
                        raw.host.span(),
                        format!(
                            "host = {:?} is not a host name such as \"wiki.example.com\" or \"*.example.com\"",
                            raw.host.get_ref()
                        ),
                    ));
                }
            };
            let path = match &raw.path {
                Some(path) if !path.get_ref().starts_with('/') => {
                    return Err(at(path.span(), format!("path = {:?} must start with \"/\"", path.get_ref())));
                }
                Some(path) => match SitePath::parse(path.get_ref()).map(|read| read.readings().to_vec()) {
                    Ok(readings) if readings.len() == 1 && readings[0] == *path.get_ref() => {
                        let path = readings[0].trim_end_matches('/');
                        if file.case_sensitive_paths { path.to_owned() } else { path.to_lowercase() }
                    }
                    _ => {
                        return Err(at(
                            path.span(),
                            format!(
                                "path = {:?} must be a plain path such as \"/admin\" (no %-escapes, dot segments, \
                                 double slashes or ;parameters)",
                                path.get_ref()
                            ),
                        ));
                    }
                },
                None => String::new(),
            };
            let access = access(raw.allow.get_ref()).map_err(|message| at(raw.allow.span(), message))?;
            rules.push(Rule { host, path, access });
        }
        // Most specific first: an exact host before a wildcard, a longer path before a shorter.
        rules.sort_by_key(|rule| (rule.host.starts_with("*."), std::cmp::Reverse(rule.path.len())));
        Ok(Self { rules, default, case_sensitive_paths: file.case_sensitive_paths })
    }

    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| anyhow!("PORTCULLIS_ACCESS_RULES: cannot read {}: {error}", path.display()))?;
        Self::parse(&text, &format!("PORTCULLIS_ACCESS_RULES ({})", path.display()))
    }

    /// Who may open `path` on `host`: the strictest answer among the path's readings (borrowed
    /// from the rules when there is one reading, as for nearly every request).
    pub fn access(&self, host: &SiteHost, path: &SitePath) -> std::borrow::Cow<'_, Access> {
        let mut readings = path.readings().iter();
        let first = self.access_one(host, readings.next().map_or("/", String::as_str));
        readings.fold(std::borrow::Cow::Borrowed(first), |access, reading| {
            std::borrow::Cow::Owned(access.into_owned().stricter(self.access_one(host, reading)))
        })
    }

    fn access_one(&self, host: &SiteHost, path: &str) -> &Access {
        if self.rules.is_empty() {
            return &self.default;
        }
        let path = if self.case_sensitive_paths || !path.chars().any(char::is_uppercase) {
            std::borrow::Cow::Borrowed(path)
        } else {
            std::borrow::Cow::Owned(path.to_lowercase())
        };
        let path = path.as_ref();
        self.rules
            .iter()
            .find(|rule| {
                let path_matches = rule.path.is_empty()
                    || path == rule.path
                    || path.strip_prefix(&rule.path).is_some_and(|rest| rest.starts_with('/'));
                path_matches && host.matches(&rule.host)
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

    fn access(rules: &AccessRules, host: &str, path: &str) -> Access {
        rules.access(&SiteHost::parse(host).unwrap(), &SitePath::parse(path).unwrap()).into_owned()
    }

    #[test]
    fn the_most_specific_rule_decides() {
        let rules = AccessRules::parse(RULES, "rules.toml").unwrap();
        let admins = Access::Roles(vec![Role::Admin]);
        assert_eq!(access(&rules, "status.example.com", "/anything"), Access::Public);
        assert_eq!(access(&rules, "STATUS.example.com:8443", "/"), Access::Public);
        assert_eq!(access(&rules, "wiki.example.com", "/admin"), admins);
        assert_eq!(access(&rules, "wiki.example.com", "/admin/users?x=1"), admins);
        assert_eq!(access(&rules, "wiki.example.com", "/administrators"), Access::SignedIn, "whole segments only");
        assert_eq!(access(&rules, "wiki.example.com", "/"), Access::SignedIn);
        assert_eq!(access(&rules, "db.internal.example.com", "/"), Access::Nobody);
        assert_eq!(access(&rules, "internal.example.com", "/"), Access::SignedIn, "a wildcard is for subdomains");
        assert_eq!(access(&rules, "evilinternal.example.com", "/"), Access::SignedIn);
    }

    #[test]
    fn every_spelling_of_a_guarded_path_is_guarded() {
        let rules = AccessRules::parse(RULES, "rules.toml").unwrap();
        let admins = Access::Roles(vec![Role::Admin]);
        for path in ["/ADMIN", "/%61dmin", "//admin/settings", "/public/../admin", "/./admin", "/admin;x", "/Admin/"] {
            assert_eq!(access(&rules, "wiki.example.com", path), admins, "{path}");
        }
        // Read as "/public" by one site and as "/admin/…" by another: the stricter answer.
        assert_eq!(access(&rules, "wiki.example.com", "/admin/../public"), admins);
        for host in ["WIKI.example.com", "wiki.example.com.", "wiki.example.com.:443"] {
            assert_eq!(access(&rules, host, "/admin"), admins, "{host}");
        }
        let exact = AccessRules::parse(&format!("case_sensitive_paths = true\n{RULES}"), "rules.toml").unwrap();
        assert_eq!(access(&exact, "wiki.example.com", "/ADMIN"), Access::SignedIn);
        assert_eq!(access(&exact, "wiki.example.com", "/%61dmin"), admins);
    }

    #[test]
    fn the_stricter_of_two_answers_lets_in_only_who_both_let_in() {
        let admins = Access::Roles(vec![Role::Admin]);
        let users = Access::Roles(vec![Role::User]);
        assert_eq!(Access::Public.stricter(&Access::SignedIn), Access::SignedIn);
        assert_eq!(Access::SignedIn.stricter(&Access::Public), Access::SignedIn);
        assert_eq!(admins.clone().stricter(&Access::Public), admins);
        assert_eq!(Access::SignedIn.stricter(&admins), admins);
        assert_eq!(admins.clone().stricter(&users), Access::Nobody);
        assert_eq!(Access::Public.stricter(&Access::Nobody), Access::Nobody);
    }

    #[test]
    fn international_host_names_match_their_ascii_form() {
        let rules = AccessRules::parse("[[rule]]\nhost = \"bücher.example\"\nallow = \"public\"\n", "r").unwrap();
        assert_eq!(access(&rules, "xn--bcher-kva.example", "/"), Access::Public);
        assert_eq!(access(&rules, "BÜCHER.example", "/"), Access::Public);
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
            ("[[rule]]\nhost = \"a.example\"\npath = \"/%61dmin\"\nallow = \"public\"\n", "line 3"),
            ("[[rule]]\nhost = \"a.example\"\npath = \"//admin\"\nallow = \"public\"\n", "line 3"),
            ("[[rule]]\nhost = \"a.example\"\n", "line 1"),
        ];
        for (text, line) in cases {
            let error = AccessRules::parse(text, "rules.toml").unwrap_err().to_string();
            assert!(error.starts_with(&format!("rules.toml, {line}:")), "{text:?} → {error}");
        }
    }
}
