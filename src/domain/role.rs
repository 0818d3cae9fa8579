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
