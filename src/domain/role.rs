use super::ValidationError;

/// In tokens and JSON as `"admin"` / `"user"`; anything else does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        match input {
            "admin" => Ok(Self::Admin),
            "user" => Ok(Self::User),
            _ => Err(ValidationError::new("Role must be \"admin\" or \"user\"")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a user with `role` in the groups `member_of` may use an app open to `roles` and
/// `groups` (an empty list: anyone).
pub fn app_admits(roles: &[Role], groups: &[String], role: Role, member_of: &[String]) -> bool {
    let by_role = roles.is_empty() || roles.contains(&role);
    let by_group = groups.is_empty() || groups.iter().any(|wanted| member_of.contains(wanted));
    by_role && by_group
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_known_roles_parse() {
        assert_eq!(Role::parse("admin").unwrap(), Role::Admin);
        assert_eq!(Role::parse("user").unwrap(), Role::User);
        for bad in ["Admin", "root", "", "admin "] {
            assert!(Role::parse(bad).is_err());
        }
    }
}
